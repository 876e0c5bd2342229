//! s03: attached storage shows up in the boot PCI listing: a virtio-blk disk (1af4:1001)
//! and a qemu-xhci controller (1b36:000d) carrying a usb-storage disk.

use adros_tests::{Boot, banner, scratch_disk, skip};

#[test]
fn virtio_and_xhci_in_pci_listing() {
    let name = "s03_devices-virtio_and_xhci_in_pci_listing";
    let t = Boot::new(name)
        .disk(scratch_disk("s03-virtio", 16))
        .usb_disk(scratch_disk("s03-usb", 16))
        .until_banner()
        .run();
    t.expect_banner();
    let pci = banner::pci_lines(t.serial());
    if pci.is_empty() {
        skip(
            name,
            "the banner lists no PCI devices yet (PCI enumeration has not landed)",
        );
        return;
    }
    for (id, what) in [
        ("1af4:1001", "virtio-blk disk"),
        ("1b36:000d", "qemu-xhci controller"),
    ] {
        if !pci.iter().any(|l| l.contains(id)) {
            t.fail(&format!("the PCI listing lacks the {what} ({id})"));
        }
    }
}
