//! Names for `lspci`-style listings: the standard class-code table (PCI Code and ID
//! Assignment spec, spelled as in pci.ids) and the vendors/devices QEMU machines carry.

/// Name of a base class, or `None` when it is not in the standard table.
pub fn class_name(class: u8) -> Option<&'static str> {
    Some(match class {
        0x00 => "Unclassified device",
        0x01 => "Mass storage controller",
        0x02 => "Network controller",
        0x03 => "Display controller",
        0x04 => "Multimedia controller",
        0x05 => "Memory controller",
        0x06 => "Bridge",
        0x07 => "Communication controller",
        0x08 => "Generic system peripheral",
        0x09 => "Input device controller",
        0x0a => "Docking station",
        0x0b => "Processor",
        0x0c => "Serial bus controller",
        0x0d => "Wireless controller",
        0x0e => "Intelligent controller",
        0x0f => "Satellite communications controller",
        0x10 => "Encryption controller",
        0x11 => "Signal processing controller",
        0x12 => "Processing accelerators",
        0x13 => "Non-Essential Instrumentation",
        0x40 => "Coprocessor",
        0xff => "Unassigned class",
        _ => return None,
    })
}

/// Name of a (class, subclass) pair; falls back to the class name, as `lspci` does.
pub fn subclass_name(class: u8, subclass: u8) -> Option<&'static str> {
    let s = match (class, subclass) {
        (0x00, 0x00) => "Non-VGA unclassified device",
        (0x00, 0x01) => "VGA compatible unclassified device",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x02) => "Floppy disk controller",
        (0x01, 0x03) => "IPI bus controller",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "Serial Attached SCSI controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x01, 0x09) => "Universal Flash Storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, 0x01) => "Token ring network controller",
        (0x02, 0x02) => "FDDI network controller",
        (0x02, 0x03) => "ATM network controller",
        (0x02, 0x04) => "ISDN controller",
        (0x02, 0x05) => "WorldFip controller",
        (0x02, 0x06) => "PICMG controller",
        (0x02, 0x07) => "Infiniband controller",
        (0x02, 0x08) => "Fabric controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x01) => "XGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x04, 0x00) => "Multimedia video controller",
        (0x04, 0x01) => "Multimedia audio controller",
        (0x04, 0x02) => "Computer telephony device",
        (0x04, 0x03) => "Audio device",
        (0x05, 0x00) => "RAM memory",
        (0x05, 0x01) => "FLASH memory",
        (0x05, 0x02) => "CXL",
        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x02) => "EISA bridge",
        (0x06, 0x03) => "MicroChannel bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x05) => "PCMCIA bridge",
        (0x06, 0x06) => "NuBus bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x06, 0x08) => "RACEway bridge",
        (0x06, 0x09) => "Semi-transparent PCI-to-PCI bridge",
        (0x06, 0x0a) => "InfiniBand to PCI host bridge",
        (0x07, 0x00) => "Serial controller",
        (0x07, 0x01) => "Parallel controller",
        (0x07, 0x02) => "Multiport serial controller",
        (0x07, 0x03) => "Modem",
        (0x07, 0x04) => "GPIB controller",
        (0x07, 0x05) => "Smart Card controller",
        (0x08, 0x00) => "PIC",
        (0x08, 0x01) => "DMA controller",
        (0x08, 0x02) => "Timer",
        (0x08, 0x03) => "RTC",
        (0x08, 0x04) => "PCI Hot-plug controller",
        (0x08, 0x05) => "SD Host controller",
        (0x08, 0x06) => "IOMMU",
        (0x08, 0x80) => "System peripheral",
        (0x09, 0x00) => "Keyboard controller",
        (0x09, 0x01) => "Digitizer Pen",
        (0x09, 0x02) => "Mouse controller",
        (0x09, 0x03) => "Scanner controller",
        (0x09, 0x04) => "Gameport controller",
        (0x0a, 0x00) => "Generic Docking Station",
        (0x0b, 0x00) => "386",
        (0x0b, 0x01) => "486",
        (0x0b, 0x02) => "Pentium",
        (0x0b, 0x40) => "Co-processor",
        (0x0c, 0x00) => "FireWire (IEEE 1394)",
        (0x0c, 0x01) => "ACCESS Bus",
        (0x0c, 0x02) => "SSA",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x04) => "Fibre Channel",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x06) => "InfiniBand",
        (0x0c, 0x07) => "IPMI Interface",
        (0x0c, 0x08) => "SERCOS interface",
        (0x0c, 0x09) => "CANBUS",
        (0x0d, 0x00) => "IRDA controller",
        (0x0d, 0x01) => "Consumer IR controller",
        (0x0d, 0x10) => "RF controller",
        (0x0d, 0x11) => "Bluetooth",
        (0x0d, 0x12) => "Broadband",
        (0x0e, 0x00) => "I2O",
        (0x10, 0x00) => "Network and computing encryption device",
        (0x10, 0x10) => "Entertainment encryption device",
        (0x11, 0x00) => "DPIO module",
        (0x11, 0x01) => "Performance counters",
        (0x11, 0x10) => "Communication synchronizer",
        (0x11, 0x20) => "Signal processing management",
        _ => return class_name(class),
    };
    Some(s)
}

