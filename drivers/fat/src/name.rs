//! Names: 8.3 short names (display, generation with `~N` tails), VFAT long-name slots
//! (UCS-2, checksum) and the case-insensitive comparison FAT lookups use.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Error, Result};

/// Code page 437's upper half, the OEM character set of short names (Linux's default
/// `codepage=437`).
const CP437_HI: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

pub const DOT: [u8; 11] = *b".          ";
pub const DOTDOT: [u8; 11] = *b"..         ";

/// NT case flags in byte 12 of a short entry: base / extension stored upper case but shown
/// lower case.
pub const NT_LOWER_BASE: u8 = 0x08;
pub const NT_LOWER_EXT: u8 = 0x10;

/// The checksum of a short name that each of its long-name slots carries.
pub fn checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |s, &b| {
        (s >> 1).wrapping_add((s & 1) << 7).wrapping_add(b)
    })
}

fn push_oem(out: &mut String, b: u8, lower: bool) {
    if b < 0x80 {
        let c = b as char;
        out.push(if lower { c.to_ascii_lowercase() } else { c });
    } else {
        out.push(CP437_HI.chars().nth((b - 0x80) as usize).unwrap_or('?'));
    }
}

/// How a short entry's name reads (`NAME.EXT`, with the NT lower-case flags applied).
pub fn short_display(s: &[u8; 11], nt: u8) -> String {
    let mut out = String::new();
    let base_end = s[..8].iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    let ext_end = s[8..].iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
    for (i, &b) in s[..base_end].iter().enumerate() {
        let b = if i == 0 && b == 0x05 { 0xE5 } else { b };
        push_oem(&mut out, b, nt & NT_LOWER_BASE != 0);
    }
    if ext_end > 0 {
        out.push('.');
        for &b in &s[8..8 + ext_end] {
            push_oem(&mut out, b, nt & NT_LOWER_EXT != 0);
        }
    }
    out
}

/// Case-insensitive equality as FAT lookups see it (simple Unicode upper-casing).
pub fn name_eq(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// A name as it is stored: trailing dots and spaces dropped (as Linux's vfat does).
pub fn strip(name: &str) -> &str {
    name.trim_end_matches(['.', ' '])
}

/// Checks a (stripped) long name and returns it in UCS-2.
pub fn long_units(name: &str) -> Result<Vec<u16>> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::InvalidName);
    }
    if name
        .chars()
        .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c))
    {
        return Err(Error::InvalidName);
    }
    let u: Vec<u16> = name.encode_utf16().collect();
    if u.len() > 255 {
        return Err(Error::NameTooLong);
    }
    Ok(u)
}

fn short_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || b"!#$%&'()-@^_`{}~".contains(&c)
}

/// Picks the short name for `name` (already checked by [`long_units`]): the name itself
/// when it is a valid upper-case 8.3 name (no long name needed), else a basis name made
/// upper case with invalid characters replaced by `_`, used bare when nothing was lost and
/// it is free, else with the first free numeric tail `~N`. Returns (short name, whether a
/// long name is needed).
pub fn make_short(name: &str, taken: impl Fn(&[u8; 11]) -> bool) -> Result<([u8; 11], bool)> {
    let bytes = name.as_bytes();
    // Exact 8.3 upper case?
    let (b0, e0) = match name.rfind('.') {
        Some(p) if p > 0 => (&bytes[..p], &bytes[p + 1..]),
        _ => (bytes, &bytes[..0]),
    };
    if !b0.is_empty()
        && b0.len() <= 8
        && e0.len() <= 3
        && b0.iter().all(|&c| short_char_ok(c))
        && e0.iter().all(|&c| short_char_ok(c))
        && !(name.ends_with('.'))
    {
        let mut s = [b' '; 11];
        s[..b0.len()].copy_from_slice(b0);
        s[8..8 + e0.len()].copy_from_slice(e0);
        if s[0] == 0xE5 {
            s[0] = 0x05;
        }
        if !taken(&s) {
            return Ok((s, false));
        }
    }
    // The basis name.
    let mut lossy = false;
    let trimmed = name.trim_start_matches('.');
    if trimmed.len() != name.len() {
        lossy = true;
    }
    let (bpart, epart) = match trimmed.rfind('.') {
        Some(p) => (&trimmed[..p], &trimmed[p + 1..]),
        None => (trimmed, ""),
    };
    let conv = |part: &str, max: usize, lossy: &mut bool| -> Vec<u8> {
        let mut v = Vec::new();
        for c in part.chars() {
            if c == ' ' || c == '.' {
                *lossy = true;
                continue;
            }
            let b = if c.is_ascii() {
                let u = (c as u8).to_ascii_uppercase();
                if short_char_ok(u) {
                    u
                } else {
                    *lossy = true;
                    b'_'
                }
            } else {
                *lossy = true;
                b'_'
            };
            if v.len() == max {
                *lossy = true;
                break;
            }
            v.push(b);
        }
        v
    };
    let mut base = conv(bpart, 8, &mut lossy);
    let ext = conv(epart, 3, &mut lossy);
    if base.is_empty() {
        base.push(b'_');
        lossy = true;
    }
    let mut s = [b' '; 11];
    s[8..8 + ext.len()].copy_from_slice(&ext);
    if !lossy {
        s[..base.len()].copy_from_slice(&base);
        if !taken(&s) {
            return Ok((s, true));
        }
    }
    for n in 1..1_000_000u32 {
        let mut tail = [0u8; 8];
        let mut t = n;
        let mut digits = Vec::new();
        while t > 0 {
            digits.push(b'0' + (t % 10) as u8);
            t /= 10;
        }
        tail[0] = b'~';
        for (i, d) in digits.iter().rev().enumerate() {
            tail[1 + i] = *d;
        }
        let tl = 1 + digits.len();
        let keep = base.len().min(8 - tl);
        let mut cand = s;
        cand[..8].fill(b' ');
        cand[..keep].copy_from_slice(&base[..keep]);
        cand[keep..keep + tl].copy_from_slice(&tail[..tl]);
        if !taken(&cand) {
            return Ok((cand, true));
        }
    }
    Err(Error::Exists)
}

