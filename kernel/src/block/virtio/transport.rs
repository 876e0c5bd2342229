//! Finding virtio-blk devices on either transport: PCI functions (1af4:1001, 1af4:1042)
//! through the crate's PCI transport over the kernel's configuration space access, and the
//! virtio-mmio windows the platform lists (the device tree's `virtio,mmio` nodes on
//! aarch64). Each device found becomes a disk through [`super::add`].

use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::{DeviceType, Transport};

use super::{Blk, KernelHal, add};
use crate::mm::mmio::{self, Cache};
use crate::pci::{self, PciAddress};

/// Configuration space access for the crate's PCI transport, through the kernel's.
struct Cfg {
    segment: u16,
}

impl ConfigurationAccess for Cfg {
    fn read_word(&self, df: DeviceFunction, off: u8) -> u32 {
        pci::read_config(
            PciAddress::new(self.segment, df.bus, df.device, df.function),
            off as u16,
        )
    }
    fn write_word(&mut self, df: DeviceFunction, off: u8, data: u32) {
        pci::write_config(
            PciAddress::new(self.segment, df.bus, df.device, df.function),
            off as u16,
            data,
        )
    }
    unsafe fn unsafe_clone(&self) -> Self {
        Cfg {
            segment: self.segment,
        }
    }
}

pub fn probe_all() {
    let devs: Vec<_> = pci::devices()
        .iter()
        .filter(|d| d.vendor_id == 0x1af4 && (d.device_id == 0x1001 || d.device_id == 0x1042))
        .collect();
    for d in devs {
        if let Err(e) = probe(d) {
            log::warn!("virtio-blk {:?}: not brought up: {e}", d.addr);
        }
    }
    let mmio = crate::platform::virtio_mmio();
    let mut empty = 0;
    for d in &mmio {
        match probe_mmio(d) {
            Ok(true) => {}
            Ok(false) => empty += 1,
            Err(e) => log::warn!(
                "virtio-mmio {} at {:#x}: not brought up: {e}",
                d.node,
                d.base
            ),
        }
    }
    if !mmio.is_empty() {
        log::info!(
            "virtio-mmio: {} transports, {empty} without a device or with another kind",
            mmio.len()
        );
    }
}

/// A virtio-mmio transport: Ok(false) when it holds no device or not a block device.
fn probe_mmio(d: &crate::platform::MmioDevice) -> Result<bool, String> {
    use alloc::format;
    let size = usize::try_from(d.size).map_err(|_| String::from("window too large"))?;
    let va = mmio::map(d.base, d.size, Cache::Uncached)
        .map_err(|e| format!("cannot map the registers: {e:?}"))?;
    let header = NonNull::new(va as *mut VirtIOHeader).ok_or("mapped at 0")?;
    // SAFETY: `va` is the transport's register window (`size` bytes, checked against the
    // virtio-mmio header's size when the device tree was read), mapped uncached for good
    // and used by nothing else: no other driver claims virtio-mmio windows.
    let transport = match unsafe { MmioTransport::new(header, size) } {
        Ok(t) => t,
        // An empty slot (QEMU `virt` has 32) reads device ID 0.
        Err(MmioError::InvalidDeviceID(_)) => return Ok(false),
        Err(e) => return Err(format!("{e}")),
    };
    if transport.device_type() != DeviceType::Block {
        return Ok(false);
    }
    let version = transport.version();
    let blk = Blk::new(transport.into()).map_err(|e| format!("init: {e:?}"))?;
    let name = add(blk, Some(d.irq));
    log::info!(
        "{name}: virtio-blk on virtio-mmio {:?} at {:#x}, interrupt {}",
        version,
        d.base,
        d.irq
    );
    Ok(true)
}

fn probe(d: &'static crate::pci::PciDevice) -> Result<(), String> {
    use alloc::format;
    pci::claim(
        d.addr,
        pci::Owner {
            stack: "native",
            driver: "virtio-blk",
        },
    )
    .map_err(|o| format!("owned by the {} stack ({})", o.stack, o.driver))?;
    pci::enable_memory(d);
    pci::enable_io(d);
    pci::enable_bus_master(d);
    let mut root = PciRoot::new(Cfg {
        segment: d.addr.segment(),
    });
    let df = DeviceFunction {
        bus: d.addr.bus(),
        device: d.addr.device(),
        function: d.addr.function(),
    };
    let transport = PciTransport::new::<KernelHal, Cfg>(&mut root, df).map_err(|e| {
        format!(
            "transport: {e} (a legacy-only device without virtio 1.0 capabilities is not supported)"
        )
    })?;
    let blk = Blk::new(transport.into()).map_err(|e| format!("init: {e:?}"))?;
    let irq = pci::irq(d);
    if irq.is_none() {
        log::warn!(
            "virtio-blk {:?}: no routed INTx; polling every 10 ms",
            d.addr
        );
    }
    add(blk, irq);
    Ok(())
}
