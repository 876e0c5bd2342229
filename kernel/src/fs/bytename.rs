//! File names are bytes on Linux: any byte but `/` and NUL, UTF-8 or not (busybox's `ls`
//! unicode tests create names holding broken UTF-8 sequences). The VFS keeps names as
//! `String`s, so the system-call layer maps names to strings and back losslessly:
//!
//! - a byte that is not part of valid UTF-8 (always ≥ 0x80) becomes the escape character
//!   `U+10FF00 + byte` (`U+10FF80..=U+10FFFF`, the end of plane 16's private use area);
//! - a valid character that is itself in that range has each of its four bytes escaped the
//!   same way, so escape characters in a `String` only ever come from escaping;
//! - back to bytes, each escape character is its byte, everything else its UTF-8.
//!
//! So names that are valid UTF-8 (all but the rarest) are unchanged, and every byte string
//! comes back exactly as it went in. Lengths Linux limits (`NAME_MAX`, `PATH_MAX`) are of
//! the bytes: [`byte_len`].

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

const FIRST: u32 = 0x10_FF80;
const LAST: u32 = 0x10_FFFF;

fn is_escape(c: char) -> bool {
    (FIRST..=LAST).contains(&(c as u32))
}

fn escape(s: &mut String, b: u8) {
    debug_assert!(b >= 0x80);
    s.push(char::from_u32(0x10_FF00 + u32::from(b)).expect("a plane-16 scalar value"));
}

/// The `String` a name of bytes from user space is kept as.
pub fn from_bytes(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) if !s.chars().any(is_escape) => s,
        Ok(s) => decode(s.as_bytes()),
        Err(e) => decode(e.as_bytes()),
    }
}

fn decode(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_escape(c) {
                let mut buf = [0u8; 4];
                for &x in c.encode_utf8(&mut buf).as_bytes() {
                    escape(&mut s, x);
                }
            } else {
                s.push(c);
            }
        }
        for &x in chunk.invalid() {
            escape(&mut s, x);
        }
    }
    s
}

/// The bytes user space sees for a name kept as `s`.
pub fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    if !s.chars().any(is_escape) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        if is_escape(c) {
            out.push((c as u32 - 0x10_FF00) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// How many bytes the name kept as `s` has for user space (what `NAME_MAX`/`PATH_MAX`
/// limit): an escape character is one byte, not four.
pub fn byte_len(s: &str) -> usize {
    s.len() - 3 * s.chars().filter(|&c| is_escape(c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(b: &[u8]) {
        let s = from_bytes(b.to_vec());
        assert_eq!(&*to_bytes(&s), b, "{b:x?} → {s:?}");
        assert_eq!(byte_len(&s), b.len());
    }

    #[test]
    fn utf8_is_unchanged() {
        assert_eq!(from_bytes(b"plain".to_vec()), "plain");
        assert_eq!(from_bytes("grüße €".as_bytes().to_vec()), "grüße €");
        assert!(matches!(to_bytes("grüße"), Cow::Borrowed(_)));
        round("0005_\"\u{800}\"|".as_bytes());
    }

    #[test]
    fn any_bytes_round_trip() {
        round(b"a\xffb");
        round(b"\xed\xa0\x80"); // a UTF-16 surrogate's encoding
        round(b"\xc0\x80 \xf8\x88\x80\x80\x80 \xfe\xff");
        round(b"x\xe2\x82"); // cut short at the end
        // A real character in the escape range and the bytes of its encoding.
        round("\u{10FF80}\u{10FFFF}".as_bytes());
        round(b"\xf4\x8f\xbe\x80\xf4\x8f");
        let all: Vec<u8> = (1..=255u8).filter(|&b| b != b'/').collect();
        round(&all);
    }

    #[test]
    fn escapes_are_distinct_from_text() {
        let a = from_bytes(b"\xff".to_vec());
        let b = from_bytes("\u{10FFFF}".as_bytes().to_vec());
        assert_ne!(a, b);
        assert_eq!(byte_len(&a), 1);
        assert_eq!(byte_len(&b), 4);
    }
}
