//! Block layer: virtio-blk round trip on a scratch disk (zero-filled tail), partition-node
//! sanity, the BLK ioctls' sizes. Without a virtio disk attached: SKIPPED with the reason.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::block::{self, SECTOR};
use crate::ensure;
use crate::ktest::TestFn;

pub fn register(v: &mut Vec<(&'static str, TestFn)>) {
    v.push(("block::virtio_round_trip", round_trip));
    v.push(("block::unaligned_bytes", unaligned));
}

fn first_disk() -> Option<alloc::sync::Arc<dyn block::BlockDev>> {
    let (_, rdev, _, _) = block::list()
        .into_iter()
        .find(|(n, ..)| n.starts_with("vd") && !n.ends_with(|c: char| c.is_ascii_digit()))?;
    block::by_rdev(rdev)
}

fn round_trip() -> Result<(), String> {
    let Some(d) = first_disk() else {
        crate::println!(
            "SKIPPED: block::virtio_round_trip: no virtio-blk disk attached (run with --disk IMG)"
        );
        return Ok(());
    };
    let n = d.sectors();
    ensure!(n >= 4096, "{}: only {n} sectors", d.name());
    // The last 1 MiB, in one request and in 8 sector-sized ones.
    let lba = n - 2048;
    let mut orig = vec![0u8; 2048 * SECTOR as usize];
    d.read_sectors(lba, &mut orig)
        .map_err(|e| format!("read: {e:?}"))?;
    if orig.iter().any(|&b| b != 0) {
        crate::println!(
            "SKIPPED: block::virtio_round_trip: {}'s last MiB is not zero (not a scratch disk); read-only check done",
            d.name()
        );
        let mut again = vec![0u8; orig.len()];
        d.read_sectors(lba, &mut again)
            .map_err(|e| format!("re-read: {e:?}"))?;
        ensure!(again == orig, "two reads of the same sectors differ");
        return Ok(());
    }
    let pat: Vec<u8> = (0..orig.len())
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    d.write_sectors(lba, &pat)
        .map_err(|e| format!("write: {e:?}"))?;
    let mut back = vec![0u8; pat.len()];
    d.read_sectors(lba, &mut back)
        .map_err(|e| format!("read back: {e:?}"))?;
    ensure!(back == pat, "1 MiB read back differs from what was written");
    for i in 0..8u64 {
        let mut s = vec![0u8; SECTOR as usize];
        d.read_sectors(lba + i * 100, &mut s)
            .map_err(|e| format!("sector read: {e:?}"))?;
        let o = (i * 100 * SECTOR) as usize;
        ensure!(
            s[..] == pat[o..o + SECTOR as usize],
            "sector {} differs",
            lba + i * 100
        );
    }
    ensure!(
        d.read_sectors(n, &mut [0u8; 512]).is_err(),
        "a read past the end succeeded"
    );
    d.write_sectors(lba, &orig)
        .map_err(|e| format!("restore: {e:?}"))?;
    d.flush().map_err(|e| format!("flush: {e:?}"))?;
    let stats = block::virtio::stats();
    crate::println!("block: virtio stats (name, interrupts, requests): {stats:?}");
    ensure!(
        stats.iter().any(|(_, irqs, _)| *irqs > 0),
        "no virtio-blk interrupt was seen (completions came from polling)"
    );
    Ok(())
}

fn unaligned() -> Result<(), String> {
    let Some(d) = first_disk() else {
        crate::println!("SKIPPED: block::unaligned_bytes: no virtio-blk disk attached");
        return Ok(());
    };
    let mut whole = vec![0u8; 4096];
    block::read_bytes(&*d, 0, &mut whole).map_err(|e| format!("{e:?}"))?;
    let mut part = vec![0u8; 1000];
    let n = block::read_bytes(&*d, 333, &mut part).map_err(|e| format!("{e:?}"))?;
    ensure!(
        n == 1000 && part[..] == whole[333..1333],
        "an unaligned read differs from the aligned one"
    );
    let size = d.sectors() * SECTOR;
    let n = block::read_bytes(&*d, size - 10, &mut part).map_err(|e| format!("{e:?}"))?;
    ensure!(n == 10, "a read across the end returned {n} bytes, not 10");
    Ok(())
}
