//! A USTAR reader over an in-memory archive: POSIX `ustar` headers (with the 155-byte
//! prefix), GNU `ustar  ` headers, GNU long names (`L`/`K`), PAX extended headers (`x`:
//! `path`, `linkpath`, `size`), base-256 numbers. Every header checksum is verified and
//! every malformed field is reported with its byte offset, never a panic.

use alloc::string::{String, ToString};
use core::fmt;

pub const BLOCK: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDev,
    BlockDev,
    Dir,
    Fifo,
}

#[derive(Debug)]
pub struct Entry<'a> {
    /// Normalised: no leading `/` or `./`, no trailing `/`, no `.` components; never `..`.
    pub path: String,
    pub kind: Kind,
    /// Permission bits (07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub data: &'a [u8],
    /// Symlink target (verbatim) or hard-link target (normalised like `path`).
    pub link: String,
    pub dev_major: u32,
    pub dev_minor: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarError {
    /// Byte offset of the offending header in the archive.
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tar header at byte {}: {}", self.offset, self.what)
    }
}

fn err(offset: usize, what: impl Into<String>) -> TarError {
    TarError {
        offset,
        what: what.into(),
    }
}

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            done: false,
        }
    }
}

fn field_str(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

/// Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set).
fn number(b: &[u8], off: usize, name: &str) -> Result<u64, TarError> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        if b[0] & 0x40 != 0 {
            return Err(err(off, alloc::format!("negative base-256 {name}")));
        }
        let mut v: u64 = u64::from(b[0] & 0x3F);
        for &c in &b[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(c)))
                .ok_or_else(|| err(off, alloc::format!("{name} overflows")))?;
        }
        return Ok(v);
    }
    let s = field_str(b);
    let s = s
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != b' ');
    let mut v: u64 = 0;
    let mut any = false;
    for c in s {
        if !(b'0'..=b'7').contains(&c) {
            return Err(err(
                off,
                alloc::format!(
                    "{name} field is not octal ({:?})",
                    String::from_utf8_lossy(b)
                ),
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(|| err(off, alloc::format!("{name} overflows")))?;
        any = true;
    }
    if !any && name == "checksum" {
        return Err(err(off, "empty checksum field"));
    }
    Ok(v)
}

fn text(b: &[u8], off: usize, name: &str) -> Result<String, TarError> {
    core::str::from_utf8(field_str(b))
        .map(ToString::to_string)
        .map_err(|_| err(off, alloc::format!("{name} is not UTF-8")))
}

/// Normalises an archive path; rejects `..` (an archive must not reach outside the root).
pub fn normalise(p: &str, off: usize) -> Result<String, TarError> {
    let mut out = String::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(err(
                    off,
                    alloc::format!("path {p:?} climbs out of the root with '..'"),
                ));
            }
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    Ok(out)
}

fn checksum_ok(h: &[u8], off: usize) -> Result<(), TarError> {
    let stored = number(&h[148..156], off, "checksum")?;
    let unsigned: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err(err(
            off,
            alloc::format!(
                "header checksum mismatch (stored {stored:o}, computed {unsigned:o}): the archive is corrupt"
            ),
        ))
    }
}

