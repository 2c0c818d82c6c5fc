//! What the mail platforms (Gmail, Outlook) check before a message leaves: plausible
//! addresses and header values that cannot smuggle in another header.

use super::Field;
use super::schema::{Format, Pattern, Ty};

/// Recipients per header field (Gmail refuses more than 500 recipients in all).
const MAX_RECIPIENTS: usize = 100;

/// A list of recipient addresses, each a plausible `EMAIL`; at least `min` of them.
pub fn recipients_field(name: &'static str, description: &'static str, min: usize) -> Field {
    Field::array(
        name,
        description,
        Ty::String {
            min: 3,
            max: 254,
            format: Format::Pattern(&EMAIL),
        },
        min,
        MAX_RECIPIENTS,
    )
}

/// A plausible `local@domain` address: a dot-atom local part (no quoted strings, no
/// comments), a domain of at least two DNS labels. Deliberately narrower than RFC 5322, so an
/// address can never carry a space, a comma, angle brackets or a line break into a header
/// (another recipient, another header). Internationalized addresses are not accepted.
pub fn plausible_email(v: &str) -> bool {
    if v.len() > 254 {
        return false;
    }
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()));
    local_ok && domain_ok
}

pub static EMAIL: Pattern = Pattern {
    pattern: r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    check: plausible_email,
    hint: "an email address such as ada@example.com",
    sample: "ada@example.com",
};

/// A header value that would end its header line early: CR or LF (header injection).
pub fn breaks_header(v: &str) -> bool {
    v.contains(['\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_plausible() {
        for ok in [
            "ada@example.com",
            "first.last+tag@mail.example.co.uk",
            "o'brien@xn--bcher-kva.example",
            "a_b-c@sub-domain.example.io",
        ] {
            assert!(plausible_email(ok), "{ok}");
        }
    }

    #[test]
    fn addresses_that_could_add_recipients_or_headers_are_not() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@example.123",
            "ada@@example.com",
            "Ada <ada@example.com>",
            "ada@example.com, eve@example.com",
            "ada@example.com\r\nBcc: eve@example.com",
            "ada@example.com\nX: y",
            "a d a@example.com",
            ".ada@example.com",
            "ada..b@example.com",
            "ada@-example.com",
            "\"ada\"@example.com",
            "ädä@example.com",
        ] {
            assert!(!plausible_email(bad), "{bad:?}");
        }
        assert!(!plausible_email(&format!("{}@example.com", "a".repeat(65))));
    }

    #[test]
    fn line_breaks_break_headers() {
        assert!(breaks_header("hi\r\nBcc: eve@example.com"));
        assert!(breaks_header("hi\nthere"));
        assert!(breaks_header("hi\r"));
        assert!(!breaks_header("Quarterly update: Q3 — ✓"));
    }
}
