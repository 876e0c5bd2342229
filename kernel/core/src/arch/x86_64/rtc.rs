//! The CMOS real-time clock (MC146818): wall-clock time at boot, and its periodic
//! interrupt (ISA IRQ 8) for the interrupt-routing tests. Register decoding lives in
//! `crate::firmware` (host-tested); this file only does the port I/O.

use core::sync::atomic::{AtomicU8, Ordering};

use x86_64::instructions::port::Port;

use crate::firmware::{self, DateTime, RtcRegs};
use crate::sync::spin::IrqSpinLock;

const REG_SEC: u8 = 0x00;
const REG_MIN: u8 = 0x02;
const REG_HOUR: u8 = 0x04;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0A;
const REG_B: u8 = 0x0B;
const REG_C: u8 = 0x0C;

const A_UIP: u8 = 0x80;
const B_PIE: u8 = 0x40;

/// Index/data pair at 0x70/0x71: every access selects then reads, so all go through here.
static CMOS: IrqSpinLock<()> = IrqSpinLock::new(());
/// The century register's index from the FADT (0 = none).
static CENTURY_REG: AtomicU8 = AtomicU8::new(0);

fn read_reg(_held: &(), reg: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the CMOS index and data registers on every PC; the caller
    // holds CMOS so the index cannot change under us. Bit 7 of the index (NMI disable) stays 0.
    unsafe {
        Port::<u8>::new(0x70).write(reg & 0x7f);
        Port::<u8>::new(0x71).read()
    }
}

fn write_reg(_held: &(), reg: u8, val: u8) {
    // SAFETY: as in `read_reg`; only RTC control registers A/B are written.
    unsafe {
        Port::<u8>::new(0x70).write(reg & 0x7f);
        Port::<u8>::new(0x71).write(val);
    }
}

/// Tells the driver which CMOS register holds the century (FADT `century`; 0 = none).
pub fn set_century_register(index: u8) {
    // Indices 0x00-0x0D are the clock's own registers; anything up to 0x7F is ordinary CMOS.
    CENTURY_REG.store(
        if (0x0E..0x80).contains(&index) {
            index
        } else {
            0
        },
        Ordering::Relaxed,
    );
}

fn snapshot(held: &()) -> RtcRegs {
    let c = CENTURY_REG.load(Ordering::Relaxed);
    RtcRegs {
        sec: read_reg(held, REG_SEC),
        min: read_reg(held, REG_MIN),
        hour: read_reg(held, REG_HOUR),
        day: read_reg(held, REG_DAY),
        month: read_reg(held, REG_MONTH),
        year: read_reg(held, REG_YEAR),
        century: (c != 0).then(|| read_reg(held, c)),
        status_b: read_reg(held, REG_B),
    }
}

/// Reads the clock consistently: waits out an update in progress, then reads until two
/// consecutive snapshots agree (an update can start between the check and the reads).
pub fn read_regs() -> Option<RtcRegs> {
    for _ in 0..10 {
        let g = CMOS.lock();
        // An update takes < 2 ms; UIP is raised 244 us before it. Bound the wait.
        let mut spins = 0u32;
        while read_reg(&g, REG_A) & A_UIP != 0 {
            spins += 1;
            if spins > 1_000_000 {
                return None;
            }
            core::hint::spin_loop();
        }
        let a = snapshot(&g);
        if read_reg(&g, REG_A) & A_UIP != 0 {
            continue;
        }
        let b = snapshot(&g);
        if a == b {
            return Some(a);
        }
    }
    None
}

pub fn now() -> Option<DateTime> {
    firmware::decode_rtc(&read_regs()?)
}

/// Seconds since the Unix epoch by the RTC (which keeps UTC here), or `None` if the CMOS
/// clock is absent or reads garbage.
pub fn unix_time() -> Option<u64> {
    firmware::unix_seconds(&now()?)
}

/// Starts the periodic interrupt at 32768 >> (rate - 1) Hz (`rate` 3..=15; 6 = 1024 Hz).
pub fn enable_periodic(rate: u8) {
    let g = CMOS.lock();
    let a = read_reg(&g, REG_A);
    write_reg(&g, REG_A, (a & 0xf0) | (rate.clamp(3, 15) & 0x0f));
    let b = read_reg(&g, REG_B);
    write_reg(&g, REG_B, b | B_PIE);
    read_reg(&g, REG_C); // drop anything pending
}

pub fn disable_periodic() {
    let g = CMOS.lock();
    let b = read_reg(&g, REG_B);
    write_reg(&g, REG_B, b & !B_PIE);
    read_reg(&g, REG_C);
}

/// Acknowledges an RTC interrupt (reading register C re-arms IRQ 8); returns its flags.
pub fn ack() -> u8 {
    let g = CMOS.lock();
    read_reg(&g, REG_C)
}
