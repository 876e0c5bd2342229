//! The random-byte source behind `/dev/random` and `/dev/urandom` (and `getrandom(2)`):
//! ChaCha20 keyed from the CPU's RDSEED/RDRAND, rekeyed every MiB of output. Without a
//! hardware source the key comes from the TSC and the wall clock (logged once as weak).

use super::sync::SpinLock;

struct State {
    key: [u32; 8],
    counter: u64,
    since_rekey: usize,
    seeded: bool,
}

static STATE: SpinLock<State> = SpinLock::new(State {
    key: [0; 8],
    counter: 0,
    since_rekey: 0,
    seeded: false,
});
const REKEY_BYTES: usize = 1 << 20;

fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// One ChaCha20 block (RFC 8439 layout, 64-bit counter, zero nonce).
pub fn chacha20_block(key: &[u32; 8], counter: u64) -> [u8; 64] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    init[4..12].copy_from_slice(key);
    init[12] = counter as u32;
    init[13] = (counter >> 32) as u32;
    let mut s = init;
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[i * 4..i * 4 + 4].copy_from_slice(&s[i].wrapping_add(init[i]).to_le_bytes());
    }
    out
}

#[cfg(target_os = "none")]
fn hw_seed() -> Option<u64> {
    crate::arch::cpu::hw_random()
}
#[cfg(not(target_os = "none"))]
fn hw_seed() -> Option<u64> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    Some(h.finish())
}

fn rekey(s: &mut State) {
    let mut hw = true;
    for i in 0..4 {
        let v = hw_seed().unwrap_or_else(|| {
            hw = false;
            crate::time::now_ns()
                ^ crate::time::wall_clock_ns().rotate_left(17)
                ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
        s.key[2 * i] ^= v as u32;
        s.key[2 * i + 1] ^= (v >> 32) as u32;
    }
    if !hw && !s.seeded {
        log::warn!("random: no RDSEED/RDRAND; /dev/urandom is seeded from the clocks only");
    }
    // Mix the old stream in so a weak reseed never lowers the key's entropy.
    let b = chacha20_block(&s.key, u64::MAX - s.counter);
    for i in 0..8 {
        s.key[i] ^= u32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
    }
    s.seeded = true;
    s.since_rekey = 0;
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(4096) {
        let mut s = STATE.lock();
        if !s.seeded || s.since_rekey >= REKEY_BYTES {
            rekey(&mut s);
        }
        for part in chunk.chunks_mut(64) {
            let b = chacha20_block(&s.key, s.counter);
            s.counter = s.counter.wrapping_add(1);
            part.copy_from_slice(&b[..part.len()]);
        }
        s.since_rekey += chunk.len();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc8439_block() {
        // RFC 8439 2.3.2 uses a 32-bit counter of 1 and nonce (0x09000000, 0x4a000000, 0);
        // with our zero nonce, check the all-zero-key vector of RFC 7539 A.1 instead.
        let b = super::chacha20_block(&[0; 8], 0);
        assert_eq!(&b[..8], &[0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
    }

    #[test]
    fn fill_differs() {
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
    }
}
