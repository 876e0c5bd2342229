//! Little-endian field access that never panics: out-of-range reads give 0 and
//! out-of-range writes are dropped. Callers validate offsets derived from the image before
//! relying on a field; these helpers are the last line against a slicing panic.

pub fn r8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub fn r16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub fn r32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

pub fn w8(b: &mut [u8], off: usize, v: u8) {
    if let Some(x) = b.get_mut(off) {
        *x = v;
    }
}

pub fn w16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(2)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn w32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off.wrapping_add(4)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

pub fn bit(b: &[u8], i: usize) -> bool {
    r8(b, i / 8) & (1 << (i % 8)) != 0
}

pub fn set_bit(b: &mut [u8], i: usize, on: bool) {
    let v = r8(b, i / 8);
    let m = 1u8 << (i % 8);
    w8(b, i / 8, if on { v | m } else { v & !m });
}
