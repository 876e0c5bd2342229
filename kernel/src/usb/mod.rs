//! Native USB (issue 16): xHCI, EHCI and UHCI controllers (`adros-xhci`, `adros-ehci`,
//! `adros-uhci`), devices enumerated by
//! `adros-usb`, and every Bulk-Only mass-storage LUN registered as `/dev/sdX` through the
//! block layer — the same names, partitions and `/proc/drivers` lines as the rump stack's
//! sticks (`kernel/src/rump/usb.rs`).
//!
//! * Chosen by `usb.driver=native` (the default when the NetBSD components are not linked).
//!   [`init`] claims every xHCI (class 0x0c03, prog-if 0x30, `adros-xhci`), EHCI
//!   (prog-if 0x20, `adros-ehci`: high-speed devices) and UHCI (prog-if 0x00,
//!   `adros-uhci`: the full/low-speed devices an EHCI hands to its companions) function
//!   for the native stack; OHCI controllers are logged as not driven. EHCIs start before
//!   UHCIs: an EHCI's reset routes every port to the companions until it sets CONFIGFLAG.
//! * One service thread per controller enumerates the root ports at start and then follows
//!   port changes (once a second, and on Port Status Change events): a stick that appears
//!   is enumerated and registered; a stick that disappears makes its disks answer EIO
//!   (a transfer in flight ends with `NoDevice` as soon as the driver sees the port lose
//!   it), its `/dev/sdX` nodes and name are released and its slot freed.
//! * I/O runs in the caller's thread: a disk's transport lock, then the controller's lock,
//!   then a synchronous BOT command (waiting on the controller's interrupt, or polling when
//!   no interrupt line is routed).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use adros_ehci::Ehci;
use adros_uhci::Uhci;
use adros_usb::HostController;
use adros_usb::bot::Transport;
use adros_usb::disk::{DiskError, ScsiDisk};
use adros_xhci::Xhci;

use crate::block::{self, BlockDev, SECTOR};
use crate::errno::{Errno, KResult};
use crate::hal::{Bar, IoBar, KernelEvent, KernelHal};
use crate::sync::Mutex;

/// A host controller driver as the glue sees it: the core's [`HostController`] plus
/// liveness, port-change events and counters.
trait Hcd: HostController + Send {
    fn enable_irq(&mut self);
    fn dead(&self) -> bool;
    fn port_changes(&mut self) -> u64;
    fn stats_line(&self) -> String;
}

/// The three drivers name these alike; only their counters differ.
macro_rules! hcd {
    ($ty:ty, $fmt:literal, $($field:ident),+) => {
        impl Hcd for $ty {
            fn enable_irq(&mut self) {
                self.enable_interrupts()
            }
            fn dead(&self) -> bool {
                self.is_dead()
            }
            fn port_changes(&mut self) -> u64 {
                self.take_port_changes()
            }
            fn stats_line(&self) -> String {
                let s = self.stats;
                format!($fmt, $(s.$field),+)
            }
        }
    };
}

hcd!(
    Xhci<KernelHal, Bar>,
    "commands={} transfers={} stalls={} timeouts={} errors={} unplugged={}",
    commands, transfers, stalls, timeouts, errors, unplugged
);
hcd!(
    Ehci<KernelHal, Bar>,
    "transfers={} stalls={} timeouts={} errors={} companion_handoffs={} unplugged={}",
    transfers, stalls, timeouts, errors, companion_handoffs, unplugged
);
hcd!(
    Uhci<KernelHal, IoBar>,
    "transfers={} stalls={} timeouts={} errors={} port_resets={} unplugged={}",
    transfers, stalls, timeouts, errors, port_resets, unplugged
);

type Hc = dyn Hcd;

/// How the interrupt handler acknowledges the controller, through its register window.
#[derive(Clone, Copy)]
enum IrqAck {
    Xhci(adros_xhci::IrqRegs, Bar),
    Ehci(adros_ehci::IrqRegs, Bar),
    Uhci(adros_uhci::IrqRegs, IoBar),
}

impl IrqAck {
    fn ack(&self) -> bool {
        match self {
            IrqAck::Xhci(r, bar) => r.ack(bar),
            IrqAck::Ehci(r, bar) => r.ack(bar),
            IrqAck::Uhci(r, io) => r.ack(io),
        }
    }
}

