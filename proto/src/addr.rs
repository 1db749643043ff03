//! A peer address as one process tells another where to reach it (a chunk
//! server's report, a node in a membership request): `host:port`, the
//! host an IPv4 address, a bracketed IPv6 address or a DNS name, checked
//! before it is stored and handed to clients and peers as a place to
//! connect to.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest address accepted (a DNS name is at most 253 bytes).
pub const MAX_ADDR_LEN: usize = 261;

/// What is wrong with an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is {0} bytes long; at most {MAX_ADDR_LEN}")]
    TooLong(usize),
    #[error("{0:?} is not HOST:PORT")]
    NoPort(String),
    #[error("{0:?} has no port between 1 and 65535")]
    BadPort(String),
    #[error("{0:?} is neither an IP address nor a DNS name")]
    BadHost(String),
}

/// Checks `addr` is `host:port` as described in the module doc.
pub fn validate(addr: &str) -> Result<(), AddrError> {
    if addr.is_empty() {
        return Err(AddrError::Empty);
    }
    if addr.len() > MAX_ADDR_LEN {
        return Err(AddrError::TooLong(addr.len()));
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| AddrError::NoPort(addr.to_owned()))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 && !port.starts_with('+') => {}
        _ => return Err(AddrError::BadPort(addr.to_owned())),
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host),
    };
    if host_ok {
        Ok(())
    } else {
        Err(AddrError::BadHost(addr.to_owned()))
    }
}

/// Letters, digits and hyphens in dot-separated labels of 1 to 63 bytes,
/// no label starting or ending with a hyphen.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_that_can_be_dialled_pass() {
        for addr in [
            "127.0.0.1:7001",
            "10.77.0.3:7100",
            "[::1]:7001",
            "chunk-3.example.org:7200",
            "localhost:1",
        ] {
            assert_eq!(validate(addr), Ok(()), "{addr}");
        }
    }

    #[test]
    fn anything_else_says_what_is_wrong() {
        assert_eq!(validate(""), Err(AddrError::Empty));
        assert!(matches!(validate("10.0.0.1"), Err(AddrError::NoPort(_))));
        for addr in [
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "10.0.0.1:+80",
            "10.0.0.1:http",
        ] {
            assert!(
                matches!(validate(addr), Err(AddrError::BadPort(_))),
                "{addr}"
            );
        }
        for addr in [
            "http://x:80",
            "a b:80",
            ":80",
            "-bad.example:80",
            "::1:80",
            "evil/../x:80",
            "host\n:80",
        ] {
            assert!(
                matches!(validate(addr), Err(AddrError::BadHost(_))),
                "{addr}"
            );
        }
        let long = format!("{}:80", "a".repeat(300));
        assert!(matches!(validate(&long), Err(AddrError::TooLong(_))));
    }
}