/// PAX records: "LEN key=value\n"…
fn pax(
    data: &[u8],
    off: usize,
    path: &mut Option<String>,
    link: &mut Option<String>,
    size: &mut Option<u64>,
) -> Result<(), TarError> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| err(off, "malformed PAX record"))?;
        let len: usize = core::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err(off, "malformed PAX record length"))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(err(off, "PAX record length out of range"));
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&c| c == b'=') {
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            let v = core::str::from_utf8(v).map_err(|_| err(off, "PAX value is not UTF-8"))?;
            match k {
                b"path" => *path = Some(v.to_string()),
                b"linkpath" => *link = Some(v.to_string()),
                b"size" => {
                    *size = Some(
                        v.parse()
                            .map_err(|_| err(off, "PAX size is not a number"))?,
                    )
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    Ok(())
}

impl<'a> Reader<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, TarError> {
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let off = self.pos;
            if off == self.data.len() {
                // No end-of-archive blocks: accept (some writers omit them).
                return Ok(None);
            }
            let h = self
                .data
                .get(off..off + BLOCK)
                .ok_or_else(|| err(off, "archive ends inside a header"))?;
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            checksum_ok(h, off)?;
            let magic = &h[257..263];
            let ustar = magic == b"ustar\0" || magic == b"ustar ";
            let typeflag = h[156];
            let mut size = number(&h[124..136], off, "size")?;
            if let Some(s) = pax_size.take() {
                size = s;
            }
            let data_start = off + BLOCK;
            let size_us = usize::try_from(size).map_err(|_| err(off, "size too large"))?;
            let data_end = data_start
                .checked_add(size_us)
                .filter(|&e| e <= self.data.len())
                .ok_or_else(|| {
                    err(
                        off,
                        alloc::format!(
                            "entry data ({size} bytes) runs past the end of the archive ({} bytes)",
                            self.data.len()
                        ),
                    )
                })?;
            let data = &self.data[data_start..data_end];
            let padded = size_us.div_ceil(BLOCK) * BLOCK;
            self.pos = data_start.saturating_add(padded).min(self.data.len());
            let kind = match typeflag {
                b'0' | 0 | b'7' => Kind::File,
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::CharDev,
                b'4' => Kind::BlockDev,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                b'L' => {
                    long_name = Some(text(data, off, "GNU long name")?);
                    continue;
                }
                b'K' => {
                    long_link = Some(text(data, off, "GNU long link name")?);
                    continue;
                }
                b'x' => {
                    pax(data, off, &mut long_name, &mut long_link, &mut pax_size)?;
                    continue;
                }
                // Global PAX headers and other extensions carry nothing we use.
                b'g' | b'V' | b'N' | b'M' | b'S' | b'A'..=b'Z' => continue,
                t => {
                    return Err(err(
                        off,
                        alloc::format!("unknown entry type {:?}", t as char),
                    ));
                }
            };
            let mut name = text(&h[0..100], off, "name")?;
            if ustar && magic == b"ustar\0" {
                let prefix = text(&h[345..500], off, "prefix")?;
                if !prefix.is_empty() {
                    name = alloc::format!("{prefix}/{name}");
                }
            }
            let raw_path = long_name.take().unwrap_or(name);
            let path = normalise(&raw_path, off)?;
            let link_raw = match long_link.take() {
                Some(l) => l,
                None => text(&h[157..257], off, "link name")?,
            };
            let link = if kind == Kind::HardLink {
                normalise(&link_raw, off)?
            } else {
                link_raw
            };
            let (dev_major, dev_minor) = if ustar {
                (
                    number(&h[329..337], off, "device major")? as u32,
                    number(&h[337..345], off, "device minor")? as u32,
                )
            } else {
                (0, 0)
            };
            return Ok(Some(Entry {
                path,
                kind,
                mode: (number(&h[100..108], off, "mode")? & 0o7777) as u32,
                uid: number(&h[108..116], off, "uid")? as u32,
                gid: number(&h[116..124], off, "gid")? as u32,
                mtime: number(&h[136..148], off, "mtime")?,
                data: if matches!(kind, Kind::File) {
                    data
                } else {
                    &[]
                },
                link,
                dev_major,
                dev_minor,
            }));
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, TarError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "etc/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(5);
        h.set_uid(7);
        h.set_mtime(1234);
        b.append_data(&mut h, "etc/hostname", &b"adros"[..])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "etc/link", "/bin/busybox").unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "etc/hard", "etc/hostname").unwrap();
        // A long name (the tar crate emits a GNU 'L' entry or a ustar prefix).
        let long = format!("deep/{}/file", "d".repeat(120));
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        h.set_size(2);
        b.append_data(&mut h, &long, &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_entries() {
        let a = archive();
        let v: Vec<_> = Reader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(
            (v[0].path.as_str(), v[0].kind, v[0].mode),
            ("etc", Kind::Dir, 0o755)
        );
        assert_eq!(
            (v[1].path.as_str(), v[1].data, v[1].uid, v[1].mtime),
            ("etc/hostname", &b"adros"[..], 7, 1234)
        );
        assert_eq!(
            (v[2].kind, v[2].link.as_str()),
            (Kind::Symlink, "/bin/busybox")
        );
        assert_eq!(
            (v[3].kind, v[3].link.as_str()),
            (Kind::HardLink, "etc/hostname")
        );
        assert_eq!(v[4].path, format!("deep/{}/file", "d".repeat(120)));
        assert_eq!(v[4].data, b"hi");
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let a = archive();
        for i in (0..a.len()).step_by(7) {
            let mut b = a.clone();
            b[i] ^= 0x21;
            // Flips in data or padding are legal archives; the rest must be errors. Never panic.
            let _ = Reader::new(&b).collect::<Vec<_>>();
        }
        let mut b = a.clone();
        b[3] ^= 1; // in the first header's name
        let r: Result<Vec<_>, _> = Reader::new(&b).collect();
        assert!(r.unwrap_err().what.contains("checksum"));
        let r: Result<Vec<_>, _> = Reader::new(&a[..700]).collect();
        assert!(r.is_err());
    }

    #[test]
    fn dotdot_rejected() {
        assert!(normalise("a/../../etc", 0).is_err());
        assert_eq!(normalise("./a//b/", 0).unwrap(), "a/b");
    }
}
