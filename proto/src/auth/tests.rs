//! Tests of the signature scheme and the replay guard: what a signature
//! covers, rotation, the window, header errors, and (proptest) that no
//! request is admitted twice whatever the guard's capacity.

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_800_000_000_000;
const NONCE: &str = "000102030405060708090a0b0c0d0e0f";

fn secret(byte: u8) -> Secret {
    Secret::from_bytes([byte; SECRET_LEN])
}

/// A request to `/raft/append` with `body`, signed under `secret`.
fn signed(secret: &Secret, body: &[u8], date_ms: u64, nonce: &str) -> (String, String) {
    let digest = body_digest(body);
    let signature = sign(
        secret,
        &SignedParts {
            method: "POST",
            path_and_query: "/raft/append",
            content_sha256: &digest,
            date_ms,
            nonce,
        },
    );
    (digest, signature)
}

fn check(
    accepted: &[Secret],
    path: &str,
    date: &str,
    digest: &str,
    signature: &str,
) -> Result<Verified, AuthError> {
    verify(
        accepted,
        "POST",
        path,
        ReceivedHeaders {
            date: Some(date),
            nonce: Some(NONCE),
            content_sha256: Some(digest),
            signature: Some(signature),
        },
        NOW,
        DEFAULT_WINDOW_MS,
    )
}

#[test]
fn a_signed_request_verifies_with_its_body_and_nothing_else() {
    let key = secret(7);
    let (digest, signature) = signed(&key, b"entries", NOW, NONCE);
    let date = NOW.to_string();
    let verified = check(
        std::slice::from_ref(&key),
        "/raft/append",
        &date,
        &digest,
        &signature,
    )
    .expect("verifies");
    assert_eq!(verified.check_body(b"entries"), Ok(()));
    assert_eq!(
        verified.check_body(b"entrieS"),
        Err(AuthError::BodyMismatch)
    );
    // Another path, date or secret: the signature no longer verifies.
    assert_eq!(
        check(
            std::slice::from_ref(&key),
            "/raft/vote",
            &date,
            &digest,
            &signature
        ),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        check(
            std::slice::from_ref(&key),
            "/raft/append",
            &(NOW + 1).to_string(),
            &digest,
            &signature
        ),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        check(&[secret(8)], "/raft/append", &date, &digest, &signature),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn during_a_rotation_either_secret_is_accepted() {
    let (old, new) = (secret(1), secret(2));
    let date = NOW.to_string();
    for signer in [&old, &new] {
        let (digest, signature) = signed(signer, b"x", NOW, NONCE);
        assert!(check(
            &[new.clone(), old.clone()],
            "/raft/append",
            &date,
            &digest,
            &signature
        )
        .is_ok());
    }
    let (digest, signature) = signed(&old, b"x", NOW, NONCE);
    assert_eq!(
        check(&[new], "/raft/append", &date, &digest, &signature),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn a_date_outside_the_window_is_stale() {
    let key = secret(3);
    for date in [NOW - DEFAULT_WINDOW_MS - 1, NOW + DEFAULT_WINDOW_MS + 1] {
        let (digest, signature) = signed(&key, b"", date, NONCE);
        let result = check(
            std::slice::from_ref(&key),
            "/raft/append",
            &date.to_string(),
            &digest,
            &signature,
        );
        assert!(matches!(result, Err(AuthError::Stale { .. })), "{result:?}");
    }
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let key = secret(4);
    let (digest, signature) = signed(&key, b"", NOW, NONCE);
    let result = verify(
        std::slice::from_ref(&key),
        "POST",
        "/raft/append",
        ReceivedHeaders::default(),
        NOW,
        1,
    );
    assert_eq!(result, Err(AuthError::Missing(DATE_HEADER)));
    let result = check(
        std::slice::from_ref(&key),
        "/raft/append",
        "yesterday",
        &digest,
        &signature,
    );
    assert_eq!(result, Err(AuthError::Malformed(DATE_HEADER)));
    let result = check(&[key], "/raft/append", &NOW.to_string(), "abc", &signature);
    assert_eq!(result, Err(AuthError::Malformed(CONTENT_SHA256_HEADER)));
}

#[test]
fn an_unsigned_payload_is_refused_where_a_body_must_be_signed() {
    let key = secret(5);
    let signature = sign(
        &key,
        &SignedParts {
            method: "POST",
            path_and_query: "/raft/append",
            content_sha256: UNSIGNED_PAYLOAD,
            date_ms: NOW,
            nonce: NONCE,
        },
    );
    let verified = check(
        &[key],
        "/raft/append",
        &NOW.to_string(),
        UNSIGNED_PAYLOAD,
        &signature,
    )
    .expect("the headers verify");
    assert_eq!(verified.content_sha256, None);
    assert_eq!(
        verified.check_body(b"anything"),
        Err(AuthError::UnsignedBody)
    );
}

fn verified(date_ms: u64, n: u32) -> Verified {
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_le_bytes());
    Verified {
        date_ms,
        nonce,
        content_sha256: None,
    }
}

#[test]
fn a_nonce_is_admitted_once() {
    let mut guard = ReplayGuard::new(DEFAULT_WINDOW_MS, 10);
    assert_eq!(guard.admit(&verified(NOW, 1), NOW), Ok(()));
    assert_eq!(
        guard.admit(&verified(NOW, 1), NOW + 5),
        Err(AuthError::Replayed)
    );
    assert_eq!(guard.admit(&verified(NOW, 2), NOW + 5), Ok(()));
}

#[test]
fn nonces_older_than_the_window_are_forgotten() {
    let mut guard = ReplayGuard::new(1_000, 10);
    guard.admit(&verified(NOW, 1), NOW).expect("first");
    guard
        .admit(&verified(NOW + 2_000, 2), NOW + 2_000)
        .expect("later");
    assert_eq!(guard.len(), 1, "the first nonce's date left the window");
}

proptest! {
    /// Whatever the order and the capacity, no request (its date and
    /// nonce, which the signature covers) is admitted twice: a full guard
    /// forgets its oldest nonces and then refuses every date not newer
    /// than them.
    #[test]
    fn no_nonce_is_ever_admitted_twice(
        capacity in 1usize..8,
        requests in proptest::collection::vec((0u64..50, 0u32..20), 1..200),
    ) {
        let mut guard = ReplayGuard::new(1_000_000, capacity);
        let mut admitted = std::collections::HashSet::new();
        for (date, n) in requests {
            if guard.admit(&verified(NOW + date, n), NOW + 50).is_ok() {
                prop_assert!(admitted.insert((date, n)), "request ({}, {}) admitted twice", date, n);
            }
            prop_assert!(guard.len() <= capacity);
        }
    }

    /// A secret's text form reads back as the same secret.
    #[test]
    fn a_secret_round_trips_through_its_text(bytes in proptest::array::uniform32(any::<u8>())) {
        let key = Secret::from_bytes(bytes);
        prop_assert_eq!(Secret::from_hex(&format!(" {}\n", key.to_hex())), Ok(key));
    }
}
