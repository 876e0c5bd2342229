//! The PL011 UART (`arm,pl011`) as the console. Until the device tree is read it is assumed
//! at QEMU `virt`'s 0x0900_0000, reached through the boot stub's device window.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::mm::layout::MMIO_OFFSET;
use crate::sync::spin::IrqSpinLock;

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const IBRD: u64 = 0x24;
const FBRD: u64 = 0x28;
const LCRH: u64 = 0x2c;
const CR: u64 = 0x30;
const IMSC: u64 = 0x38;
const ICR: u64 = 0x44;
/// Receive and receive-timeout interrupts (IMSC/ICR bits).
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const FR_BUSY: u32 = 1 << 3;

/// QEMU `virt`'s PL011, until [`set_base`].
const DEFAULT_PA: u64 = 0x0900_0000;
/// The boot stub's device window covers physical 0..1 GiB.
const WINDOW: u64 = 1 << 30;

static BASE: AtomicU64 = AtomicU64::new(MMIO_OFFSET + DEFAULT_PA);
static LOCK: IrqSpinLock<()> = IrqSpinLock::new(());
/// The terminal's receive handler (a `fn(&mut TrapFrame)`), 0 until one is given.
static RX_HANDLER: AtomicUsize = AtomicUsize::new(0);

fn reg(off: u64) -> *mut u32 {
    (BASE.load(Ordering::Relaxed) + off) as *mut u32
}

fn read(off: u64) -> u32 {
    // SAFETY: BASE is the PL011's register frame in the device window (Device-nGnRnE), and
    // every offset used is one of its 32-bit registers.
    unsafe { reg(off).read_volatile() }
}

fn write(off: u64, v: u32) {
    // SAFETY: as in `read`.
    unsafe { reg(off).write_volatile(v) }
}

/// Uses the PL011 at physical `pa` (from the device tree). False if it lies outside the
/// boot device window (the console then stays where it was).
pub fn set_base(pa: u64) -> bool {
    if pa >= WINDOW {
        return false;
    }
    BASE.store(MMIO_OFFSET + pa, Ordering::Relaxed);
    true
}

/// 115200 8N1 with FIFOs, transmitter and receiver on, interrupts masked. (QEMU ignores
/// the divisors; real PL011s need them for a 24 MHz reference clock.)
pub fn init() {
    while read(FR) & FR_BUSY != 0 {
        core::hint::spin_loop();
    }
    write(CR, 0);
    write(IBRD, 13);
    write(FBRD, 1);
    write(LCRH, (3 << 5) | (1 << 4));
    write(IMSC, 0);
    write(CR, (1 << 9) | (1 << 8) | 1);
}

fn put(b: u8) {
    while read(FR) & FR_TXFF != 0 {
        core::hint::spin_loop();
    }
    write(DR, u32::from(b));
}

struct Port;

impl Write for Port {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

pub fn write_fmt(args: fmt::Arguments<'_>) {
    let _g = LOCK.lock();
    let _ = Port.write_fmt(args);
}

/// For fault and panic reports: writes without the lock (the CPU that holds it may be the
/// one reporting).
pub fn panic_write_fmt(args: fmt::Arguments<'_>) {
    let _ = Port.write_fmt(args);
}

/// One received byte, if any.
pub fn try_read() -> Option<u8> {
    if read(FR) & FR_RXFE != 0 {
        None
    } else {
        Some((read(DR) & 0xff) as u8)
    }
}

/// Routes the console's receive interrupt (the PL011's SPI from the device tree) to
/// `handler`, which drains [`try_read`]. False if the device tree gave no usable interrupt
/// or the GIC cannot route it (the caller says console input is unavailable).
pub fn enable_rx_interrupt(handler: fn(&mut super::TrapFrame)) -> bool {
    let Some(irq) = super::boot::machine().and_then(|m| m.uart_irq.ok()) else {
        return false;
    };
    RX_HANDLER.store(handler as usize, Ordering::Release);
    if let Err(e) = super::gic::route_spi(irq.intid, rx_interrupt) {
        log::warn!("serial: PL011 interrupt {}: {e}", irq.intid);
        return false;
    }
    write(ICR, INT_RX | INT_RT);
    write(IMSC, INT_RX | INT_RT);
    super::gic::unmask_spi(irq.intid);
    true
}

fn rx_interrupt(_intid: u32, frame: &mut super::TrapFrame) {
    // Cleared before the handler drains the FIFO, so a byte arriving meanwhile raises it again.
    write(ICR, INT_RX | INT_RT);
    let h = RX_HANDLER.load(Ordering::Acquire);
    if h != 0 {
        // SAFETY: only `enable_rx_interrupt` stores into RX_HANDLER, and only such a `fn`.
        let f: fn(&mut super::TrapFrame) =
            unsafe { core::mem::transmute::<usize, fn(&mut super::TrapFrame)>(h) };
        f(frame);
    }
}
