//! Shared by every table that holds sealed values: reading the stored columns back into a
//! `Sealed`, and what one batch of `keys rewrap` did.

use uuid::Uuid;

use crate::secrets::{AadVersion, KeyId, KeyRing, KeyringError, SealContext, Sealed};

/// The stored columns of one sealed value, as a `Sealed`.
///
/// # Errors
/// A key id or AAD version that does not parse: the row was written by something else.
pub fn from_columns(
    key_id: &str,
    aad_version: i16,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Sealed, KeyringError> {
    Ok(Sealed {
        key_id: KeyId::parse(key_id)?,
        aad: AadVersion::from_column(aad_version)?,
        nonce: nonce.to_vec(),
        ciphertext: ciphertext.to_vec(),
    })
}

/// A stored value that did not open during a rewrap: skipped, left as it is.
#[derive(Debug)]
pub struct Unopenable {
    /// The row anchoring the value (integration, oauth state, queued revocation).
    pub row_id: Uuid,
    pub field: String,
    pub key_id: String,
    pub error: KeyringError,
}

/// One batch of a rewrap, over rows after a cursor.
#[derive(Debug)]
pub struct RewrapBatch<K> {
    /// Rows re-sealed under the active key and the current AAD version.
    pub rewrapped: u64,
    /// Rows that did not open: unchanged, so the next batch goes past them by the cursor.
    pub unopenable: Vec<Unopenable>,
    /// Where the next batch starts; `None` when this batch found no row.
    pub last: Option<K>,
}

impl<K> RewrapBatch<K> {
    pub(super) fn new() -> Self {
        RewrapBatch {
            rewrapped: 0,
            unopenable: Vec::new(),
            last: None,
        }
    }

    /// Re-seals one row's value: `Some` with the new value to write, or `None` when it does
    /// not open (noted, and the row stays as it is).
    pub(super) fn reseal(
        &mut self,
        keyring: &KeyRing,
        ctx: &SealContext<'_>,
        stored: (&str, i16, &[u8], &[u8]),
    ) -> Option<Sealed> {
        let (key_id, aad_version, nonce, ciphertext) = stored;
        match from_columns(key_id, aad_version, nonce, ciphertext)
            .and_then(|sealed| keyring.reseal(ctx, &sealed))
        {
            Ok(sealed) => {
                self.rewrapped += 1;
                Some(sealed)
            }
            Err(error) => {
                self.unopenable.push(Unopenable {
                    row_id: ctx.row_id,
                    field: ctx.field.to_owned(),
                    key_id: key_id.to_owned(),
                    error,
                });
                None
            }
        }
    }
}
