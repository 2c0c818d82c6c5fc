//! AES-256-GCM envelope for credential fields, with key ids so keys can rotate.
//!
//! Every sealed value records the id of the key that sealed it and the version
//! of its authenticated data, which binds it to one workspace, row and field
//! (`aad.rs`), so a ciphertext copied elsewhere (or relabelled with another key
//! id) fails to open.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use zeroize::{Zeroize, Zeroizing};

use super::{AadVersion, SealContext};
use crate::domain::Secret;

/// AES-256 key length in bytes.
const KEY_LEN: usize = 32;
/// AES-GCM standard 96-bit nonce length in bytes.
const NONCE_LEN: usize = 12;
/// AES-GCM authentication tag length in bytes (appended to the ciphertext).
const TAG_LEN: usize = 16;
/// Longest accepted key id, in characters (all ASCII, so also bytes).
const KEY_ID_MAX_LEN: usize = 32;

/// Errors from parsing a key ring or sealing/opening values.
///
/// No variant carries key material, plaintext or ciphertext, so these are safe
/// to log and to return to operators.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    #[error("key ring spec is empty")]
    EmptySpec,
    /// `index` is the 0-based position of the entry in the comma-separated spec.
    #[error("key ring entry at index {index} is malformed: expected `<key_id>:<base64 key>`")]
    MalformedEntry { index: usize },
    #[error(
        "key ring entry at index {index} has an invalid key id: expected 1 to 32 characters of A-Z, a-z, 0-9, '_', '.', '-'"
    )]
    InvalidEntryKeyId { index: usize },
    #[error("key ring entry at index {index} is not valid standard base64")]
    InvalidBase64 { index: usize },
    #[error("key ring entry at index {index} decodes to {len} bytes: an AES-256 key is 32 bytes")]
    InvalidKeyLength { index: usize, len: usize },
    #[error("key id `{0}` appears more than once in the key ring")]
    DuplicateKeyId(KeyId),
    /// The value is not echoed: a misplaced secret could end up here.
    #[error("invalid key id: expected 1 to 32 characters of A-Z, a-z, 0-9, '_', '.', '-'")]
    InvalidKeyId,
    #[error("active key id `{0}` is not in the key ring")]
    UnknownActiveKey(KeyId),
    /// The sealed value names a key this ring does not hold (ids are not secret).
    #[error("no key with id `{0}` in the key ring")]
    UnknownKey(KeyId),
    #[error(
        "sealed value failed authentication: wrong row, wrong field, wrong key or modified bytes"
    )]
    Tampered,
    #[error("sealed value has a {len}-byte nonce: expected 12 bytes")]
    InvalidNonceLength { len: usize },
    #[error("opened value is not valid utf-8")]
    NotUtf8,
    #[error("plaintext is too large to seal")]
    PlaintextTooLarge,
    #[error("sealed value names aad version {0}: this build knows 1 and 2")]
    UnknownAadVersion(i16),
}

/// Identifier of one key in the ring: 1 to 32 characters of `[A-Za-z0-9_.-]`.
///
/// Stored next to each ciphertext so the right key can be picked on open.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates `s` as a key id.
    ///
    /// # Errors
    /// [`KeyringError::InvalidKeyId`] (without echoing `s`) when it is not a valid id.
    pub fn parse(s: &str) -> Result<KeyId, KeyringError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if s.is_empty() || s.len() > KEY_ID_MAX_LEN || !s.chars().all(valid_char) {
            return Err(KeyringError::InvalidKeyId);
        }
        Ok(KeyId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = KeyringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::parse(s)
    }
}

/// An encrypted field as stored: key id, AAD version, nonce and ciphertext (tag included).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: KeyId,
    pub aad: AadVersion,
    /// 12 bytes, random per seal.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: Vec<u8>,
}

// Manual Debug: ciphertext and nonce are not secret on their own, but keeping
// them out of logs avoids handing attackers material and keeps logs small.
impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("aad", &self.aad)
            .field("nonce_len", &self.nonce.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// The set of data-encryption keys, one of which is active for new seals.
///
/// Older keys stay in the ring so existing values can still be opened; values
/// sealed under a non-active key report [`KeyRing::needs_rewrap`].
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, Aes256Gcm>,
    /// Invariant: always a key of `keys` (checked in `parse`, never mutated).
    active: KeyId,
}

