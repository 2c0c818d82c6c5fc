//! AES-256-GCM envelope for credential fields, with key ids so keys can rotate.
//!
//! Every sealed value records the id of the key that sealed it, and its
//! authenticated data binds it to one integration row and one field, so a
//! ciphertext copied elsewhere (or relabelled with another key id) fails to open.

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

use crate::domain::Secret;

/// AES-256 key length in bytes.
const KEY_LEN: usize = 32;
/// AES-GCM standard 96-bit nonce length in bytes.
const NONCE_LEN: usize = 12;
/// AES-GCM authentication tag length in bytes (appended to the ciphertext).
const TAG_LEN: usize = 16;
/// Longest accepted key id, in characters (all ASCII, so also bytes).
const KEY_ID_MAX_LEN: usize = 32;
/// Domain-separation prefix of the AAD; bump the version if the layout changes.
const AAD_PREFIX: &[u8; 16] = b"founderhouse/v1\0";

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

/// Binds a sealed value to the row and field it belongs to (goes into the AAD).
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    pub integration_id: uuid::Uuid,
    pub field: &'a str,
}

/// An encrypted field as stored: key id, nonce and ciphertext (tag included).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: KeyId,
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
    /// counts it in `fh_credential_seals_total{key_id}`.
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

        let aad = aad(ctx, &self.active);
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

    /// True when `sealed` was sealed under a key other than the active one and
    /// should be re-sealed (open, then seal) to finish a rotation.
    #[must_use]
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active
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

        let aad = aad(ctx, &sealed.key_id);
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