struct Controller {
    slot: String,
    kind: &'static str,
    hc: Mutex<alloc::boxed::Box<Hc>>,
    event: Arc<KernelEvent>,
    irq_ack: IrqAck,
    irq: spin::Mutex<String>,
    interrupts: AtomicU64,
    ports: u8,
    /// xHCI: USB 3 ports and the context size; EHCI: 0.
    usb3_ports: u8,
    csz: usize,
}

/// A mass-storage LUN as a block device.
pub struct UsbDisk {
    name: String,
    /// Its `/dev/sdX` index (given back when the stick is removed).
    index: u32,
    ctrl: Arc<Controller>,
    /// The root port, and the hub port behind it (0: on the root port).
    port: u8,
    hub_port: u8,
    product: String,
    disk: ScsiDisk,
    transport: Mutex<Transport>,
    gone: AtomicBool,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

static CONTROLLERS: spin::Mutex<Vec<Arc<Controller>>> = spin::Mutex::new(Vec::new());
static DISKS: spin::Mutex<Vec<Arc<UsbDisk>>> = spin::Mutex::new(Vec::new());
static ACTIVE: AtomicBool = AtomicBool::new(false);

impl UsbDisk {
    fn io(
        &self,
        what: &str,
        f: impl FnOnce(&ScsiDisk, &mut Transport, &mut Hc) -> Result<(), DiskError>,
    ) -> KResult<()> {
        if self.gone.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let mut t = self.transport.lock();
        let mut hc = self.ctrl.hc.lock();
        // Looked at again under the controller's lock: the service thread marks a removed
        // stick gone before it frees its slot, and a new stick may get the same slot.
        if self.gone.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        match f(&self.disk, &mut t, &mut **hc) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("usb: /dev/{}: {what} failed: {e:?}", self.name);
                if e.is_fatal() {
                    self.gone.store(true, Ordering::Release);
                }
                Err(match e {
                    DiskError::WriteProtected => Errno::EROFS,
                    _ => Errno::EIO,
                })
            }
        }
    }

    fn check(&self, lba: u64, len: usize) -> KResult<()> {
        if lba
            .checked_add(len as u64 / SECTOR)
            .is_none_or(|e| e > self.disk.blocks)
        {
            return Err(Errno::EIO);
        }
        Ok(())
    }
}

