//! The [`RequestView`] of an HTTP/1 request head: ranges of the head's
//! buffer, looked at in place.

use crate::proto::h1::request::RequestHead;
use crate::proto::h1::Header;
use crate::request::{HeaderFields, RequestView};

/// The view of `head`, parsed from `buf`: its method, its effective host
/// (the authority of an absolute-form target, else the `Host` field), its
/// path in normal form, and its fields.
pub fn view<'a>(head: &'a RequestHead, buf: &'a [u8]) -> RequestView<'a, Fields<'a>> {
    let authority = head.host.as_ref().map(|r| slice(buf, r));
    let fields = Fields {
        list: &head.headers,
        buf,
    };
    RequestView::new(head.method(buf), authority, head.normal_path(buf), fields)
}

/// An HTTP/1 head's fields: ranges into the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    list: &'a [Header],
    buf: &'a [u8],
}

impl HeaderFields for Fields<'_> {
    type Values<'s>
        = Values<'s>
    where
        Self: 's;

    fn values<'s>(&'s self, name: &'s [u8]) -> Values<'s> {
        Values {
            fields: self.list.iter(),
            buf: self.buf,
            name,
        }
    }
}

/// The values of an HTTP/1 head's fields of one name.
#[derive(Debug)]
pub struct Values<'s> {
    fields: std::slice::Iter<'s, Header>,
    buf: &'s [u8],
    name: &'s [u8],
}

impl<'s> Iterator for Values<'s> {
    type Item = &'s [u8];

    fn next(&mut self) -> Option<&'s [u8]> {
        let (buf, name) = (self.buf, self.name);
        self.fields
            .find(|h| h.name(buf).eq_ignore_ascii_case(name))
            .map(|h| h.value(buf))
    }
}

fn slice<'b>(buf: &'b [u8], range: &std::ops::Range<u32>) -> &'b [u8] {
    buf.get(range.start as usize..range.end as usize)
        .unwrap_or_default()
}