/// Programming-interface names worth showing (the ones drivers dispatch on).
pub fn prog_if_name(class: u8, subclass: u8, prog_if: u8) -> Option<&'static str> {
    Some(match (class, subclass, prog_if) {
        (0x01, 0x06, 0x01) => "AHCI 1.0",
        (0x01, 0x08, 0x02) => "NVM Express",
        (0x0c, 0x03, 0x00) => "UHCI",
        (0x0c, 0x03, 0x10) => "OHCI",
        (0x0c, 0x03, 0x20) => "EHCI",
        (0x0c, 0x03, 0x30) => "XHCI",
        (0x03, 0x00, 0x00) => "VGA controller",
        (0x06, 0x04, 0x01) => "Subtractive decode",
        (0x07, 0x00, 0x02) => "16550",
        _ => return None,
    })
}

pub fn vendor_name(vendor: u16) -> Option<&'static str> {
    Some(match vendor {
        0x8086 => "Intel Corporation",
        0x1af4 | 0x1b36 => "Red Hat, Inc.",
        0x1234 => "QEMU/Bochs",
        0x10de => "NVIDIA Corporation",
        0x1002 => "Advanced Micro Devices, Inc. [AMD/ATI]",
        0x1022 => "Advanced Micro Devices, Inc. [AMD]",
        0x10ec => "Realtek Semiconductor Co., Ltd.",
        0x15ad => "VMware",
        0x80ee => "InnoTek Systemberatung GmbH",
        0x1013 => "Cirrus Logic",
        0x1274 => "Ensoniq",
        _ => return None,
    })
}

/// Virtio device types (virtio spec 5.x), by virtio device ID.
fn virtio_type(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "network",
        2 => "block",
        3 => "console",
        4 => "RNG",
        5 => "memory balloon",
        8 => "SCSI",
        9 => "9P transport",
        16 => "GPU",
        18 => "input",
        19 => "socket",
        25 => "sound",
        26 => "file system",
        _ => return None,
    })
}

