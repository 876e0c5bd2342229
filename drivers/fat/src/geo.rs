//! The boot sector: the volume's geometry, checked ([`Geo`]).

use super::*;

impl Geo {
    pub(crate) fn parse(b: &[u8], dev_sectors: u64) -> Result<Geo> {
        let bps = le16(b, 11) as u64;
        if !(512..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(Error::Corrupt(
                "bytes per sector is not a power of two in 512..4096",
            ));
        }
        let spc = b[13] as u64;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(Error::Corrupt(
                "sectors per cluster is zero or not a power of two",
            ));
        }
        let reserved = le16(b, 14) as u64;
        if reserved == 0 {
            return Err(Error::Corrupt("no reserved sectors"));
        }
        let nfats = b[16] as u32;
        if nfats == 0 {
            return Err(Error::Corrupt("no FATs"));
        }
        let root_entries = le16(b, 17) as u64;
        let total = match le16(b, 19) {
            0 => le32(b, 32),
            n => n,
        } as u64;
        if total == 0 {
            return Err(Error::Corrupt("total sectors is zero"));
        }
        if total * bps > dev_sectors * SECTOR {
            return Err(Error::Corrupt("total sectors past the end of the device"));
        }
        let fat16 = le16(b, 22) as u64;
        let is32 = fat16 == 0;
        let fat_sectors = if is32 { le32(b, 36) as u64 } else { fat16 };
        if fat_sectors == 0 {
            return Err(Error::Corrupt("FAT size is zero"));
        }
        if is32 && root_entries != 0 {
            return Err(Error::Corrupt("FAT32 with a fixed root directory"));
        }
        if !is32 && root_entries == 0 {
            return Err(Error::Corrupt("no root directory entries"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let root_sec = reserved + nfats as u64 * fat_sectors;
        let data_sec = root_sec + root_sectors;
        if data_sec >= total {
            return Err(Error::Corrupt("no room for a data area"));
        }
        let clusters = (total - data_sec) / spc;
        if clusters == 0 {
            return Err(Error::Corrupt("no clusters"));
        }
        let ty = if is32 {
            FatType::Fat32
        } else if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65_525 {
            FatType::Fat16
        } else {
            return Err(Error::Corrupt("too many clusters for FAT16"));
        };
        let clusters = clusters.min(0x0FFF_FFF5 - 1) as u32;
        let bits = match ty {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if (clusters as u64 + 2) * bits > fat_sectors * bps * 8 {
            return Err(Error::Corrupt("the FAT is too small for the cluster count"));
        }
        let (mut root_cluster, mut fsinfo, mut active_fat) = (0, None, None);
        if is32 {
            root_cluster = le32(b, 44);
            if root_cluster < 2 || root_cluster > clusters + 1 {
                return Err(Error::Corrupt("root cluster outside the volume"));
            }
            let fi = le16(b, 48) as u64;
            if fi != 0 && fi < reserved {
                fsinfo = Some(fi * bps);
            }
            let flags = le16(b, 40);
            if flags & 0x80 != 0 {
                let a = flags & 0x0F;
                if a >= nfats {
                    return Err(Error::Corrupt("active FAT number past the FAT count"));
                }
                active_fat = Some(a);
            }
        }
        let (sig_off, state_off) = if is32 { (0x42, 0x41) } else { (0x26, 0x25) };
        let state_off = matches!(b[sig_off], 0x28 | 0x29).then_some(state_off);
        Ok(Geo {
            bps,
            cb: spc * bps,
            fat_start: reserved * bps,
            fat_sectors,
            nfats,
            root_start: root_sec * bps,
            root_bytes: root_sectors * bps,
            data_start: data_sec * bps,
            clusters,
            ty,
            root_cluster,
            fsinfo,
            active_fat,
            state_off,
        })
    }

    pub(crate) fn max_cluster(&self) -> u32 {
        self.clusters + 1
    }
    pub(crate) fn eoc(&self) -> u32 {
        match self.ty {
            FatType::Fat12 => 0xFFF,
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }
    pub(crate) fn eoc_min(&self) -> u32 {
        match self.ty {
            FatType::Fat12 => 0xFF8,
            FatType::Fat16 => 0xFFF8,
            FatType::Fat32 => 0x0FFF_FFF8,
        }
    }
    pub(crate) fn cluster_off(&self, c: u32) -> u64 {
        self.data_start + (c as u64 - 2) * self.cb
    }
    pub(crate) fn valid(&self, c: u32) -> bool {
        (2..=self.max_cluster()).contains(&c)
    }
    pub(crate) fn fixed_root(&self) -> bool {
        self.ty != FatType::Fat32
    }
}
