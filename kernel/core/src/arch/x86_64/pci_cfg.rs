//! PCI configuration mechanism #1: the 0xCF8 address and 0xCFC data ports every PC chipset
//! decodes (q35, i440fx). The caller serialises an address write and its data access.

use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Reads the dword at `addr` (enable bit, bus, device, function, register).
pub fn read(addr: u32) -> u32 {
    // SAFETY: writing an address to 0xCF8 and reading 0xCFC is a configuration read; it
    // touches no memory the program uses.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(addr);
        Port::<u32>::new(CONFIG_DATA).read()
    }
}

/// Writes `value` to the dword at `addr`.
pub fn write(addr: u32, value: u32) {
    // SAFETY: a configuration write reaches only the device's configuration space, which is
    // what the caller asked for.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(addr);
        Port::<u32>::new(CONFIG_DATA).write(value);
    }
}