// Manual Debug: lists ids only, never key material.
impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "key_ids",
                &self.keys.keys().map(KeyId::as_str).collect::<Vec<_>>(),
            )
            .field("active", &self.active)
            .finish()
    }
}

impl KeyRing {
    /// Parses `spec`, a comma-separated list of `<key_id>:<base64 32-byte key>`
    /// entries (standard base64 with padding; whitespace around entries and
    /// around the `:` is ignored).
    ///
    /// The active key is `active` when given, otherwise the last entry, so a
    /// rotation is "append a new entry". An `active` that is empty or only
    /// whitespace counts as not given (an env var set to "" means unset).
    ///
    /// # Errors
    /// Empty spec, malformed entry, invalid key id, bad base64, key not 32
    /// bytes, duplicate key id, or an `active` id that is invalid or absent.
    /// Entries are identified by 0-based index, never by their content.
    pub fn parse(spec: &str, active: Option<&str>) -> Result<KeyRing, KeyringError> {
        if spec.trim().is_empty() {
            return Err(KeyringError::EmptySpec);
        }

        let mut keys = BTreeMap::new();
        let mut last = None;
        for (index, entry) in spec.split(',').enumerate() {
            let (id, encoded) = entry
                .trim()
                .split_once(':')
                .ok_or(KeyringError::MalformedEntry { index })?;
            let (id, encoded) = (id.trim(), encoded.trim());
            if id.is_empty() || encoded.is_empty() {
                return Err(KeyringError::MalformedEntry { index });
            }
            let id = KeyId::parse(id).map_err(|_| KeyringError::InvalidEntryKeyId { index })?;

            // Zeroizing: the decoded key must not linger in freed memory.
            let key = Zeroizing::new(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| KeyringError::InvalidBase64 { index })?,
            );
            if key.len() != KEY_LEN {
                return Err(KeyringError::InvalidKeyLength {
                    index,
                    len: key.len(),
                });
            }
            let cipher =
                Aes256Gcm::new_from_slice(&key).map_err(|_| KeyringError::InvalidKeyLength {
                    index,
                    len: key.len(),
                })?;

            if keys.contains_key(&id) {
                return Err(KeyringError::DuplicateKeyId(id));
            }
            keys.insert(id.clone(), cipher);
            last = Some(id);
        }

        let active = match active.map(str::trim).filter(|a| !a.is_empty()) {
            Some(wanted) => {
                let wanted = KeyId::parse(wanted)?;
                if !keys.contains_key(&wanted) {
                    return Err(KeyringError::UnknownActiveKey(wanted));
                }
                wanted
            }
            // `split` yields at least one item and every item either errors
            // above or sets `last`, so this is unreachable; still no panic.
            None => last.ok_or(KeyringError::EmptySpec)?,
        };

