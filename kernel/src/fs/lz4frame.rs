//! LZ4 frame decoding (the format of `lz4(1)` and `lz4_flex::frame`), on top of
//! `lz4_flex`'s `no_std` block decoder: lz4_flex's own frame module needs `std`.
//!
//! Spec: <https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md>. Supported: frame
//! version 01, independent and linked blocks, block and content checksums (xxHash32),
//! content size, concatenated and skippable frames. Not supported: dictionary IDs.

use alloc::vec::Vec;
use core::fmt;

const MAGIC: u32 = 0x184D_2204;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE: u32 = 0x184D_2A50;
/// Refuse to inflate beyond this (an initrd is tens of MiB).
pub const MAX_OUTPUT: usize = 1 << 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lz4Error {
    /// The input does not start with an LZ4 frame magic number.
    BadMagic {
        offset: usize,
        found: u32,
    },
    /// The input ends inside a frame.
    Truncated {
        offset: usize,
        what: &'static str,
    },
    BadVersion(u8),
    ReservedBits,
    DictionaryUnsupported,
    HeaderChecksum {
        stored: u8,
        computed: u8,
    },
    BlockTooBig {
        index: usize,
        size: usize,
        max: usize,
    },
    BlockChecksum {
        index: usize,
    },
    BlockCorrupt {
        index: usize,
    },
    ContentChecksum {
        stored: u32,
        computed: u32,
    },
    ContentSize {
        stored: u64,
        decoded: u64,
    },
    TooLarge(u64),
    OutOfMemory(usize),
}

impl fmt::Display for Lz4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic { offset, found } => write!(
                f,
                "not an LZ4 frame: magic {found:#010x} at byte {offset} (want 0x184d2204)"
            ),
            Self::Truncated { offset, what } => {
                write!(f, "LZ4 frame truncated at byte {offset} (in the {what})")
            }
            Self::BadVersion(v) => write!(f, "LZ4 frame version {v} (only 1 exists)"),
            Self::ReservedBits => write!(f, "LZ4 frame descriptor has reserved bits set"),
            Self::DictionaryUnsupported => write!(f, "LZ4 frame needs a dictionary (unsupported)"),
            Self::HeaderChecksum { stored, computed } => write!(
                f,
                "LZ4 frame descriptor checksum mismatch (stored {stored:#04x}, computed {computed:#04x})"
            ),
            Self::BlockTooBig { index, size, max } => write!(
                f,
                "LZ4 block {index} is {size} bytes, over the frame's {max}-byte maximum"
            ),
            Self::BlockChecksum { index } => write!(f, "LZ4 block {index} checksum mismatch"),
            Self::BlockCorrupt { index } => {
                write!(f, "LZ4 block {index} does not decode (corrupt data)")
            }
            Self::ContentChecksum { stored, computed } => write!(
                f,
                "LZ4 content checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the image is corrupt"
            ),
            Self::ContentSize { stored, decoded } => {
                write!(f, "LZ4 frame says {stored} bytes but decodes to {decoded}")
            }
            Self::TooLarge(n) => write!(
                f,
                "LZ4 frame would inflate to {n} bytes (limit {MAX_OUTPUT})"
            ),
            Self::OutOfMemory(n) => write!(
                f,
                "out of memory reserving {n} bytes for the decompressed image"
            ),
        }
    }
}

