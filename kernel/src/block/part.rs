//! Partition tables: MBR (primary entries; an extended partition's logical drives are not
//! followed) and GPT (the primary header and array, CRC-checked). Pure logic over a
//! sector-reading closure, host-testable.

use alloc::vec::Vec;

/// A partition in 512-byte sectors of its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as in `/dev/vda1`.
    pub number: u32,
    pub start: u64,
    pub sectors: u64,
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], o: usize) -> u64 {
    le32(b, o) as u64 | (le32(b, o + 4) as u64) << 32
}

/// Reads the partition table of a disk of `disk_sectors` 512-byte sectors. `read(lba, buf)`
/// fills `buf` (a multiple of 512 bytes) from sector `lba`. Entries outside the disk are
/// dropped; no table → empty.
pub fn scan(disk_sectors: u64, mut read: impl FnMut(u64, &mut [u8]) -> bool) -> Vec<Partition> {
    let mut mbr = [0u8; 512];
    if !read(0, &mut mbr) || mbr[510] != 0x55 || mbr[511] != 0xAA {
        return Vec::new();
    }
    let entry = |i: usize| {
        let o = 446 + 16 * i;
        (
            mbr[o + 4],
            le32(&mbr, o + 8) as u64,
            le32(&mbr, o + 12) as u64,
        )
    };
    if (0..4).any(|i| entry(i).0 == 0xEE)
        && let Some(v) = scan_gpt(disk_sectors, &mut read)
    {
        return v;
    }
    let mut v = Vec::new();
    for i in 0..4 {
        let (ty, start, len) = entry(i);
        // 0x05/0x0f/0x85: extended containers (their logical drives are not followed).
        if ty == 0 || ty == 0xEE || matches!(ty, 0x05 | 0x0f | 0x85) || len == 0 || start == 0 {
            continue;
        }
        if start.checked_add(len).is_some_and(|e| e <= disk_sectors) {
            v.push(Partition {
                number: i as u32 + 1,
                start,
                sectors: len,
            });
        } else {
            log::warn!(
                "block: MBR partition {} (sectors {start}+{len}) lies past the end of the disk ({disk_sectors} sectors): ignored",
                i + 1
            );
        }
    }
    v
}

fn scan_gpt(
    disk_sectors: u64,
    read: &mut impl FnMut(u64, &mut [u8]) -> bool,
) -> Option<Vec<Partition>> {
    let mut h = [0u8; 512];
    if !read(1, &mut h) || &h[0..8] != b"EFI PART" {
        return None;
    }
    let hsize = le32(&h, 12) as usize;
    if !(92..=512).contains(&hsize) {
        return None;
    }
    let mut hc = h;
    hc[16..20].fill(0);
    if crc32(&hc[..hsize]) != le32(&h, 16) {
        return None;
    }
    let arr_lba = le64(&h, 72);
    let n = le32(&h, 80) as usize;
    let esz = le32(&h, 84) as usize;
    if esz < 128 || !esz.is_multiple_of(8) || n == 0 || n > 1024 || esz > 1024 {
        return None;
    }
    let bytes = (n * esz).next_multiple_of(512);
    let mut arr = alloc::vec![0u8; bytes];
    if arr_lba == 0 || arr_lba >= disk_sectors || !read(arr_lba, &mut arr) {
        return None;
    }
    if crc32(&arr[..n * esz]) != le32(&h, 88) {
        return None;
    }
    let mut v = Vec::new();
    for i in 0..n {
        let e = &arr[i * esz..(i + 1) * esz];
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if first == 0 || last < first || last >= disk_sectors {
            continue;
        }
        v.push(Partition {
            number: i as u32 + 1,
            start: first,
            sectors: last - first + 1,
        });
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(sectors: usize) -> Vec<u8> {
        alloc::vec![0u8; sectors * 512]
    }

    fn reader(d: &[u8]) -> impl FnMut(u64, &mut [u8]) -> bool + '_ {
        move |lba, buf| {
            let s = lba as usize * 512;
            match d.get(s..s + buf.len()) {
                Some(src) => {
                    buf.copy_from_slice(src);
                    true
                }
                None => false,
            }
        }
    }

    #[test]
    fn mbr_primary() {
        let mut d = disk(4096);
        d[510] = 0x55;
        d[511] = 0xAA;
        let put = |d: &mut Vec<u8>, i: usize, ty: u8, start: u32, len: u32| {
            let o = 446 + 16 * i;
            d[o + 4] = ty;
            d[o + 8..o + 12].copy_from_slice(&start.to_le_bytes());
            d[o + 12..o + 16].copy_from_slice(&len.to_le_bytes());
        };
        put(&mut d, 0, 0x83, 2048, 1000);
        put(&mut d, 1, 0x05, 3048, 100); // extended: skipped
        put(&mut d, 2, 0x83, 3500, 9999); // beyond the disk: dropped
        put(&mut d, 3, 0x0c, 3200, 500);
        let v = scan(4096, reader(&d));
        assert_eq!(
            v,
            [
                Partition {
                    number: 1,
                    start: 2048,
                    sectors: 1000
                },
                Partition {
                    number: 4,
                    start: 3200,
                    sectors: 500
                }
            ]
        );
    }

    #[test]
    fn gpt_made_by_sgdisk_layout() {
        let mut d = disk(8192);
        d[510] = 0x55;
        d[511] = 0xAA;
        d[446 + 4] = 0xEE;
        // Entries at LBA 2: 128 × 128 bytes.
        let mut arr = alloc::vec![0u8; 128 * 128];
        arr[0] = 1; // type GUID nonzero
        arr[32..40].copy_from_slice(&2048u64.to_le_bytes());
        arr[40..48].copy_from_slice(&4095u64.to_le_bytes());
        arr[128 * 2] = 1;
        arr[128 * 2 + 32..128 * 2 + 40].copy_from_slice(&5000u64.to_le_bytes());
        arr[128 * 2 + 40..128 * 2 + 48].copy_from_slice(&5999u64.to_le_bytes());
        d[1024..1024 + arr.len()].copy_from_slice(&arr);
        let mut h = [0u8; 92];
        h[0..8].copy_from_slice(b"EFI PART");
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&crc32(&arr).to_le_bytes());
        let c = crc32(&h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        d[512..512 + 92].copy_from_slice(&h);
        let v = scan(8192, reader(&d));
        assert_eq!(
            v,
            [
                Partition {
                    number: 1,
                    start: 2048,
                    sectors: 2048
                },
                Partition {
                    number: 3,
                    start: 5000,
                    sectors: 1000
                }
            ]
        );
        // A bad header CRC: no GPT, and the protective MBR entry is not a partition.
        d[512 + 20] ^= 1;
        assert!(scan(8192, reader(&d)).is_empty());
    }

    #[test]
    fn crc32_vector() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