/// Device names for the parts QEMU's q35 and i440fx machines and its common `-device`s use.
pub fn device_name(vendor: u16, device: u16) -> Option<&'static str> {
    Some(match (vendor, device) {
        // Intel q35 / ICH9
        (0x8086, 0x29c0) => "82G33/G31/P35/P31 Express DRAM Controller",
        (0x8086, 0x2918) => "82801IB (ICH9) LPC Interface Controller",
        (0x8086, 0x2922) => "82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]",
        (0x8086, 0x2930) => "82801I (ICH9 Family) SMBus Controller",
        (0x8086, 0x293e) => "82801I (ICH9 Family) HD Audio Controller",
        (0x8086, 0x2934) => "82801I (ICH9 Family) USB UHCI Controller #1",
        (0x8086, 0x2935) => "82801I (ICH9 Family) USB UHCI Controller #2",
        (0x8086, 0x2936) => "82801I (ICH9 Family) USB UHCI Controller #3",
        (0x8086, 0x2937) => "82801I (ICH9 Family) USB UHCI Controller #4",
        (0x8086, 0x2938) => "82801I (ICH9 Family) USB UHCI Controller #5",
        (0x8086, 0x2939) => "82801I (ICH9 Family) USB UHCI Controller #6",
        (0x8086, 0x293a) => "82801I (ICH9 Family) USB2 EHCI Controller #1",
        (0x8086, 0x293c) => "82801I (ICH9 Family) USB2 EHCI Controller #2",
        (0x8086, 0x244e) => "82801 PCI Bridge",
        (0x8086, 0x3420) => "7500/5520/5500/X58 I/O Hub PCI Express Root Port 0",
        // Intel i440fx / PIIX
        (0x8086, 0x1237) => "440FX - 82441FX PMC [Natoma]",
        (0x8086, 0x7000) => "82371SB PIIX3 ISA [Natoma/Triton II]",
        (0x8086, 0x7010) => "82371SB PIIX3 IDE [Natoma/Triton II]",
        (0x8086, 0x7020) => "82371SB PIIX3 USB [Natoma/Triton II]",
        (0x8086, 0x7111) => "82371AB/EB/MB PIIX4 IDE",
        (0x8086, 0x7113) => "82371AB/EB/MB PIIX4 ACPI",
        // Intel NICs, audio, misc. QEMU models
        (0x8086, 0x100e) => "82540EM Gigabit Ethernet Controller",
        (0x8086, 0x10d3) => "82574L Gigabit Network Connection",
        (0x8086, 0x2668) => "82801FB/FBM/FR/FW/FRW (ICH6 Family) High Definition Audio Controller",
        (0x8086, 0x24cd) => "82801DB/DBM (ICH4/ICH4-M) USB2 EHCI Controller",
        (0x8086, 0x25ab) => "6300ESB Watchdog Timer",
        (0x8086, 0x5845) => "QEMU NVM Express Controller",
        // Red Hat virtio, transitional (0x1000..0x103f) and modern (0x1040 + type)
        (0x1af4, 0x1000) => "Virtio network device",
        (0x1af4, 0x1001) => "Virtio block device",
        (0x1af4, 0x1002) => "Virtio memory balloon",
        (0x1af4, 0x1003) => "Virtio console",
        (0x1af4, 0x1004) => "Virtio SCSI",
        (0x1af4, 0x1005) => "Virtio RNG",
        (0x1af4, 0x1009) => "Virtio filesystem",
        (0x1af4, 0x1041) => "Virtio 1.0 network device",
        (0x1af4, 0x1042) => "Virtio 1.0 block device",
        (0x1af4, 0x1043) => "Virtio 1.0 console",
        (0x1af4, 0x1044) => "Virtio 1.0 RNG",
        (0x1af4, 0x1045) => "Virtio 1.0 balloon",
        (0x1af4, 0x1048) => "Virtio 1.0 SCSI",
        (0x1af4, 0x1049) => "Virtio 1.0 9P transport",
        (0x1af4, 0x1050) => "Virtio 1.0 GPU",
        (0x1af4, 0x1052) => "Virtio 1.0 input",
        (0x1af4, 0x1053) => "Virtio 1.0 socket",
        (0x1af4, 0x1059) => "Virtio 1.0 sound",
        (0x1af4, 0x105a) => "Virtio 1.0 file system",
        (0x1af4, 0x1000..=0x103f) => "Virtio device",
        (0x1af4, 0x1040..=0x107f) => "Virtio 1.0 device",
        (0x1af4, 0x1110) => "Inter-VM shared memory",
        // Red Hat QEMU devices
        (0x1b36, 0x0001) => "QEMU PCI-PCI bridge",
        (0x1b36, 0x0002) => "QEMU PCI 16550A Adapter",
        (0x1b36, 0x0003) => "QEMU PCI Dual-port 16550A Adapter",
        (0x1b36, 0x0004) => "QEMU PCI Quad-port 16550A Adapter",
        (0x1b36, 0x0005) => "QEMU PCI Test Device",
        (0x1b36, 0x0008) => "QEMU PCIe Host bridge",
        (0x1b36, 0x0009) => "QEMU PCI Expander bridge",
        (0x1b36, 0x000b) => "QEMU PCIe Expander bridge",
        (0x1b36, 0x000c) => "QEMU PCIe Root port",
        (0x1b36, 0x000d) => "QEMU XHCI Host Controller",
        (0x1b36, 0x000e) => "QEMU PCIe-to-PCI bridge",
        (0x1b36, 0x0010) => "QEMU NVM Express Controller",
        (0x1b36, 0x0011) => "QEMU PVPanic device",
        (0x1b36, 0x0100) => "QXL paravirtual graphic card",
        // Bochs/QEMU display (std VGA, bochs-display)
        (0x1234, 0x1111) => "Bochs display (QEMU standard VGA)",
        _ => return None,
    })
}

/// The virtio device type behind a Red Hat virtio PCI ID (transitional or modern).
pub fn virtio_device_type(vendor: u16, device: u16) -> Option<&'static str> {
    if vendor != 0x1af4 {
        return None;
    }
    let id = match device {
        0x1000 => 1,
        0x1001 => 2,
        0x1002 => 5,
        0x1003 => 3,
        0x1004 => 8,
        0x1005 => 4,
        0x1009 => 9,
        0x1040..=0x107f => device - 0x1040,
        _ => return None,
    };
    virtio_type(id)
}

/// Short names of capability IDs, for the verbose listing.
pub fn capability_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0x01 => "PM",
        0x02 => "AGP",
        0x03 => "VPD",
        0x04 => "SlotID",
        0x05 => "MSI",
        0x06 => "HotSwap",
        0x07 => "PCI-X",
        0x08 => "HT",
        0x09 => "Vendor",
        0x0a => "Debug",
        0x0c => "HotPlug",
        0x0d => "SSVID",
        0x10 => "PCIe",
        0x11 => "MSI-X",
        0x12 => "SATA",
        0x13 => "AF",
        _ => return None,
    })
}