fn xxh32(data: &[u8]) -> u32 {
    twox_hash::XxHash32::oneshot(0, data)
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Lz4Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(Lz4Error::Truncated {
                offset: self.pos,
                what,
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Lz4Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes every frame in `input` (concatenated frames are appended; skippable frames are
/// skipped) into one buffer.
pub fn decompress(input: &[u8]) -> Result<Vec<u8>, Lz4Error> {
    let mut out = Vec::new();
    let mut c = Cursor {
        data: input,
        pos: 0,
    };
    let mut frames = 0;
    while c.pos < input.len() {
        let at = c.pos;
        let magic = c.u32("magic number")?;
        if magic & SKIPPABLE_MASK == SKIPPABLE {
            let n = c.u32("skippable frame size")? as usize;
            c.take(n, "skippable frame")?;
            continue;
        }
        if magic != MAGIC {
            // Zero padding after the last frame (some loaders round modules up) is fine.
            if frames > 0 && input[at..].iter().all(|&b| b == 0) {
                break;
            }
            return Err(Lz4Error::BadMagic {
                offset: at,
                found: magic,
            });
        }
        frame(&mut c, &mut out)?;
        frames += 1;
    }
    if frames == 0 {
        return Err(Lz4Error::Truncated {
            offset: 0,
            what: "first frame",
        });
    }
    Ok(out)
}

fn frame(c: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), Lz4Error> {
    let desc_start = c.pos;
    let hdr = c.take(2, "frame descriptor")?;
    let (flg, bd) = (hdr[0], hdr[1]);
    if flg >> 6 != 1 {
        return Err(Lz4Error::BadVersion(flg >> 6));
    }
    if flg & 0b10 != 0 || bd & 0x8F != 0 {
        return Err(Lz4Error::ReservedBits);
    }
    let independent = flg & 0x20 != 0;
    let block_checksums = flg & 0x10 != 0;
    let has_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    if flg & 0x01 != 0 {
        return Err(Lz4Error::DictionaryUnsupported);
    }
    let max_block = match (bd >> 4) & 7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return Err(Lz4Error::ReservedBits),
    };
    let content_size = if has_size {
        let b = c.take(8, "content size")?;
        Some(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    } else {
        None
    };
    let desc = &c.data[desc_start..c.pos];
    let stored = c.take(1, "descriptor checksum")?[0];
    let computed = ((xxh32(desc) >> 8) & 0xFF) as u8;
    if stored != computed {
        return Err(Lz4Error::HeaderChecksum { stored, computed });
    }
    let start = out.len();
    if let Some(n) = content_size {
        if n > MAX_OUTPUT as u64 {
            return Err(Lz4Error::TooLarge(n));
        }
        out.try_reserve_exact(n as usize)
            .map_err(|_| Lz4Error::OutOfMemory(n as usize))?;
    }
    let mut dict: Vec<u8> = Vec::new();
    let mut index = 0;
    loop {
        let word = c.u32("block size")?;
        if word == 0 {
            break;
        }
        let uncompressed = word & 0x8000_0000 != 0;
        let size = (word & 0x7FFF_FFFF) as usize;
        if size > max_block {
            return Err(Lz4Error::BlockTooBig {
                index,
                size,
                max: max_block,
            });
        }
        let data = c.take(size, "block data")?;
        if block_checksums {
            let sum = c.u32("block checksum")?;
            if sum != xxh32(data) {
                return Err(Lz4Error::BlockChecksum { index });
            }
        }
        let at = out.len();
        if at - start + max_block > MAX_OUTPUT {
            return Err(Lz4Error::TooLarge((at - start + max_block) as u64));
        }
        if uncompressed {
            out.try_reserve(size)
                .map_err(|_| Lz4Error::OutOfMemory(size))?;
            out.extend_from_slice(data);
        } else {
            out.try_reserve(max_block)
                .map_err(|_| Lz4Error::OutOfMemory(max_block))?;
            out.resize(at + max_block, 0);
            let r = if independent || dict.is_empty() {
                lz4_flex::block::decompress_into(data, &mut out[at..])
            } else {
                lz4_flex::block::decompress_into_with_dict(data, &mut out[at..], &dict)
            };
            let n = r.map_err(|_| Lz4Error::BlockCorrupt { index })?;
            out.truncate(at + n);
        }
        if !independent {
            // Linked blocks may refer to the previous 64 KiB of output.
            let from = out.len().saturating_sub(64 << 10).max(start);
            dict.clear();
            dict.extend_from_slice(&out[from..]);
        }
        index += 1;
    }
    let decoded = (out.len() - start) as u64;
    if let Some(n) = content_size
        && n != decoded
    {
        return Err(Lz4Error::ContentSize { stored: n, decoded });
    }
    if content_checksum {
        let stored = c.u32("content checksum")?;
        let computed = xxh32(&out[start..]);
        if stored != computed {
            return Err(Lz4Error::ContentChecksum { stored, computed });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame built by hand from the spec: one uncompressed block, content size and
    /// content checksum on.
    fn sample() -> Vec<u8> {
        let payload = b"hello hello hello hello\n";
        let mut f = Vec::new();
        f.extend_from_slice(&MAGIC.to_le_bytes());
        let flg = 0x40 | 0x20 | 0x08 | 0x04;
        let bd = 0x40;
        let mut desc = vec![flg, bd];
        desc.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        f.extend_from_slice(&desc);
        f.push(((xxh32(&desc) >> 8) & 0xFF) as u8);
        f.extend_from_slice(&(payload.len() as u32 | 0x8000_0000).to_le_bytes());
        f.extend_from_slice(payload);
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&xxh32(payload).to_le_bytes());
        f
    }

    #[test]
    fn uncompressed_block_frame() {
        assert_eq!(decompress(&sample()).unwrap(), b"hello hello hello hello\n");
    }

    #[test]
    fn compressed_block_round_trip() {
        let payload: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        let block = lz4_flex::block::compress(&payload);
        let mut f = Vec::new();
        f.extend_from_slice(&MAGIC.to_le_bytes());
        let desc = [0x40 | 0x20 | 0x10 | 0x04, 0x70];
        f.extend_from_slice(&desc);
        f.push(((xxh32(&desc) >> 8) & 0xFF) as u8);
        f.extend_from_slice(&(block.len() as u32).to_le_bytes());
        f.extend_from_slice(&block);
        f.extend_from_slice(&xxh32(&block).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&xxh32(&payload).to_le_bytes());
        assert_eq!(decompress(&f).unwrap(), payload);
        // Every single-byte corruption is caught (an error, never a panic or bad data).
        for i in (0..f.len()).step_by(97) {
            let mut g = f.clone();
            g[i] ^= 0x5A;
            assert!(decompress(&g).is_err(), "flip at {i} accepted");
        }
        assert!(matches!(
            decompress(&f[..f.len() - 3]),
            Err(Lz4Error::Truncated { .. })
        ));
    }

    #[test]
    fn errors_are_reported() {
        let mut s = sample();
        s[0] = 0;
        assert!(matches!(decompress(&s), Err(Lz4Error::BadMagic { .. })));
        let mut s = sample();
        let n = s.len();
        s[n - 1] ^= 1;
        assert!(matches!(
            decompress(&s),
            Err(Lz4Error::ContentChecksum { .. })
        ));
        let mut s = sample();
        s[6] ^= 1; // content size byte: descriptor checksum catches it
        assert!(matches!(
            decompress(&s),
            Err(Lz4Error::HeaderChecksum { .. })
        ));
        assert!(decompress(&[]).is_err());
    }
}
