//! Hash-tree (`dir_index`) lookups: in a directory with the `INDEX` flag, the name's hash
//! picks the one leaf block that can hold it through the index in block 0 (and, for very
//! large directories, one more level of index blocks), so a cold lookup in a directory of
//! any size reads two or three blocks instead of all of them.
//!
//! Layout (ext2/3/4 share it): block 0 holds `.` and `..`, the `..` entry spanning the
//! block; at byte 24 the root info (`reserved_zero` u32, `hash_version` u8, `info_length`
//! u8, `indirect_levels` u8, `unused_flags` u8), then a count/limit pair and `(hash,
//! block)` pairs sorted by hash (the first pair's hash slot holds the count/limit). An
//! interior index block starts with an empty 8-byte entry spanning the block, then the
//! same count/limit and pairs. A leaf is an ordinary directory block. Bit 0 of a pair's
//! hash says that names with the hash before it continue into that block (a collision
//! run).
//!
//! The hash functions (legacy, half-MD4, TEA, each signed or unsigned char) are written
//! from their specification in the ext2/ext4 on-disk format; `htree_hash_matches_debugfs`
//! in tests/images.rs checks them against e2fsprogs's `debugfs dx_hash`.

use super::*;
use crate::dir::parse_entry;

pub const HASH_LEGACY: u8 = 0;
pub const HASH_HALF_MD4: u8 = 1;
pub const HASH_TEA: u8 = 2;
/// Added to a hash version when the file system hashes chars as unsigned.
const UNSIGNED: u8 = 3;

/// The superblock's `s_flags` bit for unsigned-char hashing.
const FLAGS_UNSIGNED_HASH: u32 = 0x2;

/// The bytes of a name as the hash sees them: sign-extended (as a signed `char`) or not.
fn ch(b: u8, unsigned: bool) -> u32 {
    if unsigned {
        b as u32
    } else {
        b as i8 as i32 as u32
    }
}

