//! Unit tests of the key ring: round trips, tampering, rotation, parsing, redaction.

use uuid::Uuid;

use super::*;
use crate::domain::WorkspaceId;

fn b64(byte: u8) -> String {
    STANDARD.encode([byte; KEY_LEN])
}

fn ring(spec: &str) -> KeyRing {
    KeyRing::parse(spec, None).expect("test spec is valid")
}

const WORKSPACE: WorkspaceId = WorkspaceId(Uuid::from_u128(0x5eed));

fn ctx(integration_id: Uuid, field: &str) -> SealContext<'_> {
    SealContext::credential(WORKSPACE, integration_id, field)
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

/// A value as rows were sealed before v2: the v1 AAD, under the ring's active key.
fn seal_v1(ring: &KeyRing, c: &SealContext<'_>, plaintext: &[u8]) -> Sealed {
    let cipher = ring
        .keys
        .get(&ring.active)
        .expect("the active key is in the ring");
    let nonce = [7_u8; NONCE_LEN];
    let mut buffer = plaintext.to_vec();
    cipher
        .encrypt_in_place(
            &Nonce::<U12>::from(nonce),
            &c.aad(AadVersion::V1, &ring.active),
            &mut buffer,
        )
        .expect("encrypts");
    Sealed {
        key_id: ring.active.clone(),
        aad: AadVersion::V1,
        nonce: nonce.to_vec(),
        ciphertext: buffer,
    }
}

#[test]
fn opening_in_another_workspace_fails_as_tampered() {
    let ring = ring(&format!("k1:{}", b64(1)));
    let row = Uuid::new_v4();
    let sealed = ring.seal(&ctx(row, "f"), b"secret").expect("seal");
    assert_eq!(sealed.aad, AadVersion::V2);
    let elsewhere = SealContext::credential(WorkspaceId(Uuid::new_v4()), row, "f");
    let err = ring.open(&elsewhere, &sealed).unwrap_err();
    assert!(matches!(err, KeyringError::Tampered), "{err:?}");
}

#[test]
fn a_v1_value_opens_needs_a_rewrap_even_under_the_active_key_and_reseals_to_v2() {
    let ring = ring(&format!("k1:{}", b64(1)));
    let c = ctx(Uuid::new_v4(), "api_key");
    let old = seal_v1(&ring, &c, b"s3cret");
    assert_eq!(ring.open(&c, &old).expect("v1 opens").expose(), b"s3cret");
    assert!(ring.needs_rewrap(&old), "v1 under the active key");

    let new = ring.reseal(&c, &old).expect("reseals");
    assert_eq!((new.aad, new.key_id.as_str()), (AadVersion::V2, "k1"));
    assert!(!ring.needs_rewrap(&new));
    assert_eq!(ring.open(&c, &new).expect("v2 opens").expose(), b"s3cret");
    let elsewhere = SealContext::credential(WorkspaceId(Uuid::new_v4()), c.row_id, c.field);
    assert!(matches!(
        ring.open(&elsewhere, &new),
        Err(KeyringError::Tampered)
    ));
}

#[test]
fn relabelling_the_aad_version_fails_as_tampered() {
    let ring = ring(&format!("k1:{}", b64(1)));
    let c = ctx(Uuid::new_v4(), "f");
    let mut v2 = ring.seal(&c, b"secret").expect("seal");
    v2.aad = AadVersion::V1;
    assert!(matches!(ring.open(&c, &v2), Err(KeyringError::Tampered)));
    let mut v1 = seal_v1(&ring, &c, b"secret");
    v1.aad = AadVersion::V2;
    assert!(matches!(ring.open(&c, &v1), Err(KeyringError::Tampered)));
}

#[test]
fn resealing_a_value_whose_key_is_gone_fails_and_names_the_key() {
    let ring = ring(&format!("k1:{}", b64(1)));
    let c = ctx(Uuid::new_v4(), "f");
    let mut sealed = ring.seal(&c, b"secret").expect("seal");
    sealed.key_id = KeyId::parse("gone").expect("valid id");
    let err = ring.reseal(&c, &sealed).unwrap_err();
    assert!(matches!(&err, KeyringError::UnknownKey(id) if id.as_str() == "gone"));
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
        r#"Sealed { key_id: KeyId("k2"), aad: V2, nonce_len: 12, ciphertext_len: 31 }"#
    );
    assert!(!shown.contains(&format!("{:?}", sealed.ciphertext)));
    assert!(!shown.contains(&format!("{:?}", sealed.nonce)));

    let opened = ring.open_string(&c, &sealed).expect("open");
    assert_eq!(format!("{opened:?}"), "[redacted]");
    assert_eq!(format!("{opened}"), "[redacted]");
}
