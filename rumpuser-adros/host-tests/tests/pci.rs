//! The device components (pci, pci_usbhc, our pci_xhci, usb, umass, scsipi, pci_if_wm,
//! miiphy, audio, pci_hdaudio, hdaudio_hdafg) link against rumpuser-adros's `rumpcomp_pci_*`
//! and initialise: on the std host (no PCI) the bus attaches with no devices, and the I/O space
//! error is our ENOSYS in NetBSD numbering.

use rump_host_tests::*;

#[test]
fn pci_bus_attaches_on_our_hypercalls() {
    require_rump!();
    let host = &rumpuser_adros::std_host::STD_HOST;
    host.set_param("RUMP_VERBOSE", "1");
    host.capture_console(true);
    let rv = init();
    let boot = String::from_utf8_lossy(&host.capture_console(false)).into_owned();
    rv.expect("rump_init");
    assert!(boot.contains("NetBSD 7.99"), "boot banner:\n{boot}");
    assert!(
        boot.contains("pci0 at mainbus0 bus 0"),
        "PCI bus did not attach:\n{boot}"
    );
    assert!(
        boot.contains("I/O space init error 78"),
        "iospace_init should report ENOSYS (78):\n{boot}"
    );
}