/// AAD = prefix || integration id (16 bytes) || field || 0x00 || key id.
///
/// Unambiguous: the prefix and uuid are fixed-size and a key id cannot contain
/// 0x00, so the last 0x00 always separates field from key id.
fn aad(ctx: &SealContext<'_>, key_id: &KeyId) -> Vec<u8> {
    let id = key_id.as_str().as_bytes();
    let mut aad = Vec::with_capacity(AAD_PREFIX.len() + 16 + ctx.field.len() + 1 + id.len());
    aad.extend_from_slice(AAD_PREFIX);
    aad.extend_from_slice(ctx.integration_id.as_bytes());
    aad.extend_from_slice(ctx.field.as_bytes());
    aad.push(0);
    aad.extend_from_slice(id);
    aad
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn b64(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn ring(spec: &str) -> KeyRing {
        KeyRing::parse(spec, None).expect("test spec is valid")
    }

    fn ctx(integration_id: Uuid, field: &str) -> SealContext<'_> {
        SealContext {
            integration_id,
            field,
        }
    }

    /// Spec, `active`, and a check that the error is the expected variant.
    type ParseCase<'a> = (String, Option<&'a str>, fn(&KeyringError) -> bool);

    fn parse_err(spec: &str, active: Option<&str>) -> KeyringError {
        match KeyRing::parse(spec, active) {
            Ok(ring) => panic!("expected an error, got {ring:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn seal_then_open_returns_the_plaintext() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let row = Uuid::new_v4();
        let sealed = ring
            .seal(&ctx(row, "access_token"), b"tok-abc")
            .expect("seal");
        assert_eq!(sealed.key_id.as_str(), "k1");
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(sealed.ciphertext.len(), b"tok-abc".len() + TAG_LEN);

        let opened = ring.open(&ctx(row, "access_token"), &sealed).expect("open");
        assert_eq!(opened.expose(), b"tok-abc");
        let text = ring
            .open_string(&ctx(row, "access_token"), &sealed)
            .expect("open_string");
        assert_eq!(text.expose(), "tok-abc");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let sealed = ring.seal(&c, b"").expect("seal");
        assert!(ring.open(&c, &sealed).expect("open").expose().is_empty());
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "refresh_token");
        let a = ring.seal(&c, b"same").expect("seal");
        let b = ring.seal(&c, b"same").expect("seal");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn opening_with_another_integration_id_fails_as_tampered() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let sealed = ring
            .seal(&ctx(Uuid::new_v4(), "f"), b"secret")
            .expect("seal");
        let err = ring.open(&ctx(Uuid::new_v4(), "f"), &sealed).unwrap_err();
        assert!(matches!(err, KeyringError::Tampered), "{err:?}");
    }

    #[test]
    fn opening_as_another_field_fails_as_tampered() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let row = Uuid::new_v4();
        let sealed = ring
            .seal(&ctx(row, "access_token"), b"secret")
            .expect("seal");
        let err = ring.open(&ctx(row, "refresh_token"), &sealed).unwrap_err();
        assert!(matches!(err, KeyringError::Tampered), "{err:?}");
    }

    #[test]
    fn relabelling_the_key_id_fails_as_tampered() {
        // Both ids map to the same key bytes, so only the AAD binding can catch it.
        let ring = ring(&format!("k1:{0},k2:{0}", b64(7)));
        let c = ctx(Uuid::new_v4(), "f");
        let mut sealed = ring.seal(&c, b"secret").expect("seal");
        assert_eq!(sealed.key_id.as_str(), "k2");
        sealed.key_id = KeyId::parse("k1").expect("valid id");
        let err = ring.open(&c, &sealed).unwrap_err();
        assert!(matches!(err, KeyringError::Tampered), "{err:?}");
    }

    #[test]
    fn a_flipped_ciphertext_bit_fails_as_tampered() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let sealed = ring.seal(&c, b"secret").expect("seal");
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 0x01;
            let err = ring.open(&c, &bad).unwrap_err();
            assert!(matches!(err, KeyringError::Tampered), "byte {i}: {err:?}");
        }
        let mut bad = sealed.clone();
        bad.nonce[0] ^= 0x80;
        assert!(matches!(ring.open(&c, &bad), Err(KeyringError::Tampered)));
    }

    #[test]
    fn truncated_ciphertext_fails_as_tampered() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let mut sealed = ring.seal(&c, b"secret").expect("seal");
        sealed.ciphertext.truncate(5);
        assert!(matches!(
            ring.open(&c, &sealed),
            Err(KeyringError::Tampered)
        ));
        sealed.ciphertext.clear();
        assert!(matches!(
            ring.open(&c, &sealed),
            Err(KeyringError::Tampered)
        ));
    }

    #[test]
    fn a_nonce_of_the_wrong_length_is_rejected() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let mut sealed = ring.seal(&c, b"secret").expect("seal");
        sealed.nonce.pop();
        let err = ring.open(&c, &sealed).unwrap_err();
        assert!(
            matches!(err, KeyringError::InvalidNonceLength { len: 11 }),
            "{err:?}"
        );
    }

    #[test]
    fn an_unknown_key_id_is_reported_by_id() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let mut sealed = ring.seal(&c, b"secret").expect("seal");
        sealed.key_id = KeyId::parse("gone").expect("valid id");
        let err = ring.open(&c, &sealed).unwrap_err();
        assert!(matches!(&err, KeyringError::UnknownKey(id) if id.as_str() == "gone"));
        assert_eq!(err.to_string(), "no key with id `gone` in the key ring");
    }

    #[test]
    fn open_string_rejects_invalid_utf8() {
        let ring = ring(&format!("k1:{}", b64(1)));
        let c = ctx(Uuid::new_v4(), "f");
        let sealed = ring.seal(&c, &[0xff, 0xfe]).expect("seal");
        assert!(matches!(
            ring.open_string(&c, &sealed),
            Err(KeyringError::NotUtf8)
        ));
        assert_eq!(
            ring.open(&c, &sealed).expect("open").expose(),
            &[0xff, 0xfe]
        );
    }

    #[test]
    fn rotation_opens_old_values_rewraps_them_and_retires_the_old_key() {
        let k1 = format!("k1:{}", b64(1));
        let k2 = format!("k2:{}", b64(2));
        let c = ctx(Uuid::new_v4(), "client_secret");

        let ring_a = ring(&k1);
        let old = ring_a.seal(&c, b"s3cret").expect("seal");
        assert!(!ring_a.needs_rewrap(&old));

        let ring_b = ring(&format!("{k1}, {k2}"));
        assert_eq!(ring_b.active_id().as_str(), "k2");
        assert_eq!(
            ring_b.open(&c, &old).expect("old key still opens").expose(),
            b"s3cret"
        );
        assert!(ring_b.needs_rewrap(&old));

        let plaintext = ring_b.open(&c, &old).expect("open");
        let new = ring_b.seal(&c, plaintext.expose()).expect("reseal");
        assert_eq!(new.key_id.as_str(), "k2");
        assert!(!ring_b.needs_rewrap(&new));

        let ring_c = ring(&k2);
        assert_eq!(ring_c.open(&c, &new).expect("open new").expose(), b"s3cret");
        let err = ring_c.open(&c, &old).unwrap_err();
        assert!(matches!(&err, KeyringError::UnknownKey(id) if id.as_str() == "k1"));
    }

    #[test]
    fn the_active_key_defaults_to_the_last_entry_and_can_be_chosen() {
        let spec = format!("k1:{}, k2:{} ,k0:{}", b64(1), b64(2), b64(3));
        assert_eq!(ring(&spec).active_id().as_str(), "k0");

        let chosen = KeyRing::parse(&spec, Some("k1")).expect("k1 is in the ring");
        assert_eq!(chosen.active_id().as_str(), "k1");
        let sealed = chosen.seal(&ctx(Uuid::new_v4(), "f"), b"x").expect("seal");
        assert_eq!(sealed.key_id.as_str(), "k1");

        let blank = KeyRing::parse(&spec, Some("  ")).expect("blank active means unset");
        assert_eq!(blank.active_id().as_str(), "k0");

        let ids: Vec<&str> = chosen.key_ids().map(KeyId::as_str).collect();
        assert_eq!(ids, ["k0", "k1", "k2"]);
        assert!(chosen.contains(&KeyId::parse("k2").expect("valid id")));
        assert!(!chosen.contains(&KeyId::parse("k9").expect("valid id")));
    }

    #[test]
    fn parse_errors_name_the_problem_but_never_the_key_text() {
        let key = b64(9);
        let short = STANDARD.encode([9_u8; 16]);
        let cases: Vec<ParseCase<'_>> = vec![
            (String::new(), None, |e| {
                matches!(e, KeyringError::EmptySpec)
            }),
            (" \t ".into(), None, |e| {
                matches!(e, KeyringError::EmptySpec)
            }),
            // Bare key, id forgotten.
            (key.clone(), None, |e| {
                matches!(e, KeyringError::MalformedEntry { index: 0 })
            }),
            (format!("k1:{key},"), None, |e| {
                matches!(e, KeyringError::MalformedEntry { index: 1 })
            }),
            (format!("k1:{key},k2:"), None, |e| {
                matches!(e, KeyringError::MalformedEntry { index: 1 })
            }),
            (format!(":{key}"), None, |e| {
                matches!(e, KeyringError::MalformedEntry { index: 0 })
            }),
            // Fields swapped: the key lands in the id slot and must not be echoed.
            (format!("k1:{key},{key}:k2"), None, |e| {
                matches!(e, KeyringError::InvalidEntryKeyId { index: 1 })
            }),
            (format!("bad id:{key}"), None, |e| {
                matches!(e, KeyringError::InvalidEntryKeyId { index: 0 })
            }),
            (format!("k1:{}", &key[..key.len() - 1]), None, |e| {
                matches!(e, KeyringError::InvalidBase64 { index: 0 })
            }),
            (format!("k1:{key}!"), None, |e| {
                matches!(e, KeyringError::InvalidBase64 { index: 0 })
            }),
            (format!("k1:{short}"), None, |e| {
                matches!(e, KeyringError::InvalidKeyLength { index: 0, len: 16 })
            }),
            (
                format!("k1:{key},k1:{key}"),
                None,
                |e| matches!(e, KeyringError::DuplicateKeyId(id) if id.as_str() == "k1"),
            ),
            (
                format!("k1:{key}"),
                Some("k2"),
                |e| matches!(e, KeyringError::UnknownActiveKey(id) if id.as_str() == "k2"),
            ),
            (format!("k1:{key}"), Some(key.as_str()), |e| {
                matches!(e, KeyringError::InvalidKeyId)
            }),
        ];

        for (spec, active, expected) in cases {
            let err = parse_err(&spec, active);
            assert!(expected(&err), "spec {spec:?}: unexpected {err:?}");
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains(&key), "key text leaked: {shown}");
                assert!(!shown.contains(&short), "key text leaked: {shown}");
                assert!(!shown.contains(&key[..8]), "key text leaked: {shown}");
            }
            let message = err.to_string();
            assert!(
                message.starts_with(|c: char| c.is_lowercase()),
                "not lowercase: {message}"
            );
        }
    }

    #[test]
    fn key_id_parse_enforces_charset_and_length() {
        for ok in ["k1", "a", "K_2024.01-x", &"x".repeat(32)] {
            assert_eq!(KeyId::parse(ok).expect("valid id").as_str(), ok);
        }
        for bad in ["", " k1", "k 1", "k1:", "ключ", "k/1", &"x".repeat(33)] {
            assert!(
                matches!(KeyId::parse(bad), Err(KeyringError::InvalidKeyId)),
                "{bad:?}"
            );
        }
        assert_eq!(KeyId::parse("k1").expect("valid id").to_string(), "k1");
    }

    #[test]
    fn generate_entry_parses_back_into_a_working_ring() {
        let entry = KeyRing::generate_entry();
        let (id, encoded) = entry.split_once(':').expect("entry has a colon");
        assert_eq!(id.len(), 20, "k + 14 timestamp digits + '-' + 4 hex: {id}");
        assert!(id.starts_with('k') && id[1..15].chars().all(|c| c.is_ascii_digit()));
        assert_ne!(
            KeyRing::generate_entry().split_once(':').map(|e| e.0),
            Some(id),
            "ids differ"
        );
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), KEY_LEN);

        let ring = ring(&entry);
        assert_eq!(ring.active_id().as_str(), id);
        let c = ctx(Uuid::new_v4(), "f");
        let sealed = ring.seal(&c, b"hello").expect("seal");
        assert_eq!(ring.open(&c, &sealed).expect("open").expose(), b"hello");

        assert_ne!(KeyRing::generate_entry(), entry, "keys are random");
    }

    #[test]
    fn debug_output_never_shows_key_or_secret_bytes() {
        let key = b64(0x41);
        let ring = ring(&format!("k1:{key},k2:{}", b64(0x42)));
        let shown = format!("{ring:?}");
        assert_eq!(
            shown,
            r#"KeyRing { key_ids: ["k1", "k2"], active: KeyId("k2") }"#
        );
        assert!(!shown.contains(&key));

        let c = ctx(Uuid::new_v4(), "f");
        let sealed = ring.seal(&c, b"plaintext-token").expect("seal");
        let shown = format!("{sealed:?}");
        assert_eq!(
            shown,
            r#"Sealed { key_id: KeyId("k2"), nonce_len: 12, ciphertext_len: 31 }"#
        );
        assert!(!shown.contains(&format!("{:?}", sealed.ciphertext)));
        assert!(!shown.contains(&format!("{:?}", sealed.nonce)));

        let opened = ring.open_string(&c, &sealed).expect("open");
        assert_eq!(format!("{opened:?}"), "[redacted]");
        assert_eq!(format!("{opened}"), "[redacted]");
    }
}
