//! A small `printf` for `rumpuser_dprintf`: integer, pointer, string and char conversions
//! with flags, width, precision and length modifiers. Floating-point conversions print
//! `<float>` (they are passed in vector registers, which `dprintf`'s entry does not save;
//! rump's debug output does not use them).

#![forbid(unsafe_code)]

/// Where the formatter takes its arguments from.
pub trait Args {
    /// The next integer-class argument (as the raw 64-bit register/stack slot).
    fn next(&mut self) -> u64;
    /// The NUL-terminated string at `ptr` (empty for NULL).
    fn cstr(&self, ptr: u64) -> &[u8];
}

/// A fixed buffer flushed to `out` when full.
struct Buf<'a> {
    data: [u8; 256],
    len: usize,
    out: &'a mut dyn FnMut(&[u8]),
}

impl Buf<'_> {
    fn put(&mut self, c: u8) {
        if self.len == self.data.len() {
            self.flush();
        }
        self.data[self.len] = c;
        self.len += 1;
    }
    fn put_all(&mut self, s: &[u8]) {
        for &c in s {
            self.put(c);
        }
    }
    fn pad(&mut self, c: u8, n: usize) {
        for _ in 0..n {
            self.put(c);
        }
    }
    fn flush(&mut self) {
        if self.len > 0 {
            (self.out)(&self.data[..self.len]);
            self.len = 0;
        }
    }
}

/// Formats `fmt` with `args`, writing output in chunks to `out`.
pub fn format(fmt: &[u8], args: &mut dyn Args, out: &mut dyn FnMut(&[u8])) {
    let mut b = Buf {
        data: [0; 256],
        len: 0,
        out,
    };
    let mut i = 0;
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            b.put(c);
            continue;
        }
        let (mut left, mut zero, mut plus, mut space, mut alt) =
            (false, false, false, false, false);
        loop {
            match at(i) {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        if at(i) == b'*' {
            let w = args.next() as i32;
            if w < 0 {
                left = true;
            }
            width = w.unsigned_abs() as usize;
            i += 1;
        } else {
            while at(i).is_ascii_digit() {
                width = width * 10 + usize::from(at(i) - b'0');
                i += 1;
            }
        }
        let mut prec: Option<usize> = None;
        if at(i) == b'.' {
            i += 1;
            if at(i) == b'*' {
                let p = args.next() as i32;
                prec = usize::try_from(p).ok();
                i += 1;
            } else {
                let mut p = 0usize;
                while at(i).is_ascii_digit() {
                    p = p * 10 + usize::from(at(i) - b'0');
                    i += 1;
                }
                prec = Some(p);
            }
        }
        // Length: bits of the argument.
        let mut bits = 32u32;
        loop {
            match at(i) {
                b'h' => {
                    bits = if at(i + 1) == b'h' {
                        i += 1;
                        8
                    } else {
                        16
                    }
                }
                b'l' | b'q' | b'z' | b'j' | b't' | b'L' => bits = 64,
                _ => break,
            }
            i += 1;
        }
        let conv = at(i);
        i += 1;
        let mut num = [0u8; 24];
        let (digits, prefix): (&[u8], &[u8]) = match conv {
            b'%' => {
                b.put(b'%');
                continue;
            }
            b'c' => {
                let ch = args.next() as u8;
                if !left {
                    b.pad(b' ', width.saturating_sub(1));
                }
                b.put(ch);
                if left {
                    b.pad(b' ', width.saturating_sub(1));
                }
                continue;
            }
            b's' => {
                let p = args.next();
                let s: &[u8] = if p == 0 { b"(null)" } else { args.cstr(p) };
                let s = match prec {
                    Some(p) if p < s.len() => &s[..p],
                    _ => s,
                };
                if !left {
                    b.pad(b' ', width.saturating_sub(s.len()));
                }
                b.put_all(s);
                if left {
                    b.pad(b' ', width.saturating_sub(s.len()));
                }
                continue;
            }
            b'd' | b'i' => {
                let raw = args.next();
                let v: i64 = match bits {
                    8 => i64::from(raw as i8),
                    16 => i64::from(raw as i16),
                    32 => i64::from(raw as i32),
                    _ => raw as i64,
                };
                let n = utoa(v.unsigned_abs(), 10, false, &mut num);
                let sign: &[u8] = if v < 0 {
                    b"-"
                } else if plus {
                    b"+"
                } else if space {
                    b" "
                } else {
                    b""
                };
                (&num[num.len() - n..], sign)
            }
            b'u' | b'x' | b'X' | b'o' | b'p' => {
                let raw = args.next();
                let v = if conv == b'p' {
                    raw
                } else {
                    truncate(raw, bits)
                };
                let (base, upper) = match conv {
                    b'u' => (10, false),
                    b'o' => (8, false),
                    b'X' => (16, true),
                    _ => (16, false),
                };
                let n = utoa(v, base, upper, &mut num);
                let prefix: &[u8] = match conv {
                    b'p' => b"0x",
                    b'x' if alt && v != 0 => b"0x",
                    b'X' if alt && v != 0 => b"0X",
                    b'o' if alt => b"0",
                    _ => b"",
                };
                (&num[num.len() - n..], prefix)
            }
            b'f' | b'F' | b'e' | b'E' | b'g' | b'G' | b'a' | b'A' => {
                b.put_all(b"<float>");
                continue;
            }
            0 => break,
            other => {
                b.put(b'%');
                b.put(other);
                continue;
            }
        };
        let zeros = prec.map_or(0, |p| p.saturating_sub(digits.len()));
        let body = prefix.len() + zeros + digits.len();
        let fill = width.saturating_sub(body);
        if !(left || zero && prec.is_none()) {
            b.pad(b' ', fill);
        }
        b.put_all(prefix);
        if !left && zero && prec.is_none() {
            b.pad(b'0', fill);
        }
        b.pad(b'0', zeros);
        b.put_all(digits);
        if left {
            b.pad(b' ', fill);
        }
    }
    b.flush();
}

