//! Shared PCI interrupt lines: one IDT vector per GSI, any number of handlers on it.
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
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::arch::idt::TrapFrame;
use crate::arch::{apic, idt, ioapic};
use crate::sync::spin::IrqSpinLock;

/// A hard-interrupt handler: called with interrupts off on the CPU the line is routed to.
pub type Handler = Box<dyn Fn() + Send + Sync>;

struct Line {
    gsi: u32,
    vector: u8,
    handlers: Vec<(&'static str, Arc<Handler>)>,
    count: Arc<AtomicU64>,
}

/// GSI of each vector (`u32::MAX` = none), read by the dispatcher without a lock.
static VECTOR_GSI: [AtomicU32; 256] = [const { AtomicU32::new(u32::MAX) }; 256];
static LINES: IrqSpinLock<BTreeMap<u32, Line>> = IrqSpinLock::new(BTreeMap::new());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqError {
    /// Every device vector is in use.
    NoVector,
    /// The I/O APIC does not handle this GSI.
    NotRoutable,
}

fn dispatch(frame: &mut TrapFrame) {
    let gsi = VECTOR_GSI[frame.vector as usize & 0xff].load(Ordering::Acquire);
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
    let vector = ioapic::alloc_vector().ok_or(IrqError::NoVector)?;
    VECTOR_GSI[vector as usize].store(gsi, Ordering::Release);
    idt::register(vector, dispatch);
    // PCI INTx: level-triggered, active low.
    ioapic::route(gsi, vector, apic::id(), true, true).map_err(|e| {
        log::warn!("irq: GSI {gsi}: {e}");
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
    let _ = ioapic::unmask(gsi);
    Ok(())
}

/// Masks `gsi` at the I/O APIC (callable from a handler).
pub fn mask(gsi: u32) {
    let _ = ioapic::mask(gsi);
}

/// Unmasks `gsi` again (from the thread that finished the line's work).
pub fn unmask(gsi: u32) {
    let _ = ioapic::unmask(gsi);
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
