//! Device interrupt lines, any number of handlers on each: on x86_64 a line is a GSI with
//! its own IDT vector, on aarch64 a GICv3 shared peripheral interrupt (its interrupt ID, as
//! the device tree gives it); the controller is the `backend` below, the rest is shared.
//!
//! PCI INTx lines are shared (on q35 every function's pin lands on one of the eight PIRQ
//! GSIs 16–23), so a driver never owns a vector: it attaches a handler to the function's
//! GSI ([`attach`]) and the dispatcher calls every handler of that line. Handlers run in
//! hard-interrupt context with interrupts off: they acknowledge their device or hand the
//! work to a thread, nothing more. The line is programmed level-triggered, active low (PCI
//! INTx) and unmasked when its first handler is attached.
//!
//! A handler that cannot finish in interrupt context (the rump kernel's drivers, whose
//! handlers must run in a thread holding a rump virtual CPU) masks the line with [`mask`],
//! wakes its thread, and the thread calls [`unmask`] once the device is quiet; a level
//! line that is still asserted then fires again.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::spin::IrqSpinLock;

/// The interrupt controller under the lines. x86_64: the I/O APICs, one IDT vector per GSI
/// (allocated when the line is first attached), PCI INTx level-triggered and active low.
#[cfg(target_arch = "x86_64")]
mod backend {
    use core::sync::atomic::{AtomicU32, Ordering};

    use crate::arch::{TrapFrame, apic, idt, ioapic};

    /// GSI of each vector (`u32::MAX` = none), read by the dispatcher without a lock.
    static VECTOR_GSI: [AtomicU32; 256] = [const { AtomicU32::new(u32::MAX) }; 256];

    fn dispatch(frame: &mut TrapFrame) {
        let gsi = VECTOR_GSI[frame.vector as usize & 0xff].load(Ordering::Acquire);
        super::dispatch(gsi);
    }

    /// Gives `gsi` a free vector delivering to the dispatcher, routed to this CPU and still
    /// masked; returns the vector.
    pub fn route(gsi: u32) -> Result<u32, alloc::string::String> {
        let v =
            ioapic::alloc_vector().ok_or_else(|| alloc::string::String::from("no free vector"))?;
        VECTOR_GSI[v as usize].store(gsi, Ordering::Release);
        idt::register(v, dispatch);
        ioapic::route(gsi, v, apic::id(), true, true).map_err(|e| alloc::format!("{e}"))?;
        Ok(u32::from(v))
    }

    pub fn mask(gsi: u32) {
        let _ = ioapic::mask(gsi);
    }

    pub fn unmask(gsi: u32) {
        let _ = ioapic::unmask(gsi);
    }
}

/// aarch64: the GICv3's shared peripheral interrupts; a line's number is its GIC interrupt
/// ID (the device tree's SPI number + 32), its trigger the one the device tree gives (set at
/// boot), delivered to the CPU that attaches it.
#[cfg(target_arch = "aarch64")]
mod backend {
    use crate::arch::{TrapFrame, gic};

    fn dispatch(intid: u32, _frame: &mut TrapFrame) {
        super::dispatch(intid);
    }

    pub fn route(intid: u32) -> Result<u32, alloc::string::String> {
        gic::route_spi(intid, dispatch).map_err(|e| alloc::format!("{e}"))?;
        Ok(intid)
    }

    pub fn mask(intid: u32) {
        gic::mask_spi(intid);
    }

    pub fn unmask(intid: u32) {
        gic::unmask_spi(intid);
    }
}

/// A hard-interrupt handler: called with interrupts off on the CPU the line is routed to.
pub type Handler = Box<dyn Fn() + Send + Sync>;

struct Line {
    gsi: u32,
    /// The IDT vector (x86_64) or GIC interrupt ID (aarch64) the line arrives on.
    vector: u32,
    handlers: Vec<(&'static str, Arc<Handler>)>,
    count: Arc<AtomicU64>,
}

static LINES: IrqSpinLock<BTreeMap<u32, Line>> = IrqSpinLock::new(BTreeMap::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// The interrupt controller cannot deliver this line (no free vector, a GSI no I/O APIC
    /// handles, not an SPI of the GIC).
    NotRoutable,
}

/// Runs every handler of line `gsi` (from the controller's interrupt entry).
fn dispatch(gsi: u32) {
    // Copied out so a handler may attach or mask lines (which takes LINES) without deadlock.
    let hs: Vec<Arc<Handler>> = {
        let l = LINES.lock();
        match l.get(&gsi) {
            Some(line) => {
                line.count.fetch_add(1, Ordering::Relaxed);
                line.handlers.iter().map(|(_, h)| h.clone()).collect()
            }
            None => return,
        }
    };
    for h in hs {
        h();
    }
}

/// Attaches `handler` (named `owner` in `/proc/interrupts`-style listings) to `gsi`,
/// allocating and routing the line's vector on first use. The line is unmasked afterwards.
pub fn attach(gsi: u32, owner: &'static str, handler: Handler) -> Result<(), IrqError> {
    let handler = Arc::new(handler);
    let mut lines = LINES.lock();
    if let Some(line) = lines.get_mut(&gsi) {
        line.handlers.push((owner, handler));
        return Ok(());
    }
    let vector = backend::route(gsi).map_err(|e| {
        log::warn!("irq: line {gsi}: {e}");
        IrqError::NotRoutable
    })?;
    lines.insert(
        gsi,
        Line {
            gsi,
            vector,
            handlers: alloc::vec![(owner, handler)],
            count: Arc::new(AtomicU64::new(0)),
        },
    );
    drop(lines);
    backend::unmask(gsi);
    Ok(())
}

/// Masks `gsi` at the I/O APIC or GIC distributor (callable from a handler).
pub fn mask(gsi: u32) {
    backend::mask(gsi);
}

/// Unmasks `gsi` again (from the thread that finished the line's work).
pub fn unmask(gsi: u32) {
    backend::unmask(gsi);
}

/// One line per GSI in use: `irq GSI vector=V count=N owners=a,b`.
pub fn report() -> Vec<alloc::string::String> {
    LINES
        .lock()
        .values()
        .map(|l| {
            let owners: Vec<&str> = l.handlers.iter().map(|(o, _)| *o).collect();
            alloc::format!(
                "irq gsi={} vector={:#x} count={} owners={}",
                l.gsi,
                l.vector,
                l.count.load(Ordering::Relaxed),
                owners.join(",")
            )
        })
        .collect()
}
