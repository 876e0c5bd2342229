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

use crate::arch::TrapFrame;
use crate::sync::spin::IrqSpinLock;

/// The interrupt controller under the lines: x86_64's I/O APICs and IDT vectors. On
/// aarch64 device interrupts are GIC SPIs, which are not routed yet (no device there needs
/// one: there is no PCI on aarch64 yet), so `attach` says so and fails.
#[cfg(target_arch = "x86_64")]
mod backend {
    use crate::arch::{TrapFrame, apic, idt, ioapic};

    pub fn vector_of(frame: &TrapFrame) -> usize {
        frame.vector as usize & 0xff
    }

    /// A free vector, delivering to `dispatch`.
    pub fn alloc_vector(dispatch: idt::Handler) -> Option<u8> {
        let v = ioapic::alloc_vector()?;
        idt::register(v, dispatch);
        Some(v)
    }

    /// PCI INTx: level-triggered, active low.
    pub fn route(gsi: u32, vector: u8) -> Result<(), alloc::string::String> {
        ioapic::route(gsi, vector, apic::id(), true, true).map_err(|e| alloc::format!("{e}"))
    }

    pub fn mask(gsi: u32) {
        let _ = ioapic::mask(gsi);
    }

    pub fn unmask(gsi: u32) {
        let _ = ioapic::unmask(gsi);
    }
}

#[cfg(target_arch = "aarch64")]
mod backend {
    use crate::arch::TrapFrame;

    pub fn vector_of(_frame: &TrapFrame) -> usize {
        0
    }

    pub fn alloc_vector(_dispatch: fn(&mut TrapFrame)) -> Option<u8> {
        Some(0)
    }

    pub fn route(_gsi: u32, _vector: u8) -> Result<(), alloc::string::String> {
        Err(alloc::string::String::from(
            "device interrupts (GIC SPIs) are not routed on aarch64 yet",
        ))
    }

    pub fn mask(_gsi: u32) {}

    pub fn unmask(_gsi: u32) {}
}

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
    let gsi = VECTOR_GSI[backend::vector_of(frame)].load(Ordering::Acquire);
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
    let vector = backend::alloc_vector(dispatch).ok_or(IrqError::NoVector)?;
    VECTOR_GSI[vector as usize].store(gsi, Ordering::Release);
    backend::route(gsi, vector).map_err(|e| {
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
    backend::unmask(gsi);
    Ok(())
}

/// Masks `gsi` at the I/O APIC (callable from a handler).
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
