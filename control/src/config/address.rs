//! Socket addresses as written in the file: `"127.0.0.1:8080"`, `"[::1]:8080"`.

use std::net::{IpAddr, SocketAddr};

/// Parses an `ip:port` address; the error quotes the value and says what is
/// missing. Host names are refused because nothing resolves them yet.
pub(crate) fn parse(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let why = if text.trim().is_empty() {
        "it is empty".to_owned()
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        if ip.is_ipv6() {
            "it has no port (an IPv6 address goes in brackets, as in [::1]:8080)".to_owned()
        } else {
            "it has no port".to_owned()
        }
    } else if let Some((host, port)) = text.rsplit_once(':') {
        if port.parse::<u16>().is_err() {
            format!("{port:?} is not a port (0 to 65535)")
        } else if host.contains(':') {
            "an IPv6 address goes in brackets, as in [::1]:8080".to_owned()
        } else {
            format!("{host:?} is not an IP address, and host names (DNS) are not supported yet")
        }
    } else {
        "it is not an IP address and port".to_owned()
    };
    Err(format!(
        "invalid address {text:?}: {why}; expected ip:port, e.g. \"127.0.0.1:8080\""
    ))
}

/// Whether two listening addresses would take the same connections: the same
/// port on the same IP, or on a wildcard IP of the same family.
///
/// With `SO_REUSEPORT` both binds would succeed and the kernel would quietly
/// share connections between the two listeners, so this is caught here.
pub(crate) fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6() {
        assert_eq!(parse("127.0.0.1:8080"), Ok(([127, 0, 0, 1], 8080).into()));
        assert!(parse("[::1]:8080").is_ok());
    }

    #[test]
    fn errors_say_what_is_missing() {
        let cases = [
            ("127.0.0.1", "it has no port"),
            ("db.internal:5432", "host names (DNS) are not supported yet"),
            ("127.0.0.1:http", "\"http\" is not a port"),
            ("::1:80", "goes in brackets"),
            ("fe80::1::80", "goes in brackets"),
            ("", "it is empty"),
            ("nonsense", "not an IP address and port"),
        ];
        for (text, why) in cases {
            let error = parse(text).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid address {text:?}: ")),
                "{error}"
            );
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn wildcards_overlap_within_a_family() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(overlaps(at("127.0.0.1:80"), at("127.0.0.1:80")));
        assert!(overlaps(at("0.0.0.0:80"), at("127.0.0.1:80")));
        assert!(!overlaps(at("0.0.0.0:80"), at("127.0.0.1:81")));
        assert!(!overlaps(at("127.0.0.1:80"), at("127.0.0.2:80")));
        assert!(!overlaps(at("[::]:80"), at("127.0.0.1:80")));
    }
}