fn truncate(v: u64, bits: u32) -> u64 {
    if bits >= 64 {
        v
    } else {
        v & ((1u64 << bits) - 1)
    }
}

/// Writes `v` in `base` right-aligned into `buf`; returns the digit count.
fn utoa(mut v: u64, base: u64, upper: bool, buf: &mut [u8; 24]) -> usize {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut n = 0;
    loop {
        n += 1;
        buf[buf.len() - n] = digits[(v % base) as usize];
        v /= base;
        if v == 0 {
            return n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    struct V(Vec<u64>, Vec<&'static [u8]>);
    impl Args for V {
        fn next(&mut self) -> u64 {
            self.0.remove(0)
        }
        fn cstr(&self, p: u64) -> &[u8] {
            self.1[p as usize - 1]
        }
    }

    fn f(fmt: &str, ints: &[u64], strs: &[&'static [u8]]) -> String {
        let mut out = Vec::new();
        format(
            fmt.as_bytes(),
            &mut V(ints.to_vec(), strs.to_vec()),
            &mut |s| out.extend_from_slice(s),
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn conversions() {
        assert_eq!(f("a%db", &[(-5i32) as u32 as u64], &[]), "a-5b");
        assert_eq!(f("%5d|%-4u|%05x", &[42, 7, 0xab], &[]), "   42|7   |000ab");
        assert_eq!(
            f("%lx %llu %zu", &[u64::MAX, 1 << 40, 3], &[]),
            "ffffffffffffffff 1099511627776 3"
        );
        assert_eq!(
            f("%s=%.2s %c%%", &[1, 2, b'z' as u64], &[b"key", b"value"]),
            "key=va z%"
        );
        assert_eq!(f("%p %#x", &[0x1000, 255], &[]), "0x1000 0xff");
        assert_eq!(f("%*d|%s", &[3, 1, 0], &[]), "  1|(null)");
        assert_eq!(f("%hhd %hd", &[0x1ff, 0x18000], &[]), "-1 -32768");
    }
}