/// The long-name slots for `units`, in on-disk order (highest ordinal first), each
/// carrying `chk`.
pub fn lfn_slots(units: &[u16], chk: u8) -> Vec<[u8; 32]> {
    let n = units.len().div_ceil(13);
    let mut out = Vec::with_capacity(n);
    for i in (1..=n).rev() {
        let mut e = [0u8; 32];
        e[0] = i as u8 | if i == n { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = chk;
        for (k, &off) in LFN_OFFSETS.iter().enumerate() {
            let idx = (i - 1) * 13 + k;
            let v = match idx.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[idx],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            e[off..off + 2].copy_from_slice(&v.to_le_bytes());
        }
        out.push(e);
    }
    out
}

/// Where the 13 UCS-2 characters of a long-name slot are.
pub const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// The 13 characters of one long-name slot.
pub fn lfn_chars(e: &[u8; 32]) -> [u16; 13] {
    let mut c = [0u16; 13];
    for (k, &off) in LFN_OFFSETS.iter().enumerate() {
        c[k] = u16::from_le_bytes([e[off], e[off + 1]]);
    }
    c
}

/// A complete long name (UCS-2 up to the first NUL) as UTF-8; `None` when it is empty or
/// could not be a name here (`/`, NUL inside, `.`/`..`).
pub fn decode_long(units: &[u16]) -> Option<String> {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let s: String = char::decode_utf16(units[..end].iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if s.is_empty() || s == "." || s == ".." || s.contains('/') {
        return None;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn cp437_table_is_complete() {
        assert_eq!(CP437_HI.chars().count(), 128);
    }

    #[test]
    fn short_names() {
        let none = |_: &[u8; 11]| false;
        assert_eq!(
            make_short("README.TXT", none).unwrap(),
            (*b"README  TXT", false)
        );
        assert_eq!(
            make_short("readme.txt", none).unwrap(),
            (*b"README  TXT", true)
        );
        assert_eq!(
            make_short("a long file name.html", none).unwrap(),
            (*b"ALONGF~1HTM", true)
        );
        assert_eq!(
            make_short(".bashrc", none).unwrap(),
            (*b"BASHRC~1   ", true)
        );
        assert_eq!(make_short("x+y.c", none).unwrap(), (*b"X_Y~1   C  ", true));
        let mut set = BTreeSet::new();
        set.insert(*b"ALONGF~1HTM");
        set.insert(*b"ALONGF~2HTM");
        assert_eq!(
            make_short("a long file name.html", |s| set.contains(s))
                .unwrap()
                .0,
            *b"ALONGF~3HTM"
        );
        let many: BTreeSet<[u8; 11]> = (1..=9)
            .map(|n| {
                let mut s = *b"ALONGF~1HTM";
                s[7] = b'0' + n;
                s
            })
            .collect();
        assert_eq!(
            make_short("a long file name.html", |s| many.contains(s))
                .unwrap()
                .0,
            *b"ALONG~10HTM"
        );
        assert_eq!(short_display(b"README  TXT", NT_LOWER_BASE), "readme.TXT");
        assert_eq!(short_display(b"README  TXT", 0x18), "readme.txt");
        assert_eq!(short_display(b"\x05BC        ", 0), "σBC");
    }

    #[test]
    fn lfn_round_trip_and_checksum() {
        let units: Vec<u16> = "A long name, ünïcode ☃ 😀.txt".encode_utf16().collect();
        let slots = lfn_slots(&units, 0x5A);
        assert_eq!(slots.len(), units.len().div_ceil(13));
        let mut all = Vec::new();
        for s in slots.iter().rev() {
            all.extend_from_slice(&lfn_chars(s));
        }
        assert_eq!(decode_long(&all).unwrap(), "A long name, ünïcode ☃ 😀.txt");
        // From the Microsoft specification's algorithm, checked against mtools' output.
        assert_eq!(checksum(b"ALONGF~1HTM"), {
            let mut s: u8 = 0;
            for &b in b"ALONGF~1HTM" {
                s = (if s & 1 != 0 { 0x80u8 } else { 0 })
                    .wrapping_add(s >> 1)
                    .wrapping_add(b);
            }
            s
        });
        assert!(name_eq("Straße.TXT", "STRASSE.txt"));
        assert!(!name_eq("a", "b"));
    }
}
