//! Tests of the client key format and its header forms.

use super::*;

fn key() -> ClientKey {
    ClientKey {
        id: KeyId(42),
        secret: [9; KEY_SECRET_LEN],
    }
}

#[test]
fn a_key_round_trips_through_its_text() {
    let text = key().to_string();
    assert!(text.starts_with("tfk1.42."));
    assert_eq!(text.parse::<ClientKey>(), Ok(key()));
    assert!(!format!("{:?}", key()).contains(&hex::encode([9u8; 32])));
}

#[test]
fn malformed_keys_are_refused() {
    let good = key().to_string();
    for bad in [
        "",
        "tfk1",
        "tfk1.42",
        "tfk2.42.00",
        "tfk1.x.00",
        &good[..good.len() - 1],
        &format!("{good}.1"),
        &good.replace("tfk1.42.", "tfk1.-1."),
    ] {
        assert_eq!(bad.parse::<ClientKey>(), Err(KeyFormatError), "{bad}");
    }
}

#[test]
fn only_the_right_secret_matches_its_hash() {
    let hash = secret_hash(&key().secret);
    assert!(key().matches(&hash));
    let other = ClientKey {
        secret: [8; KEY_SECRET_LEN],
        ..key()
    };
    assert!(!other.matches(&hash));
}

#[test]
fn bearer_and_basic_headers_carry_the_key() {
    assert_eq!(from_authorization(&key().bearer()), Some(Ok(key())));
    let basic = BASE64.encode(format!("alice:{}", key()));
    assert_eq!(
        from_authorization(&format!("Basic {basic}")),
        Some(Ok(key()))
    );
    assert_eq!(
        from_authorization("Bearer nonsense"),
        Some(Err(KeyFormatError))
    );
    assert_eq!(from_authorization("Digest x"), None);
    assert_eq!(from_authorization("Basic !!!"), None);
}

#[test]
fn access_names_parse() {
    assert_eq!("ro".parse(), Ok(Access::ReadOnly));
    assert_eq!("read-write".parse(), Ok(Access::ReadWrite));
    assert!("admin".parse::<Access>().is_err());
}
