//! The hash key of a request under a consistent-hashing policy: a header's
//! value, a cookie's value, or the client's IP address.

use std::net::IpAddr;

use crate::request::{HeaderFields, RequestView};
use crate::table::lb::{hash, HashOn};

/// The key `on` names in `request` from `client`, hashed; `None` when the
/// request does not carry it (the balancer then takes endpoints in turn).
/// With several fields of the header, the first counts.
pub fn of_request<F: HeaderFields>(
    on: &HashOn,
    request: &RequestView<'_, F>,
    client: IpAddr,
) -> Option<u64> {
    match on {
        HashOn::ClientAddress => Some(of_address(client)),
        HashOn::Header(name) => request.values(name.as_bytes()).next().map(hash::stable),
        HashOn::Cookie(name) => request
            .values(b"cookie")
            .find_map(|line| cookie(line, name.as_bytes()))
            .map(hash::stable),
    }
}

/// The key `on` names for a TCP connection from `client`: only the
/// address can be had there.
pub fn of_connection(on: &HashOn, client: IpAddr) -> Option<u64> {
    match on {
        HashOn::ClientAddress => Some(of_address(client)),
        HashOn::Header(_) | HashOn::Cookie(_) => None,
    }
}

/// The hash of an IP address, an IPv4 client reached over an IPv6 socket
/// (`::ffff:a.b.c.d`) counting as itself.
fn of_address(client: IpAddr) -> u64 {
    match client.to_canonical() {
        IpAddr::V4(v4) => hash::stable(&v4.octets()),
        IpAddr::V6(v6) => hash::stable(&v6.octets()),
    }
}

/// The value of cookie `name` in one `Cookie` field (`a=1; b=2`).
fn cookie<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    line.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        (pair[..eq].trim_ascii() == name).then(|| pair[eq + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fields(Vec<(&'static [u8], &'static [u8])>);

    impl HeaderFields for Fields {
        type Values<'s> = Box<dyn Iterator<Item = &'s [u8]> + 's>;

        fn values<'s>(&'s self, name: &'s [u8]) -> Self::Values<'s> {
            Box::new(
                self.0
                    .iter()
                    .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| *v),
            )
        }
    }

    fn request(fields: Vec<(&'static [u8], &'static [u8])>) -> RequestView<'static, Fields> {
        RequestView::new(b"GET", Some(b"a.example"), b"/", Fields(fields))
    }

    #[test]
    fn a_header_key_is_its_first_value() {
        let on = HashOn::Header("x-user".into());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let r = request(vec![(b"X-User", b"alice"), (b"x-user", b"bob")]);
        assert_eq!(of_request(&on, &r, ip), Some(hash::stable(b"alice")));
        assert_eq!(of_request(&on, &request(vec![]), ip), None);
    }

    #[test]
    fn a_cookie_key_is_found_in_any_cookie_field() {
        let on = HashOn::Cookie("session".into());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let r = request(vec![
            (b"cookie", b"theme=dark"),
            (b"cookie", b"a=1;  session = s-42 ; b=2"),
        ]);
        assert_eq!(of_request(&on, &r, ip), Some(hash::stable(b"s-42")));
        let r = request(vec![(b"cookie", b"sessionid=7")]);
        assert_eq!(of_request(&on, &r, ip), None);
    }

    #[test]
    fn a_client_address_key_ignores_the_mapping_to_v6() {
        let on = HashOn::ClientAddress;
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(of_connection(&on, v4), of_connection(&on, mapped));
        assert_eq!(
            of_request(&on, &request(vec![]), v4),
            of_connection(&on, v4)
        );
        assert_eq!(of_connection(&HashOn::Header("x".into()), v4), None);
    }
}
