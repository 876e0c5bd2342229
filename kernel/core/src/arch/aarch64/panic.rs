//! Panic and fatal-exception reports on aarch64 (`crate::panic` there): the message, the
//! registers, a frame-pointer backtrace, then a failing QEMU exit status — the same
//! statuses as x86_64's `isa-debug-exit` (see [`super::qemu_exit`]). One CPU reports; the
//! others are sent the stop SGI (a CPU with IRQs masked does not take it: there is no NMI
//! here, and their state is not printed yet).

use core::sync::atomic::{AtomicUsize, Ordering};

use super::exceptions::TrapFrame;

/// QEMU exit statuses: `(code << 1) | 1`, as on x86_64.
pub const EXIT_SUCCESS: u8 = 0x10; // QEMU exits 33
pub const EXIT_FAILURE: u8 = 0x11; // 35
pub const EXIT_PANIC: u8 = 0x12; // 37

static PANIC_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);

pub fn is_panicking() -> bool {
    PANIC_CPU.load(Ordering::SeqCst) != usize::MAX
}

/// Claims the report for this CPU; a second panic while reporting ends the run at once.
pub fn begin() {
    super::irq::save_and_disable();
    let me = super::percpu::cpu_id();
    match PANIC_CPU.compare_exchange(usize::MAX, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(c) if c == me => super::qemu_exit(EXIT_PANIC),
        Err(_) => super::halt_forever(),
    }
}

pub fn print(args: core::fmt::Arguments<'_>) {
    super::serial::panic_write_fmt(args);
}

/// `  name+0xoff` when a symbol table is installed, else nothing.
pub fn symbolize(addr: u64) -> impl core::fmt::Display {
    struct S(u64);
    impl core::fmt::Display for S {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match crate::symbols::lookup(self.0) {
                Some((n, off)) => write!(f, " {n}+{off:#x}"),
                None => Ok(()),
            }
        }
    }
    S(addr)
}

/// A fixed buffer that formats into a `&str` without the heap (fault reports).
pub struct LineBuf {
    buf: [u8; 160],
    len: usize,
}

impl LineBuf {
    pub fn new() -> Self {
        Self {
            buf: [0; 160],
            len: 0,
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

pub fn print_registers(f: &TrapFrame) {
    for row in 0..8 {
        print(format_args!("   "));
        for col in 0..4 {
            let i = row * 4 + col;
            match f.x.get(i) {
                Some(v) => print(format_args!(" x{i:<2} {v:016x}")),
                None => print(format_args!(" sp  {:016x}", f.sp)),
            }
        }
        print(format_args!("\n"));
    }
    print(format_args!("    spsr {:#x}\n", f.spsr));
}

/// Walks the frame-record chain (x29: previous x29, return address).
pub fn backtrace_from(fp: u64) {
    crate::symbols::print_frame_chain(fp, 16, 0xFFFF_0000_0000_0000, print);
}

#[inline(always)]
pub fn current_fp() -> u64 {
    let fp: u64;
    // SAFETY: reads the frame pointer register.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    fp
}

/// `/proc/sysrq-trigger`'s `t`/`l`: x86_64 stops every CPU with an NMI and prints each
/// one's state and every thread; aarch64 has no NMI here yet (pseudo-NMIs through GIC
/// priorities would do it), so this only says so.
pub fn request_hang_report() {
    log::warn!("sysrq: no hang report on aarch64 yet (it needs an NMI: docs/arch.md)");
}

/// Sends every other online CPU the stop SGI.
fn stop_other_cpus() {
    if !super::percpu::is_ready() {
        return;
    }
    let me = super::percpu::cpu_id();
    for pc in super::percpu::online_cpus().filter(|pc| pc.cpu_id != me) {
        super::gic::send_sgi(pc.mpidr, super::gic::SGI_STOP);
    }
}

pub fn end() -> ! {
    stop_other_cpus();
    print(format_args!(
        "!!! end of report; stopping (QEMU exit status {})\n",
        (EXIT_PANIC << 1) | 1
    ));
    super::qemu_exit(EXIT_PANIC)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    begin();
    print(format_args!(
        "\n!!! KERNEL PANIC on CPU {}: {}\n",
        super::percpu::cpu_id(),
        info.message()
    ));
    if let Some(loc) = info.location() {
        print(format_args!(
            "    at {}:{}:{}\n",
            loc.file(),
            loc.line(),
            loc.column()
        ));
    }
    backtrace_from(current_fp());
    end()
}
