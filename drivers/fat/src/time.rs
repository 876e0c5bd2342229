//! DOS date/time (local time on the volume; AdrOS keeps UTC) to and from Unix seconds.

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds → (DOS date, DOS time), clamped to 1980-01-01 .. 2107-12-31 23:59:58.
pub fn to_dos(unix: u64) -> (u16, u16) {
    let days = (unix / 86_400) as i64;
    let secs = (unix % 86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if y < 1980 {
        return ((1 << 5) | 1, 0);
    }
    if y > 2107 {
        return ((127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29);
    }
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = (((secs / 3600) as u16) << 11)
        | ((((secs / 60) % 60) as u16) << 5)
        | ((secs % 60) / 2) as u16;
    (date, time)
}

/// (DOS date, DOS time) → Unix seconds; out-of-range fields are clamped as Linux does.
pub fn from_dos(date: u16, time: u16) -> u64 {
    let y = 1980 + (date >> 9) as i64;
    let m = ((date >> 5) & 15).clamp(1, 12) as u32;
    let d = (date & 31).max(1) as u32;
    let h = ((time >> 11) as u64).min(23);
    let mi = (((time >> 5) & 63) as u64).min(59);
    let s = ((time & 31) as u64 * 2).min(59);
    let days = days_from_civil(y, m, d);
    days as u64 * 86_400 + h * 3600 + mi * 60 + s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        for t in [315_532_800u64, 1_000_000_000, 1_700_000_002, 4_000_000_000] {
            let (d, tm) = to_dos(t);
            assert_eq!(from_dos(d, tm), t & !1, "{t}");
        }
        assert_eq!(to_dos(0), ((1 << 5) | 1, 0));
        assert_eq!(from_dos(0, 0), 315_532_800);
    }
}