impl BlockDev for UsbDisk {
    fn name(&self) -> &str {
        &self.name
    }
    fn sectors(&self) -> u64 {
        self.disk.blocks
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> KResult<()> {
        self.check(lba, buf.len())?;
        self.io("read", |d, t, hc| d.read(t, hc, lba, buf))?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()> {
        self.check(lba, buf.len())?;
        self.io("write", |d, t, hc| d.write(t, hc, lba, buf))?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&self) -> KResult<()> {
        self.io("flush", |d, t, hc| d.flush(t, hc))
    }
    fn read_only(&self) -> bool {
        self.disk.write_protected
    }
    fn driver(&self) -> &'static str {
        "native-usb"
    }
}

/// Claims and starts every xHCI controller when `usb.driver=native`. Call once the
/// scheduler, PCI and the interrupt controllers are up.
pub fn init() {
    if crate::rump::usb::driver() != "native" {
        return;
    }
    let all: Vec<_> = crate::pci::find_class(0x0c, 0x03).collect();
    if all.is_empty() {
        return;
    }
    ACTIVE.store(true, Ordering::Release);
    // xHCI and EHCI first: an EHCI's reset gives every port to its companion UHCIs until
    // it sets CONFIGFLAG, so the UHCIs start after it and see only what it hands over.
    let mut all = all;
    all.sort_by_key(|d| core::cmp::Reverse(d.prog_if));
    for d in all {
        let slot = adros_pci::slot_name(d.addr);
        match d.prog_if {
            0x30 | 0x20 | 0x00 => match start(d) {
                Ok(c) => {
                    let c2 = c.clone();
                    CONTROLLERS.lock().push(c);
                    crate::sched::thread::spawn("usb-hc", move || service(c2));
                }
                Err(e) => log::warn!("usb: {slot}: host controller not started: {e}"),
            },
            p => log::warn!(
                "usb: {slot}: USB host controller interface {p:#x} (OHCI or unknown) is not driven by the native stack"
            ),
        }
    }
}

fn start(d: &'static crate::pci::PciDevice) -> Result<Arc<Controller>, String> {
    let slot = adros_pci::slot_name(d.addr);
    let (kind, owner) = match d.prog_if {
        0x30 => ("xhci", "usb xhci (native)"),
        0x20 => ("ehci", "usb ehci (native)"),
        _ => ("uhci", "usb uhci (native)"),
    };
    crate::pci::claim(
        d.addr,
        crate::pci::Owner {
            stack: "native",
            driver: owner,
        },
    )
    .map_err(|o| format!("owned by the {} stack ({})", o.stack, o.driver))?;
    let event = Arc::new(KernelEvent::default());
    let (hc, irq_ack, usb3_ports, csz): (alloc::boxed::Box<Hc>, _, u8, usize) = match kind {
        "xhci" | "ehci" => {
            crate::pci::enable_memory(d);
            crate::pci::enable_bus_master(d);
            let regs = crate::pci::map_bar_regs(d, 0).map_err(|e| format!("BAR0: {e:?}"))?;
            let bar = Bar(regs);
            if kind == "xhci" {
                let mut hc =
                    Xhci::new(KernelHal, bar, false).map_err(|e| format!("xHCI: {e:?}"))?;
                hc.set_event(event.clone());
                let usb3 = (1..=hc.ports()).filter(|p| hc.is_usb3(*p)).count() as u8;
                let (ack, csz) = (IrqAck::Xhci(hc.irq_regs(), bar), hc.context_size());
                (alloc::boxed::Box::new(hc), ack, usb3, csz)
            } else {
                let mut hc =
                    Ehci::new(KernelHal, bar, false).map_err(|e| format!("EHCI: {e:?}"))?;
                hc.set_event(event.clone());
                let ack = IrqAck::Ehci(hc.irq_regs(), bar);
                (alloc::boxed::Box::new(hc), ack, 0, 0)
            }
        }
        _ => {
            // UHCI: the registers are I/O BAR 4.
            let b = crate::pci::bar(d, 4)
                .filter(|b| b.is_io())
                .ok_or_else(|| String::from("no I/O BAR 4"))?;
            let io = IoBar::new(b.address, b.size)
                .ok_or_else(|| format!("I/O BAR 4 at {:#x}+{:#x} unusable", b.address, b.size))?;
            crate::pci::enable_io(d);
            crate::pci::enable_bus_master(d);
            // USBLEGSUP (Intel): clear the legacy-keyboard SMI routing and its status
            // bits before the reset, then route the interrupt to INTx (PIRQ enable).
            let legsup = crate::pci::read_config(d.addr, UHCI_LEGSUP) & !0xffff;
            crate::pci::write_config(d.addr, UHCI_LEGSUP, legsup | 0x8f00);
            let mut hc = Uhci::new(KernelHal, io, false).map_err(|e| format!("UHCI: {e:?}"))?;
            crate::pci::write_config(d.addr, UHCI_LEGSUP, legsup | 0x2000);
            hc.set_event(event.clone());
            let ack = IrqAck::Uhci(hc.irq_regs(), io);
            (alloc::boxed::Box::new(hc), ack, 0, 0)
        }
    };
    let ports = hc.ports();
    let c = Arc::new(Controller {
        slot: slot.clone(),
        kind,
        irq_ack,
        csz,
        hc: Mutex::new(hc),
        event,
        irq: spin::Mutex::new(String::from("polled")),
        interrupts: AtomicU64::new(0),
        ports,
        usb3_ports,
    });
    let irq = match crate::pci::irq(d) {
        None => String::from("polled (no routed INTx)"),
        Some(gsi) => {
            let h = c.clone();
            let handler = move || {
                if h.irq_ack.ack() {
                    h.interrupts.fetch_add(1, Ordering::Relaxed);
                    adros_hal::Event::notify(&*h.event);
                }
            };
            match crate::irq::attach(gsi, "usb-hc", alloc::boxed::Box::new(handler)) {
                Ok(()) => {
                    enable_interrupts(&c);
                    format!("gsi {gsi} (INTx)")
                }
                Err(e) => format!("polled (GSI {gsi}: {e:?})"),
            }
        }
    };
    match kind {
        "xhci" => log::info!(
            "usb: xHCI at {slot}: {ports} ports ({usb3_ports} USB 3), {csz}-byte contexts, interrupts {irq}; native USB stack"
        ),
        "ehci" => log::info!(
            "usb: EHCI at {slot}: {ports} ports, interrupts {irq}; native USB stack (high-speed devices; full/low-speed ones are handed to its companion UHCIs)"
        ),
        _ => log::info!(
            "usb: UHCI at {slot}: {ports} ports, interrupts {irq}; native USB stack (full/low-speed devices)"
        ),
    }
    *c.irq.lock() = irq;
    Ok(c)
}

/// Intel's USB legacy support register of a UHCI function (configuration space).
const UHCI_LEGSUP: u16 = 0xc0;

/// Switches the controller's interrupt generation on once the handler is attached.
fn enable_interrupts(c: &Controller) {
    let mut hc = c.hc.lock();
    hc.enable_irq();
}

/// What the service thread keeps for a root port.
enum Attached {
    Device(adros_usb::DeviceId),
    /// A hub (`usb-hub`): its downstream ports' devices, polled once a second.
    Hub {
        hub: adros_usb::hub::Hub,
        children: [Option<adros_usb::DeviceId>; 16],
        failed: [bool; 16],
    },
}

/// The controller's service thread: enumerates connected ports, then follows changes.
fn service(c: Arc<Controller>) {
    let mut attached: Vec<Option<Attached>> = (0..256).map(|_| None).collect();
    let mut failed = [false; 256];
    loop {
        let dead = c.hc.lock().dead();
        if dead {
            log::error!(
                "usb: {} at {}: the controller died (host system error); its disks answer EIO",
                c.kind,
                c.slot
            );
            for d in DISKS.lock().iter().filter(|d| Arc::ptr_eq(&d.ctrl, &c)) {
                d.gone.store(true, Ordering::Release);
            }
            return;
        }
        for port in 1..=c.ports {
            let st = c.hc.lock().port_status(port);
            let p = usize::from(port);
            // A failed (or handed-over) device is not retried until the port is empty
            // again; an EHCI port handed to a companion reads as empty at once.
            if !st.connected {
                failed[p] = false;
            }
            // Gone, or replaced between two looks (connected again, but the port was
            // disabled by the disconnect): the old device is released first.
            if attached[p].is_some() && (!st.connected || !st.enabled) {
                match attached[p].take() {
                    Some(Attached::Device(id)) => detach_port(&c, port, 0, id),
                    Some(Attached::Hub { hub, children, .. }) => {
                        for (hp, child) in children.iter().enumerate() {
                            if let Some(id) = child {
                                detach_port(&c, port, hp as u8, *id);
                            }
                        }
                        detach_port(&c, port, 0, hub.dev);
                    }
                    None => {}
                }
            }
            if st.connected && attached[p].is_none() && !failed[p] {
                match attach_port(&c, port) {
                    Ok(Some(a)) => attached[p] = Some(a),
                    Ok(None) => failed[p] = true,
                    Err(e) => {
                        failed[p] = true;
                        log::warn!(
                            "usb: {} at {} port {port}: {e}; port disabled",
                            c.kind,
                            c.slot
                        );
                    }
                }
            }
            if let Some(Attached::Hub {
                hub,
                children,
                failed,
            }) = attached[p].as_mut()
            {
                service_hub(&c, port, hub, children, failed);
            }
        }
        // Port Status Change events wake the thread early; otherwise look once a second.
        let changes = c.hc.lock().port_changes();
        if changes == 0 {
            adros_hal::Event::wait(&*c.event, Some(crate::time::now_ns() + 1_000_000_000));
        }
    }
}

/// One look at every downstream port of the hub on root port `port`.
fn service_hub(
    c: &Arc<Controller>,
    port: u8,
    hub: &adros_usb::hub::Hub,
    children: &mut [Option<adros_usb::DeviceId>; 16],
    failed: &mut [bool; 16],
) {
    for hp in 1..=hub.descriptor.ports {
        let h = usize::from(hp);
        let st = {
            let mut hc = c.hc.lock();
            hub.port_state(&mut **hc, hp)
        };
        let st = match st {
            Ok(st) => st,
            // The hub itself is going away; the root port's change handles it.
            Err(_) => return,
        };
        if st.change & 1 != 0 && !st.connected() {
            failed[h] = false;
        }
        if let Some(id) = children[h]
            && (!st.connected() || !st.enabled())
        {
            children[h] = None;
            detach_port(c, port, hp, id);
        }
        if st.connected() && children[h].is_none() && !failed[h] {
            let dev = {
                let mut hc = c.hc.lock();
                hub.enumerate(&mut **hc, hp, |ms| {
                    crate::sched::thread::sleep_ms(u64::from(ms))
                })
            };
            match dev {
                Ok(d) => {
                    log::info!(
                        "usb: {} at {} port {port}.{hp} (behind a hub): {:04x}:{:04x} {} {} ({}), slot {}",
                        c.kind,
                        c.slot,
                        d.descriptor.vendor,
                        d.descriptor.product,
                        d.manufacturer,
                        d.product,
                        d.speed.name(),
                        d.id.0
                    );
                    children[h] = Some(d.id);
                    if d.descriptor.class == adros_usb::hub::CLASS_HUB {
                        log::warn!(
                            "usb: port {port}.{hp}: a hub behind a hub is left configured, unused"
                        );
                    } else {
                        register_disks(c, &d, port, hp);
                    }
                }
                Err(e) => {
                    failed[h] = true;
                    log::warn!(
                        "usb: {} at {} port {port}.{hp} (behind a hub): enumeration failed: {e:?}; port disabled",
                        c.kind,
                        c.slot
                    );
                }
            }
        }
    }
}

/// Enumerates the device on a root port; `Ok(None)`: an EHCI handed it to a companion.
fn attach_port(c: &Arc<Controller>, port: u8) -> Result<Option<Attached>, String> {
    let mut hc = c.hc.lock();
    let dev = match adros_usb::enumerate(&mut **hc, port) {
        Ok(d) => d,
        Err(adros_usb::UsbError::Unsupported) if c.kind == "ehci" => {
            log::info!(
                "usb: ehci at {} port {port}: a full/low-speed device, handed to the companion controller (UHCI; a plain EHCI without companions leaves it unused)",
                c.slot
            );
            return Ok(None);
        }
        Err(e) => return Err(format!("enumeration failed: {e:?}")),
    };
    log::info!(
        "usb: {} at {} port {port}: {:04x}:{:04x} {} {} ({}), slot {}",
        c.kind,
        c.slot,
        dev.descriptor.vendor,
        dev.descriptor.product,
        dev.manufacturer,
        dev.product,
        dev.speed.name(),
        dev.id.0
    );
    if dev.descriptor.class == adros_usb::hub::CLASS_HUB {
        let r = adros_usb::hub::init(&mut **hc, &dev, |ms| {
            crate::sched::thread::sleep_ms(u64::from(ms))
        });
        return match r {
            Ok(hub) => {
                log::info!(
                    "usb: port {port}: a hub with {} ports; its ports are looked at once a second",
                    hub.descriptor.ports
                );
                Ok(Some(Attached::Hub {
                    hub,
                    children: [None; 16],
                    failed: [false; 16],
                }))
            }
            Err(e) => {
                hc.release_device(dev.id);
                hc.disable_port(port);
                Err(format!("hub set-up failed: {e:?}"))
            }
        };
    }
    drop(hc);
    register_disks(c, &dev, port, 0);
    Ok(Some(Attached::Device(dev.id)))
}

/// Probes a configured device's Bulk-Only LUNs and registers each as `/dev/sdX`.
fn register_disks(c: &Arc<Controller>, dev: &adros_usb::Device, port: u8, hub_port: u8) {
    let Some(mut t) = dev
        .config
        .interfaces
        .iter()
        .find_map(|i| Transport::from_interface(dev.id, i))
    else {
        log::info!(
            "usb: port {}: no Bulk-Only mass-storage interface; device left configured, unused",
            port_name(port, hub_port)
        );
        return;
    };
    let mut hc = c.hc.lock();
    let max_lun = t.max_lun(&mut **hc);
    let mut found = Vec::new();
    for lun in 0..=max_lun {
        match ScsiDisk::probe(&mut t, &mut **hc, lun, 50, |ms| {
            crate::sched::thread::sleep_ms(u64::from(ms))
        }) {
            Ok(d) => found.push(d),
            Err(e) => log::warn!(
                "usb: port {} LUN {lun}: not usable: {e:?}",
                port_name(port, hub_port)
            ),
        }
    }
    drop(hc);
    for d in found {
        let Some((index, name)) = block::next_sd_name() else {
            log::warn!(
                "usb: port {}: no free /dev/sdX name",
                port_name(port, hub_port)
            );
            break;
        };
        let product = format!("{} {}", d.vendor, d.product);
        crate::println!(
            "usb: port {} LUN {} ({product}) is /dev/{name} ({} MiB{}, native USB stack)",
            port_name(port, hub_port),
            d.lun,
            (d.blocks * SECTOR) >> 20,
            if d.write_protected {
                ", write-protected"
            } else {
                ""
            }
        );
        let disk = Arc::new(UsbDisk {
            name,
            index,
            ctrl: c.clone(),
            port,
            hub_port,
            product,
            disk: d,
            transport: Mutex::new(t.clone()),
            gone: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        DISKS.lock().push(disk.clone());
        block::add_disk_major(block::SD_MAJOR, index, disk);
    }
}

/// `3` for a root port, `3.2` for port 2 of the hub on root port 3.
fn port_name(port: u8, hub_port: u8) -> String {
    if hub_port == 0 {
        format!("{port}")
    } else {
        format!("{port}.{hub_port}")
    }
}

/// The device on `port` (`hub_port` of the hub there, or 0) went away: its disks answer
/// EIO from now on (open files and mounts keep the `UsbDisk`, which answers EIO), their
/// `/dev` nodes and names are released for the next stick, and the device's slot (xHCI)
/// or address and QHs (EHCI) are freed.
fn detach_port(c: &Arc<Controller>, port: u8, hub_port: u8, id: adros_usb::DeviceId) {
    let gone: Vec<Arc<UsbDisk>> = {
        let mut disks = DISKS.lock();
        let (gone, keep): (Vec<_>, Vec<_>) = disks
            .drain(..)
            .partition(|d| Arc::ptr_eq(&d.ctrl, c) && d.port == port && d.hub_port == hub_port);
        *disks = keep;
        gone
    };
    // Marked gone before the slot is freed (see `UsbDisk::io`).
    for d in &gone {
        d.gone.store(true, Ordering::Release);
    }
    c.hc.lock().release_device(id);
    for d in &gone {
        block::remove_disk_major(block::SD_MAJOR, d.index);
        block::release_sd_name(d.index);
        crate::println!(
            "usb: the stick on port {} was removed: /dev/{} is gone ({} reads, {} errors); open files and mounts on it get EIO",
            port_name(port, hub_port),
            d.name,
            d.reads.load(Ordering::Relaxed),
            d.errors.load(Ordering::Relaxed)
        );
    }
    if gone.is_empty() {
        log::info!(
            "usb: {} at {} port {}: device removed, slot released",
            c.kind,
            c.slot,
            port_name(port, hub_port)
        );
    }
}

/// `/proc/drivers` lines of the native stack.
pub fn report() -> Vec<String> {
    let mut v = Vec::new();
    if !ACTIVE.load(Ordering::Acquire) {
        return v;
    }
    for c in CONTROLLERS.lock().iter() {
        let st = c.hc.try_lock().map(|h| h.stats_line());
        let mut line = format!(
            "usb-hc {} {} stack=native ports={} usb3={} ctx={} irq=\"{}\" interrupts={}",
            c.slot,
            c.kind,
            c.ports,
            c.usb3_ports,
            c.csz,
            c.irq.lock(),
            c.interrupts.load(Ordering::Relaxed)
        );
        if let Some(s) = st {
            line.push(' ');
            line.push_str(&s);
        }
        v.push(line);
    }
    for d in DISKS.lock().iter() {
        v.push(format!(
            "usb-disk {} port={} lun={} stack=native product=\"{}\" sectors={} reads={} writes={} bytes={} errors={} resets={} retries={}{}",
            d.name,
            port_name(d.port, d.hub_port),
            d.disk.lun,
            d.product,
            d.disk.blocks,
            d.reads.load(Ordering::Relaxed),
            d.writes.load(Ordering::Relaxed),
            d.bytes.load(Ordering::Relaxed),
            d.errors.load(Ordering::Relaxed),
            d.transport.try_lock().map_or(0, |t| t.resets),
            d.transport.try_lock().map_or(0, |t| t.retries),
            if d.gone.load(Ordering::Relaxed) { " gone" } else { "" }
        ));
    }
    v
}