        Ok(KeyRing { keys, active })
    }

    /// Generates a fresh random 32-byte key formatted as one spec entry,
    /// `k<UTC %Y%m%d%H%M%S>:<base64>`, ready to append to the key ring spec.
    ///
    /// The returned string is key material: store it in the secret store, do
    /// not log it.
    #[must_use]
    pub fn generate_entry() -> String {
        let mut key = Zeroizing::new([0_u8; KEY_LEN]);
        // ThreadRng is a CSPRNG (ChaCha12 seeded and reseeded from the OS).
        rand::rng().fill_bytes(key.as_mut_slice());
        let encoded = Zeroizing::new(STANDARD.encode(key.as_slice()));
        // Timestamp for humans, random suffix so two keys made in one second differ.
        let suffix: u16 = rand::random();
        let id = format!(
            "k{}-{suffix:04x}",
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        );

        // Sized up front so no reallocation leaves a stray copy of the key.
        let mut entry = String::with_capacity(id.len() + 1 + encoded.len());
        entry.push_str(&id);
        entry.push(':');
        entry.push_str(&encoded);
        entry
    }

    /// The key new values are sealed with.
    pub fn active_id(&self) -> &KeyId {
        &self.active
    }

    /// All key ids in the ring, in sorted order.
    pub fn key_ids(&self) -> impl ExactSizeIterator<Item = &KeyId> + '_ {
        self.keys.keys()
    }

    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.contains_key(id)
    }

    /// Encrypts `plaintext` under the active key with a fresh random nonce and
    /// the current AAD version, and counts it in `fh_credential_seals_total{key_id}`.
    ///
    /// # Errors
    /// [`KeyringError::PlaintextTooLarge`] past AES-GCM's per-message limit (64 GiB).
    pub fn seal(&self, ctx: &SealContext<'_>, plaintext: &[u8]) -> Result<Sealed, KeyringError> {
        // Invariant of `KeyRing`: `active` is in `keys`; report rather than panic.
        let cipher = self
            .keys
            .get(&self.active)
            .ok_or_else(|| KeyringError::UnknownKey(self.active.clone()))?;

        // Random 96-bit nonces: collision odds stay negligible well past the
        // number of seals one key will ever do here (NIST limit 2^32 per key).
        let mut nonce = [0_u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);

        let aad = ctx.aad(AadVersion::CURRENT, &self.active);
        // Reserve room for the tag so pushing it cannot reallocate.
        let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buffer.extend_from_slice(plaintext);
        if cipher
            .encrypt_in_place(&Nonce::<U12>::from(nonce), &aad, &mut buffer)
            .is_err()
        {
            // Only fails before encrypting (input too long): wipe the copy.
            buffer.zeroize();
            return Err(KeyringError::PlaintextTooLarge);
        }

        metrics::counter!("fh_credential_seals_total", "key_id" => self.active.to_string())
            .increment(1);

        Ok(Sealed {
            key_id: self.active.clone(),
            aad: AadVersion::CURRENT,
            nonce: nonce.to_vec(),
            ciphertext: buffer,
        })
    }

    /// Decrypts and authenticates `sealed` for the row and field in `ctx`.
    ///
    /// # Errors
    /// [`KeyringError::UnknownKey`] when the ring lacks `sealed.key_id`,
    /// [`KeyringError::InvalidNonceLength`], or [`KeyringError::Tampered`] when
    /// authentication fails (other row, other field, other key, modified bytes).
    pub fn open(
        &self,
        ctx: &SealContext<'_>,
        sealed: &Sealed,
    ) -> Result<Secret<Vec<u8>>, KeyringError> {
        self.open_raw(ctx, sealed).map(Secret::new)
    }

    /// Like [`KeyRing::open`], for values that must be UTF-8 (tokens, client secrets).
    ///
    /// # Errors
    /// As [`KeyRing::open`], plus [`KeyringError::NotUtf8`].
    pub fn open_string(
        &self,
        ctx: &SealContext<'_>,
        sealed: &Sealed,
    ) -> Result<Secret<String>, KeyringError> {
        match String::from_utf8(self.open_raw(ctx, sealed)?) {
            Ok(text) => Ok(Secret::new(text)),
            Err(err) => {
                err.into_bytes().zeroize();
                Err(KeyringError::NotUtf8)
            }
        }
    }

    /// True when `sealed` was sealed under a key other than the active one, or
    /// with an older AAD version, and should be re-sealed ([`KeyRing::reseal`]).
    #[must_use]
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active || sealed.aad != AadVersion::CURRENT
    }

    /// Opens `sealed` and seals its plaintext again under the active key and the
    /// current AAD version, for `keys rewrap`. The plaintext never leaves this
    /// module and is wiped before returning.
    ///
    /// # Errors
    /// As [`KeyRing::open`] and [`KeyRing::seal`].
    pub fn reseal(&self, ctx: &SealContext<'_>, sealed: &Sealed) -> Result<Sealed, KeyringError> {
        let plain = Zeroizing::new(self.open_raw(ctx, sealed)?);
        self.seal(ctx, &plain)
    }

    /// Decrypts into a plain `Vec`; callers wrap it before it leaves this module.
    fn open_raw(&self, ctx: &SealContext<'_>, sealed: &Sealed) -> Result<Vec<u8>, KeyringError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| KeyringError::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; NONCE_LEN] =
            sealed
                .nonce
                .as_slice()
                .try_into()
                .map_err(|_| KeyringError::InvalidNonceLength {
                    len: sealed.nonce.len(),
                })?;

        let aad = ctx.aad(sealed.aad, &sealed.key_id);
        let mut buffer = sealed.ciphertext.clone();
        if cipher
            .decrypt_in_place(&Nonce::<U12>::from(nonce), &aad, &mut buffer)
            .is_err()
        {
            // aes-gcm may have decrypted in place before the tag check failed:
            // wipe the unauthenticated plaintext.
            buffer.zeroize();
            return Err(KeyringError::Tampered);
        }
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests;
