//! GraphQL over the HTTP core (Fireflies now, Monday.com later). Queries are constants; every
//! value travels in `variables`, never in the query text. A 200 with `errors[]` is an error.

use http::{HeaderMap, Method, StatusCode};
use reqwest::Url;
use serde_json::{Value, json};

use super::Session;
use super::http::{ProviderRequest, rate_limited, rejection};
use crate::error::Error;

/// How a GraphQL error reads as an HTTP status: `extensions.status` when the server says it,
/// else from its code.
fn status_of(error: &Value) -> StatusCode {
    if let Some(s) = error
        .pointer("/extensions/status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    {
        return s;
    }
    let code = error
        .pointer("/extensions/code")
        .or_else(|| error.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if code.contains("unauthenticated")
        || code.contains("auth_failed")
        || code.contains("invalid_api_key")
        || code.contains("unauthorized")
    {
        StatusCode::UNAUTHORIZED
    } else if code.contains("forbidden") {
        StatusCode::FORBIDDEN
    } else if code.contains("not_found") {
        StatusCode::NOT_FOUND
    } else if code.contains("too_many") || code.contains("rate_limit") {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// Runs `query` with `variables` and returns its `data`. `idempotent` says whether the core may
/// send it twice (a query yes, a mutation no).
pub async fn query(
    session: &mut Session,
    url: Url,
    query: &str,
    variables: Value,
    idempotent: bool,
) -> Result<Value, Error> {
    let body = json!({"query": query, "variables": variables});
    loop {
        let req = ProviderRequest::json(Method::POST, url.clone(), &body).idempotent(idempotent);
        let mut answer = session.json(req).await?;
        let first_error = answer
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .cloned();
        let Some(error) = first_error else {
            return match answer.get_mut("data").map(Value::take) {
                Some(data) if !data.is_null() => Ok(data),
                _ => Err(super::http::bad_answer(
                    session.platform(),
                    "no data and no errors",
                )),
            };
        };
        let status = status_of(&error);
        if status == StatusCode::UNAUTHORIZED {
            session.rejected().await?;
            continue;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(rate_limited(
                session.platform(),
                std::time::Duration::from_secs(1),
            ));
        }
        let body = json!({"errors": [error]}).to_string();
        return Err(rejection(
            session.platform(),
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            session.scrubber(),
        ));
    }
}

/// Whether a GraphQL document holds a mutation or subscription: a top-level (brace depth 0)
/// `mutation`/`subscription` keyword, ignoring comments and strings. Used to decide whether a
/// raw query may be retried; when unsure it says yes, which only means no retry.
pub fn is_mutation(document: &str) -> bool {
    let mut depth = 0usize;
    let mut chars = document.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, depth: usize| -> bool {
        let hit = depth == 0 && matches!(word.as_str(), "mutation" | "subscription");
        word.clear();
        hit
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if flush(&mut word, depth) {
            return true;
        }
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                // Plain or block string: skip to the closing quote(s), honouring escapes.
                let block = chars.peek() == Some(&'"') && {
                    let mut probe = chars.clone();
                    probe.next();
                    probe.peek() == Some(&'"')
                };
                if block {
                    chars.next();
                    chars.next();
                    let mut quotes = 0;
                    for n in chars.by_ref() {
                        quotes = if n == '"' { quotes + 1 } else { 0 };
                        if quotes == 3 {
                            break;
                        }
                    }
                } else {
                    let mut escaped = false;
                    for n in chars.by_ref() {
                        match (escaped, n) {
                            (false, '\\') => escaped = true,
                            (false, '"') => break,
                            _ => escaped = false,
                        }
                    }
                }
            }
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    flush(&mut word, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_not_mutations() {
        assert!(!is_mutation("{ user { name } }"));
        assert!(!is_mutation(
            "query Q($id: String!) { transcript(id: $id) { id } }"
        ));
        assert!(!is_mutation(
            "query { transcripts(keyword: \"mutation\") { id } } # mutation"
        ));
        assert!(!is_mutation(
            "query { a(x: \"\"\" mutation \"\"\") { mutation } }"
        ));
    }

    #[test]
    fn mutations_and_subscriptions_are_found() {
        assert!(is_mutation(
            "mutation { deleteTranscript(id: \"1\") { id } }"
        ));
        assert!(is_mutation(
            "query A { a } mutation B($x: String) { b(x: $x) { id } }"
        ));
        assert!(is_mutation("subscription { s }"));
        assert!(is_mutation("# comment\nmutation"));
    }

    #[test]
    fn graphql_error_codes_read_as_statuses() {
        let e = |v: Value| status_of(&v);
        assert_eq!(
            e(json!({"extensions": {"status": 404}})),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            e(json!({"extensions": {"code": "UNAUTHENTICATED"}})),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            e(json!({"code": "too_many_requests"})),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            e(json!({"message": "Cannot query field"})),
            StatusCode::BAD_REQUEST
        );
    }
}
