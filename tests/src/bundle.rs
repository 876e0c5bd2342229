//! The module bundle: several boot modules in one file, for the PVH direct boot (QEMU's
//! `-kernel`/`-initrd`), which passes a single module where GRUB's `module2` lines pass
//! several. The kernel splits it back into the same named modules (`symbols`, `initrd`);
//! the format is described in `kernel/core/src/bootinfo.rs` (`parse_bundle`) and docs/boot.md.
//!
//! ```text
//! 0   "ADROSMOD"   8 bytes
//! 8   version      u32 LE (1)
//! 12  count        u32 LE
//! 16  count × { name: 16 bytes NUL-padded, offset: u64 LE, length: u64 LE }
//! ... each module's bytes at its offset, aligned to 4 KiB
//! ```

use std::io::Write;
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"ADROSMOD";
pub const VERSION: u32 = 1;
const ALIGN: u64 = 4096;

/// The bundle of `modules` (name, bytes) as bytes.
pub fn encode(modules: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let mut head = Vec::new();
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(modules.len() as u32).to_le_bytes());
    let mut off = (16 + 32 * modules.len() as u64).next_multiple_of(ALIGN);
    let mut placed = Vec::new();
    for (name, bytes) in modules {
        if name.is_empty() || name.len() > 15 || name.contains('\0') {
            return Err(format!(
                "module name {name:?}: 1 to 15 bytes, no NUL (the bundle keeps 16 with a NUL)"
            ));
        }
        let mut n = [0u8; 16];
        n[..name.len()].copy_from_slice(name.as_bytes());
        head.extend_from_slice(&n);
        head.extend_from_slice(&off.to_le_bytes());
        head.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        placed.push((off, *bytes));
        off = (off + bytes.len() as u64).next_multiple_of(ALIGN);
    }
    let mut out = head;
    for (o, b) in placed {
        out.resize(o as usize, 0);
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Writes the bundle of the files `modules` (name, path) to `out`, atomically (a private
/// name renamed into place), so a guest booting `out` at the same time sees all or nothing.
pub fn write(modules: &[(&str, &Path)], out: &Path) -> Result<(), String> {
    let mut data = Vec::new();
    for (name, p) in modules {
        data.push((
            *name,
            std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?,
        ));
    }
    let refs: Vec<(&str, &[u8])> = data.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let bytes = encode(&refs)?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = out.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    f.write_all(&bytes)
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, out).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_page_aligned_and_named() {
        let b = encode(&[("symbols", b"abc"), ("initrd", &[7u8; 5000])]).unwrap();
        assert_eq!(&b[..8], MAGIC);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 2);
        assert_eq!(&b[16..24], b"symbols\0");
        let off = |i: usize| {
            u64::from_le_bytes(b[16 + 32 * i + 16..16 + 32 * i + 24].try_into().unwrap())
        };
        let len = |i: usize| {
            u64::from_le_bytes(b[16 + 32 * i + 24..16 + 32 * i + 32].try_into().unwrap())
        };
        assert_eq!((off(0), len(0)), (4096, 3));
        assert_eq!((off(1), len(1)), (8192, 5000));
        assert_eq!(&b[4096..4099], b"abc");
        assert_eq!(b.len(), 8192 + 5000);
        assert!(b[8192..].iter().all(|&x| x == 7));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(encode(&[("", b"x")]).is_err());
        assert!(encode(&[("sixteen-bytes-xx", b"x")]).is_err());
    }
}
