//! A wrapper that keeps sensitive values out of logs and wipes them on drop.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A sensitive value (access token, key, client secret).
///
/// `Debug` and `Display` print `[redacted]` so the value cannot leak through
/// logging or error formatting, and the value is zeroized when dropped.
/// There is deliberately no `into_inner` and no `Serialize`: the only way to
/// reach the value is an explicit, greppable [`Secret::expose`] call.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`; from now on it is only reachable through [`Secret::expose`].
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the sensitive value. Keep the borrow as short as possible and
    /// never format or log what it returns.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

// Marker only: the `Drop` impl above is what actually wipes the value.
impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Transparent: a `Secret<String>` field reads the same JSON/config as a `String`.
impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new(String::from("xoxb-very-secret-token"));
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");

        let bytes = Secret::new(vec![0xde_u8, 0xad, 0xbe, 0xef]);
        assert_eq!(format!("{bytes:?}"), "[redacted]");
    }

    #[test]
    fn debug_of_a_struct_holding_a_secret_redacts_it() {
        #[derive(Debug)]
        #[allow(dead_code)] // Only read through Debug.
        struct Creds {
            client_id: String,
            client_secret: Secret<String>,
        }
        let creds = Creds {
            client_id: "public-id".into(),
            client_secret: Secret::from(String::from("hunter2-client-secret")),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("public-id"));
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn expose_returns_the_wrapped_value() {
        let secret = Secret::from(String::from("abc"));
        assert_eq!(secret.expose(), "abc");
    }

    #[test]
    fn clone_keeps_the_value_and_stays_redacted() {
        let secret = Secret::new(vec![1_u8, 2, 3]);
        let copy = secret.clone();
        drop(secret);
        assert_eq!(copy.expose(), &[1, 2, 3]);
        assert_eq!(format!("{copy:?}"), "[redacted]");
    }

    #[test]
    fn deserialize_is_transparent() {
        #[derive(serde::Deserialize)]
        struct Config {
            token: Secret<String>,
        }

        let secret: Secret<String> =
            serde_json::from_str("\"tok-123\"").expect("a JSON string deserializes");
        assert_eq!(secret.expose(), "tok-123");

        let config: Config =
            serde_json::from_str(r#"{"token":"t-456"}"#).expect("the struct deserializes");
        assert_eq!(config.token.expose(), "t-456");
    }

    #[test]
    fn dropping_a_secret_zeroizes_the_value() {
        // A probe whose zeroize records that it was called.
        struct Probe(Rc<Cell<bool>>);
        impl Zeroize for Probe {
            fn zeroize(&mut self) {
                self.0.set(true);
            }
        }

        let wiped = Rc::new(Cell::new(false));
        let secret = Secret::new(Probe(Rc::clone(&wiped)));
        assert!(!wiped.get());
        drop(secret);
        assert!(wiped.get());
    }
}