fn legacy(name: &[u8], unsigned: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ ch(b, unsigned).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Packs up to `out.len() * 4` bytes of `msg` into words, big-end first within each word,
/// padding with the length repeated in every byte.
fn pack(msg: &[u8], unsigned: bool, out: &mut [u32]) {
    let len = msg.len() as u32;
    let pad = {
        let p = (len & 0xff) | (len & 0xff) << 8;
        p | p << 16
    };
    let take = msg.len().min(out.len() * 4);
    let mut w = 0usize;
    let mut val = pad;
    for (i, &b) in msg[..take].iter().enumerate() {
        val = ch(b, unsigned).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    // A partial last word (when the bytes ran out mid-word; otherwise `val` is the pad).
    if w < out.len() {
        out[w] = val;
        w += 1;
    }
    for o in out.iter_mut().skip(w) {
        *o = pad;
    }
}

fn half_md4(buf: &mut [u32; 4], x: &[u32; 8]) {
    const K2: u32 = 0x5A82_7999;
    const K3: u32 = 0x6ED9_EBA1;
    fn f(x: u32, y: u32, z: u32) -> u32 {
        z ^ (x & (y ^ z))
    }
    fn g(x: u32, y: u32, z: u32) -> u32 {
        (x & y).wrapping_add((x ^ y) & z)
    }
    fn h(x: u32, y: u32, z: u32) -> u32 {
        x ^ y ^ z
    }
    /// (function, word order, shifts, constant) of one round.
    type Round = (fn(u32, u32, u32) -> u32, [usize; 8], [u32; 4], u32);
    let [mut a, mut b, mut c, mut d] = *buf;
    // The registers rotate a, d, c, b through the steps of a round.
    let rounds: [Round; 3] = [
        (f, [0, 1, 2, 3, 4, 5, 6, 7], [3, 7, 11, 19], 0),
        (g, [1, 3, 5, 7, 0, 2, 4, 6], [3, 5, 9, 13], K2),
        (h, [3, 7, 2, 6, 1, 5, 0, 4], [3, 9, 11, 15], K3),
    ];
    for (func, order, shifts, k) in rounds {
        for (step, &wi) in order.iter().enumerate() {
            let s = shifts[step % 4];
            let xk = x[wi].wrapping_add(k);
            match step % 4 {
                0 => {
                    a = a
                        .wrapping_add(func(b, c, d))
                        .wrapping_add(xk)
                        .rotate_left(s)
                }
                1 => {
                    d = d
                        .wrapping_add(func(a, b, c))
                        .wrapping_add(xk)
                        .rotate_left(s)
                }
                2 => {
                    c = c
                        .wrapping_add(func(d, a, b))
                        .wrapping_add(xk)
                        .rotate_left(s)
                }
                _ => {
                    b = b
                        .wrapping_add(func(c, d, a))
                        .wrapping_add(xk)
                        .rotate_left(s)
                }
            }
        }
    }
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

fn tea(buf: &mut [u32; 4], k: &[u32; 4]) {
    let (mut v0, mut v1) = (buf[0], buf[1]);
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        v0 = v0.wrapping_add(
            (v1 << 4).wrapping_add(k[0]) ^ v1.wrapping_add(sum) ^ (v1 >> 5).wrapping_add(k[1]),
        );
        v1 = v1.wrapping_add(
            (v0 << 4).wrapping_add(k[2]) ^ v0.wrapping_add(sum) ^ (v0 >> 5).wrapping_add(k[3]),
        );
    }
    buf[0] = buf[0].wrapping_add(v0);
    buf[1] = buf[1].wrapping_add(v1);
}

/// The directory hash of `name` (bit 0 clear), or None for an unknown hash version.
pub fn dirhash(name: &[u8], version: u8, seed: [u32; 4]) -> Option<u32> {
    let mut buf = if seed.iter().any(|&s| s != 0) {
        seed
    } else {
        [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
    };
    let (v, unsigned) = if version >= UNSIGNED {
        (version - UNSIGNED, true)
    } else {
        (version, false)
    };
    let hash = match v {
        HASH_LEGACY => legacy(name, unsigned),
        HASH_HALF_MD4 => {
            // 32 bytes a round; each round's padding is the length of what is left.
            let mut off = 0;
            while off < name.len() {
                let mut x = [0u32; 8];
                pack(&name[off..], unsigned, &mut x);
                half_md4(&mut buf, &x);
                off += 32;
            }
            buf[1]
        }
        HASH_TEA => {
            let mut off = 0;
            while off < name.len() {
                let mut x = [0u32; 4];
                pack(&name[off..], unsigned, &mut x);
                tea(&mut buf, &x);
                off += 16;
            }
            buf[0]
        }
        _ => return None,
    };
    let hash = hash & !1;
    // The largest value is reserved (end of directory for 32-bit readdir cookies).
    Some(if hash == 0x7fff_ffff << 1 {
        0x7fff_fffe << 1
    } else {
        hash
    })
}

impl<D: BlockDevice> Ext2<D> {
    /// The hash version and seed of this file system for a root declaring `version`.
    fn hash_params(&self, version: u8) -> (u8, [u32; 4]) {
        let seed = [
            r32(&self.sb, 236),
            r32(&self.sb, 240),
            r32(&self.sb, 244),
            r32(&self.sb, 248),
        ];
        let unsigned = r32(&self.sb, 352) & FLAGS_UNSIGNED_HASH != 0;
        let v = if unsigned && version <= HASH_TEA {
            version + UNSIGNED
        } else {
            version
        };
        (v, seed)
    }

    /// Looks `name` up through the hash index of `d` (which has the `INDEX` flag). None:
    /// the index cannot be used (unknown hash, odd layout) and the caller scans instead.
    /// Some(Ok(None)): not there.
    pub(crate) fn htree_lookup(
        &mut self,
        d: &mut Inode,
        name: &[u8],
    ) -> Result<Option<Option<u32>>> {
        let bs = self.bs as usize;
        let nblocks = d.size().div_ceil(self.bs);
        let Some(root) = self.dir_block(d, 0)? else {
            return Ok(None);
        };
        let b = self.cache.read(&self.dev, root)?;
        // `.` (12 bytes), then `..` spanning the block, then the root info.
        if r16(b, 4) != 12 || r16(b, 12 + 4) as usize != bs - 12 || r32(b, 24) != 0 {
            return Ok(None);
        }
        let version = r8(b, 28);
        let info_len = r8(b, 29) as usize;
        let levels = r8(b, 30);
        if levels > 1 || info_len != 8 {
            return Ok(None);
        }
        let (v, seed) = self.hash_params(version);
        let Some(hash) = dirhash(name, v, seed) else {
            return Ok(None);
        };
        let mut at = 24 + info_len; // count/limit of the root
        let mut blk = root;
        let mut level = 0;
        // The leaf, and the hash the next leaf starts with (for a collision run).
        let mut leaf_and_next: Option<(u32, Option<u32>)> = None;
        while leaf_and_next.is_none() {
            let b = self.cache.read(&self.dev, blk)?;
            let limit = r16(b, at) as usize;
            let count = r16(b, at + 2) as usize;
            if count == 0 || count > limit || at + limit * 8 > bs {
                return Err(Error::Corrupt("bad htree index node"));
            }
            // The last entry whose hash is <= ours (entry 0 covers everything below
            // entry 1).
            let (mut lo, mut hi) = (1usize, count);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if r32(b, at + mid * 8) <= hash {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let e = lo - 1;
            let child = r32(b, at + e * 8 + 4) & 0x0fff_ffff;
            let next = (e + 1 < count).then(|| r32(b, at + (e + 1) * 8));
            if child as u64 >= nblocks {
                return Err(Error::Corrupt("htree points past the directory"));
            }
            if level == levels {
                leaf_and_next = Some((child, next));
            } else {
                level += 1;
                blk = self
                    .dir_block(d, child as u64)?
                    .ok_or(Error::Corrupt("htree index block is a hole"))?;
                at = 8;
            }
        }
        let (leaf, next) = leaf_and_next.unwrap_or((0, None));
        let (ft, ic) = (self.filetype, self.inodes_count);
        let pb = self
            .dir_block(d, leaf as u64)?
            .ok_or(Error::Corrupt("htree leaf is a hole"))?;
        let b = self.cache.read(&self.dev, pb)?;
        let mut off = 0usize;
        while off < bs {
            let (ino, rec, nl, _) = parse_entry(b, off, bs, ft, ic)?;
            if ino != 0 && nl == name.len() && b.get(off + 8..off + 8 + nl) == Some(name) {
                return Ok(Some(Some(ino)));
            }
            off += rec;
        }
        // Names with our hash may continue in the next leaf (a collision run, marked by
        // bit 0 of the next hash): leave that rare case to a full scan.
        Ok(match next {
            Some(h) if h & 1 == 1 && h & !1 == hash => None,
            _ => Some(None),
        })
    }
}
