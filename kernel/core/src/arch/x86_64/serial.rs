//! COM1 (16550) serial console: every log line and the panic report go here.

use core::fmt::{self, Write};
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

use crate::sync::spin::IrqSpinLock;

static COM1: IrqSpinLock<Option<Uart16550<PioBackend>>> = IrqSpinLock::new(None);

pub fn init() {
    // SAFETY: 0x3f8..0x3ff is COM1 on PC-compatible machines and nothing else in the kernel
    // touches those ports.
    let uart = unsafe { Uart16550::new_port(0x3f8) };
    if let Ok(mut uart) = uart {
        // Initialisation fails only for an invalid configuration; an absent UART simply
        // swallows output.
        let _ = uart.init(Config::default());
        *COM1.lock() = Some(uart);
    }
}

struct Writer<'a>(&'a mut Uart16550<PioBackend>);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.send_bytes_exact(b"\r");
            }
            self.0.send_bytes_exact(&[b]);
        }
        Ok(())
    }
}

pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut guard = COM1.lock();
    if let Some(uart) = guard.as_mut() {
        let _ = Writer(uart).write_fmt(args);
    }
}

/// Reads one byte if one is waiting.
pub fn try_read() -> Option<u8> {
    COM1.lock().as_mut().and_then(|u| u.try_receive_byte().ok())
}

/// Used only on the panic path: breaks the lock if the panicking CPU (or a dead one) held it.
pub fn panic_write_fmt(args: fmt::Arguments<'_>) {
    if COM1.is_locked() {
        // Give a live holder a moment, then take it regardless.
        for _ in 0..1_000_000 {
            if !COM1.is_locked() {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: on the panic path nothing else will run to completion; garbled output is
        // better than a silent hang.
        unsafe { COM1.force_unlock() };
    }
    write_fmt(args);
}

/// Enables the UART's receive interrupt and routes ISA IRQ 4 to `handler` through the
/// IOAPIC. Returns false if no vector or route is available.
pub fn enable_rx_interrupt(handler: super::idt::Handler) -> bool {
    let Some(vector) = super::ioapic::alloc_vector() else {
        return false;
    };
    super::idt::register(vector, handler);
    let (gsi, active_low, level) = crate::acpi::isa_irq_to_gsi(4);
    let dest = super::apic::id();
    if super::ioapic::route(gsi, vector, dest, level, active_low).is_err() {
        return false;
    }
    {
        let mut g = COM1.lock();
        if let Some(u) = g.as_mut() {
            u.enable_interrupts(uart_16550::spec::registers::IER::DATA_READY);
        }
    }
    super::ioapic::unmask(gsi).is_ok()
}
