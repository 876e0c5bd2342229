//! The machine description of device-tree platforms (aarch64 on QEMU `virt` today): RAM, the
//! console UART, the interrupt controller, the timer's interrupt, the CPUs, PSCI and the
//! command line, read from a flattened device tree with the `fdt` crate.
//!
//! Plain logic on a byte slice, no heap (it runs before the frame allocator exists), tested
//! on the host against QEMU's own `virt` tree and trees with nodes taken out. Whatever is
//! missing or malformed is an [`Error`] naming it; the boot path prints it and stops.

use fdt::Fdt;
use fdt::node::FdtNode;

use crate::bootinfo::{MemRegion, RegionKind};

/// How many RAM ranges and CPUs are kept (QEMU `virt` has one range and up to 512 CPUs;
/// the scheduler's per-CPU table holds 256).
pub const MAX_REGIONS: usize = 16;
pub const MAX_CPUS: usize = 256;
/// How many `virtio,mmio` nodes are kept (QEMU `virt` has 32).
pub const MAX_VIRTIO_MMIO: usize = 64;
/// The virtio-mmio register header's size (version 2: 0x100 bytes before the device's
/// configuration space).
pub const VIRTIO_MMIO_HEADER: u64 = 0x100;

/// The flattened device tree's magic number (big-endian at offset 0).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// What is wrong with a device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a flattened device tree (bad magic, truncated header or blob).
    NotADeviceTree(&'static str),
    /// No node with `device_type = "memory"`, or none with a usable `reg`.
    NoMemory,
    /// No `arm,pl011` UART with a `reg`.
    NoUart,
    /// No `arm,gic-v3` interrupt controller with distributor and redistributor ranges.
    NoGicV3,
    /// No `arm,armv8-timer` node with its four interrupts.
    NoTimer,
    /// No CPU node under `/cpus`.
    NoCpus,
    /// A node's `reg` or `interrupts` property has the wrong shape.
    Malformed(&'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotADeviceTree(why) => write!(f, "not a flattened device tree ({why})"),
            Error::NoMemory => write!(
                f,
                "no memory node (device_type = \"memory\" with a reg property)"
            ),
            Error::NoUart => write!(f, "no PL011 UART (compatible \"arm,pl011\" with a reg)"),
            Error::NoGicV3 => write!(
                f,
                "no GICv3 (compatible \"arm,gic-v3\" with distributor and redistributor ranges)"
            ),
            Error::NoTimer => write!(
                f,
                "no generic timer (compatible \"arm,armv8-timer\" with four interrupts)"
            ),
            Error::NoCpus => write!(f, "no cpu node under /cpus"),
            Error::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

/// How PSCI calls reach the firmware (or the hypervisor, QEMU's own PSCI without EL2/EL3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Hvc,
    Smc,
}

/// The GICv3's register frames (physical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GicV3 {
    pub dist: u64,
    pub dist_size: u64,
    pub redist: u64,
    pub redist_size: u64,
}

/// A device's interrupt as a GIC interrupt ID (SPI n is 32 + n, PPI n is 16 + n) and its
/// trigger (the third `interrupts` cell: 1 and 2 are edges, 4 and 8 levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub intid: u32,
    pub edge: bool,
}

/// A `virtio,mmio` transport's register window and interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    pub base: u64,
    pub size: u64,
    pub irq: Irq,
}

/// One `virtio,mmio` node: its name, and the device or why it cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioSlot<'a> {
    pub node: &'a str,
    pub dev: Result<VirtioMmio, &'static str>,
}

/// What the kernel needs from the device tree.
#[derive(Clone, Debug)]
pub struct Machine<'a> {
    pub regions: [MemRegion; MAX_REGIONS],
    pub nregions: usize,
    /// The PL011's register frame (physical base, size).
    pub uart: (u64, u64),
    /// The PL011's interrupt, or why it is unusable (then there is no console input).
    pub uart_irq: Result<Irq, &'static str>,
    /// The PL031 real-time clock's register frame (`arm,pl031`), if there is one.
    pub rtc: Option<(u64, u64)>,
    pub gic: GicV3,
    /// The EL1 virtual timer's interrupt ID (a PPI: 16 + its number).
    pub timer_intid: u32,
    /// Each CPU's MPIDR affinity value (`reg` of the `/cpus/cpu@N` nodes), in tree order.
    pub cpus: [u64; MAX_CPUS],
    pub ncpus: usize,
    pub psci: Option<PsciConduit>,
    /// `/chosen/bootargs` (QEMU's `-append`), empty without one.
    pub bootargs: &'a str,
    /// `/chosen/linux,initrd-start` .. `linux,initrd-end`, physical.
    pub initrd: Option<(u64, u64)>,
    /// The blob's own size (`totalsize`), to keep its memory reserved.
    pub total_size: usize,
    /// The `virtio,mmio` nodes in tree order (QEMU `virt` lists its 32 from the top down).
    pub virtio: [VirtioSlot<'a>; MAX_VIRTIO_MMIO],
    pub nvirtio: usize,
}

impl Machine<'_> {
    pub fn regions(&self) -> &[MemRegion] {
        &self.regions[..self.nregions]
    }

    pub fn cpus(&self) -> &[u64] {
        &self.cpus[..self.ncpus]
    }

    pub fn virtio_mmio(&self) -> &[VirtioSlot<'_>] {
        &self.virtio[..self.nvirtio]
    }

    /// Bytes of RAM the memory nodes describe.
    pub fn memory_bytes(&self) -> u64 {
        self.regions().iter().map(|r| r.end - r.start).sum()
    }
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// A number of `cells` 32-bit big-endian cells (1 or 2) at the front of `b`.
fn cells(b: &[u8], cells: usize) -> Option<u64> {
    match cells {
        1 => be_u32(b).map(u64::from),
        2 => Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?)),
        _ => None,
    }
}

/// The blob's `totalsize` if `header` starts a flattened device tree.
pub fn blob_size(header: &[u8]) -> Option<usize> {
    if be_u32(header)? != FDT_MAGIC {
        return None;
    }
    usize::try_from(be_u32(header.get(4..)?)?).ok()
}

/// `(start, size)` pairs of a node's `reg`, decoded with its parent's cell sizes.
fn regs<'b>(node: FdtNode<'b, '_>) -> impl Iterator<Item = (u64, u64)> + 'b {
    node.reg().into_iter().flatten().map(|r| {
        (
            r.starting_address as usize as u64,
            r.size.unwrap_or(0) as u64,
        )
    })
}

/// The first node named `name` (or `name@unit`) anywhere in the tree. Lookups go through
/// `all_nodes`, never `find_node`: fdt 0.1.5's path walk gives up on the FDT_NOP tokens
/// QEMU leaves in a tree it edited (a `-dtb` file gets its memory node and `/chosen`
/// rewritten), and then finds no `/cpus` at all.
fn named<'b, 'a>(fdt: &'b Fdt<'a>, name: &str) -> Option<FdtNode<'b, 'a>> {
    fdt.all_nodes()
        .find(|n| n.name.split('@').next() == Some(name))
}

/// The first interrupt of a node's `interrupts` (three GIC cells: type 0 = SPI, 1 = PPI;
/// number; flags), or what is wrong with it.
fn first_irq(node: FdtNode<'_, '_>) -> Result<Irq, &'static str> {
    let v = node
        .property("interrupts")
        .ok_or("no interrupts property")?
        .value;
    if v.len() < 12 || v.len() % 12 != 0 {
        return Err("interrupts is not a list of three-cell GIC specifiers");
    }
    let cell = |i: usize| {
        v.get(4 * i..)
            .and_then(be_u32)
            .ok_or("interrupts truncated")
    };
    let (kind, num, flags) = (cell(0)?, cell(1)?, cell(2)?);
    let intid = match kind {
        0 if num < 988 => 32 + num,
        1 if num < 16 => 16 + num,
        0 | 1 => return Err("interrupt number out of range"),
        _ => return Err("interrupt type is neither SPI (0) nor PPI (1)"),
    };
    let edge = match flags & 0xf {
        1 | 2 => true,
        4 | 8 => false,
        _ => return Err("interrupt trigger flags are not one edge or level"),
    };
    Ok(Irq { intid, edge })
}

/// A `virtio,mmio` node's register window and interrupt, or what is wrong with them.
fn virtio_mmio(node: FdtNode<'_, '_>) -> Result<VirtioMmio, &'static str> {
    if node.property("reg").is_none() {
        return Err("no reg property");
    }
    let (base, size) = regs(node).next().ok_or("reg holds no range")?;
    if size < VIRTIO_MMIO_HEADER {
        return Err("reg is smaller than the virtio-mmio header (0x100 bytes)");
    }
    if base.checked_add(size).is_none() || base % 4 != 0 {
        return Err("reg range wraps or is misaligned");
    }
    Ok(VirtioMmio {
        base,
        size,
        irq: first_irq(node)?,
    })
}

fn compatible_with(fdt: &Fdt<'_>, name: &str) -> Option<(u64, u64)> {
    let node = fdt.find_compatible(&[name])?;
    regs(node).next()
}

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Checks the header and the whole structure block before the `fdt` crate reads them.
/// fdt 0.1.5 slices and unwraps what the header and tokens say — a block past the blob's
/// end, a string offset past the strings block, a name without its NUL or not UTF-8, an
/// END_NODE without its BEGIN_NODE — and panics on a corrupt tree (more than half of
/// randomly damaged trees did on the host). After this pass every offset, name and
/// property it follows is in bounds and well formed (`corrupt_trees_never_panic`).
fn validate(blob: &[u8]) -> Result<(), Error> {
    const TRUNC: Error = Error::NotADeviceTree("truncated");
    let word = |b: &[u8], at: usize| be_u32(b.get(at..)?);
    let h = |i: usize| word(blob, 4 * i).map(|v| v as usize).ok_or(TRUNC);
    if h(0)? != FDT_MAGIC as usize {
        return Err(Error::NotADeviceTree("bad magic"));
    }
    let total = h(1)?;
    if total > blob.len() || total < 40 {
        return Err(TRUNC);
    }
    if h(5)? < 17 {
        return Err(Error::NotADeviceTree("version older than 17"));
    }
    let block = |off: usize, size: usize| {
        off.checked_add(size)
            .filter(|&end| end <= total)
            .and_then(|end| blob.get(off..end))
            .ok_or(Error::Malformed("header (a block lies outside the tree)"))
    };
    let (off_struct, off_strings) = (h(2)?, h(3)?);
    let strings = block(off_strings, h(8)?)?;
    let st = block(off_struct, h(9)?)?;
    if off_struct % 4 != 0 {
        return Err(Error::Malformed("header (structure block not aligned)"));
    }
    let name_at = |b: &[u8], at: usize| -> Option<usize> {
        let rest = b.get(at..)?;
        let len = rest.iter().position(|&c| c == 0)?;
        core::str::from_utf8(&rest[..len]).ok()?;
        Some(len)
    };
    let (mut pos, mut depth) = (0usize, 0usize);
    loop {
        let tok = word(st, pos).ok_or(Error::Malformed("structure block (no FDT_END)"))?;
        pos += 4;
        match tok {
            FDT_BEGIN_NODE => {
                let len = name_at(st, pos)
                    .ok_or(Error::Malformed("node name (unterminated or not UTF-8)"))?;
                pos += (len + 1).next_multiple_of(4);
                depth += 1;
            }
            FDT_END_NODE => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(Error::Malformed("structure block (unbalanced node end)"))?;
            }
            FDT_PROP => {
                let len = word(st, pos).ok_or(Error::Malformed("property (truncated)"))? as usize;
                let nameoff =
                    word(st, pos + 4).ok_or(Error::Malformed("property (truncated)"))? as usize;
                pos += 8;
                if depth == 0 || pos.checked_add(len).is_none_or(|end| end > st.len()) {
                    return Err(Error::Malformed(
                        "property (outside a node or past the block)",
                    ));
                }
                name_at(strings, nameoff).ok_or(Error::Malformed(
                    "property name (outside the strings block)",
                ))?;
                pos += len.next_multiple_of(4);
            }
            FDT_NOP => {}
            FDT_END if depth == 0 => return Ok(()),
            _ => return Err(Error::Malformed("structure block (bad token or nesting)")),
        }
    }
}

/// Reads the machine from a flattened device tree.
pub fn parse(blob: &[u8]) -> Result<Machine<'_>, Error> {
    validate(blob)?;
    let fdt = Fdt::new(blob).map_err(|e| {
        Error::NotADeviceTree(match e {
            fdt::FdtError::BadMagic => "bad magic",
            fdt::FdtError::BufferTooSmall => "truncated",
            _ => "unreadable header",
        })
    })?;
    let mut m = Machine {
        regions: [MemRegion {
            start: 0,
            end: 0,
            kind: RegionKind::Reserved,
        }; MAX_REGIONS],
        nregions: 0,
        uart: (0, 0),
        uart_irq: Err("not read"),
        rtc: None,
        gic: GicV3 {
            dist: 0,
            dist_size: 0,
            redist: 0,
            redist_size: 0,
        },
        timer_intid: 0,
        cpus: [0; MAX_CPUS],
        ncpus: 0,
        psci: None,
        bootargs: "",
        initrd: None,
        total_size: fdt.total_size(),
        virtio: [VirtioSlot {
            node: "",
            dev: Err("none"),
        }; MAX_VIRTIO_MMIO],
        nvirtio: 0,
    };

    // RAM: every node whose device_type is "memory".
    for node in fdt.all_nodes() {
        let is_memory = node
            .property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "memory");
        if !is_memory {
            continue;
        }
        for (start, size) in regs(node) {
            if size == 0 {
                continue;
            }
            let Some(end) = start.checked_add(size) else {
                return Err(Error::Malformed("memory reg (range wraps)"));
            };
            if let Some(slot) = m.regions.get_mut(m.nregions) {
                *slot = MemRegion {
                    start,
                    end,
                    kind: RegionKind::Usable,
                };
                m.nregions += 1;
            }
        }
    }
    if m.nregions == 0 {
        return Err(Error::NoMemory);
    }

    m.uart = compatible_with(&fdt, "arm,pl011").ok_or(Error::NoUart)?;
    m.uart_irq = fdt
        .find_compatible(&["arm,pl011"])
        .ok_or("no PL011 node")
        .and_then(first_irq);

    m.rtc = compatible_with(&fdt, "arm,pl031").filter(|&(_, size)| size >= 0x20);

    // virtio-mmio transports: a malformed node is kept with its reason (the kernel logs it
    // and skips the device); the boot goes on.
    for node in fdt.all_nodes() {
        let is_virtio = node
            .compatible()
            .is_some_and(|c| c.all().any(|c| c == "virtio,mmio"));
        if !is_virtio {
            continue;
        }
        if let Some(slot) = m.virtio.get_mut(m.nvirtio) {
            *slot = VirtioSlot {
                node: node.name,
                dev: virtio_mmio(node),
            };
            m.nvirtio += 1;
        }
    }

    let gic = fdt.find_compatible(&["arm,gic-v3"]).ok_or(Error::NoGicV3)?;
    let mut r = regs(gic);
    let (dist, dist_size) = r.next().ok_or(Error::NoGicV3)?;
    let (redist, redist_size) = r.next().ok_or(Error::NoGicV3)?;
    m.gic = GicV3 {
        dist,
        dist_size,
        redist,
        redist_size,
    };

    // The timer's interrupts: secure physical, non-secure physical, virtual, hypervisor;
    // each three GIC cells (type: 1 = PPI, number, flags).
    let timer = fdt
        .find_compatible(&["arm,armv8-timer"])
        .ok_or(Error::NoTimer)?;
    let irqs = timer.property("interrupts").ok_or(Error::NoTimer)?.value;
    if irqs.len() < 36 || irqs.len() % 12 != 0 {
        return Err(Error::Malformed("timer interrupts (want 4 x 3 cells)"));
    }
    let virt = irqs.get(24..36).ok_or(Error::NoTimer)?;
    let (kind, num) = (
        be_u32(virt).ok_or(Error::NoTimer)?,
        be_u32(&virt[4..]).ok_or(Error::NoTimer)?,
    );
    if kind != 1 || num > 15 {
        return Err(Error::Malformed("virtual timer interrupt (not a PPI)"));
    }
    m.timer_intid = 16 + num;

    // CPUs: /cpus/cpu@N, reg = MPIDR affinity, with /cpus' #address-cells.
    let cpus = named(&fdt, "cpus").ok_or(Error::NoCpus)?;
    let acells = cpus
        .property("#address-cells")
        .and_then(|p| be_u32(p.value))
        .unwrap_or(1) as usize;
    for c in fdt.all_nodes() {
        let is_cpu = c
            .property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "cpu");
        if !is_cpu {
            continue;
        }
        let reg = c
            .property("reg")
            .and_then(|p| cells(p.value, acells))
            .ok_or(Error::Malformed("cpu reg"))?;
        if let Some(slot) = m.cpus.get_mut(m.ncpus) {
            *slot = reg;
            m.ncpus += 1;
        }
    }
    if m.ncpus == 0 {
        return Err(Error::NoCpus);
    }

    m.psci = named(&fdt, "psci")
        .and_then(|p| p.property("method"))
        .and_then(|p| p.as_str())
        .and_then(|s| match s {
            "hvc" => Some(PsciConduit::Hvc),
            "smc" => Some(PsciConduit::Smc),
            _ => None,
        });

    if let Some(chosen) = named(&fdt, "chosen") {
        m.bootargs = chosen
            .property("bootargs")
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let at = |name| {
            chosen
                .property(name)
                .and_then(|p| cells(p.value, p.value.len() / 4))
        };
        if let (Some(s), Some(e)) = (at("linux,initrd-start"), at("linux,initrd-end")) {
            if e < s {
                return Err(Error::Malformed("initrd range (end before start)"));
            }
            m.initrd = Some((s, e));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2's `virt,gic-version=3 -cpu cortex-a72 -smp 2 -m 512M` tree (dumped with
    /// `dumpdtb=`, then compacted with `dtc -I dtb -O dtb`).
    const VIRT: &[u8] = include_bytes!("testdata/virt-gicv3-2cpu-512m.dtb");
    /// The same with the memory node deleted (`dtc` after `/delete-node/ memory@40000000`).
    const NO_MEMORY: &[u8] = include_bytes!("testdata/virt-no-memory.dtb");
    /// The same with the PL011 deleted.
    const NO_UART: &[u8] = include_bytes!("testdata/virt-no-uart.dtb");
    /// The same with damaged device nodes (see `malformed_device_nodes_are_named_not_fatal`;
    /// made with `dtc` from the decompiled tree).
    const BAD_DEVICES: &[u8] = include_bytes!("testdata/virt-bad-devices.dtb");

    #[test]
    fn reads_qemu_virt() {
        let m = parse(VIRT).unwrap();
        assert_eq!(m.regions().len(), 1);
        assert_eq!(m.regions()[0].start, 0x4000_0000);
        assert_eq!(m.memory_bytes(), 512 << 20);
        assert_eq!(m.uart, (0x0900_0000, 0x1000));
        assert_eq!(m.gic.dist, 0x0800_0000);
        assert_eq!(m.gic.redist, 0x080a_0000);
        assert_eq!(m.timer_intid, 27);
        assert_eq!(m.cpus(), &[0, 1]);
        assert_eq!(m.psci, Some(PsciConduit::Hvc));
        assert_eq!(blob_size(VIRT), Some(VIRT.len()));
        // PL011: SPI 1, level high.
        assert_eq!(
            m.uart_irq,
            Ok(Irq {
                intid: 33,
                edge: false
            })
        );
        // 32 virtio-mmio transports of 0x200 bytes from 0x0a000000, SPIs 16..47, edge.
        assert_eq!(m.rtc, Some((0x0901_0000, 0x1000)));
        assert_eq!(m.virtio_mmio().len(), 32);
        let mut devs: Vec<VirtioMmio> = m.virtio_mmio().iter().map(|s| s.dev.unwrap()).collect();
        devs.sort_by_key(|d| d.base);
        assert_eq!(devs[0].base, 0x0a00_0000);
        assert_eq!(devs[0].size, 0x200);
        assert_eq!(
            devs[0].irq,
            Irq {
                intid: 48,
                edge: true
            }
        );
        assert_eq!(devs[31].base, 0x0a00_3e00);
        assert_eq!(devs[31].irq.intid, 79);
    }

    /// The same tree with one virtio-mmio node's `interrupts` truncated, another's `reg`
    /// deleted, a third's window too small, a fourth's pointing at the PL031, and the
    /// PL011's `interrupts` given a bad type: the nodes are kept with the reason, the rest
    /// of the machine is read as before.
    #[test]
    fn malformed_device_nodes_are_named_not_fatal() {
        let m = parse(BAD_DEVICES).unwrap();
        assert_eq!(m.uart, (0x0900_0000, 0x1000));
        assert_eq!(
            m.uart_irq,
            Err("interrupt type is neither SPI (0) nor PPI (1)")
        );
        let by_name = |n: &str| m.virtio_mmio().iter().find(|s| s.node == n).unwrap().dev;
        assert_eq!(by_name("virtio_mmio@a000000"), Err("no reg property"));
        assert_eq!(
            by_name("virtio_mmio@a000200"),
            Err("interrupts is not a list of three-cell GIC specifiers")
        );
        assert_eq!(
            by_name("virtio_mmio@a000400"),
            Err("reg is smaller than the virtio-mmio header (0x100 bytes)")
        );
        // Well formed, but its window is the PL031's: the kernel finds no virtio magic
        // there (s22).
        assert_eq!(
            by_name("virtio_mmio@a000600").map(|d| (d.base, d.size)),
            Ok((0x0901_0000, 0x1000))
        );
        assert_eq!(m.cpus(), &[0, 1]);
    }

    #[test]
    fn missing_nodes_are_named() {
        assert_eq!(parse(NO_MEMORY).unwrap_err(), Error::NoMemory);
        assert_eq!(parse(NO_UART).unwrap_err(), Error::NoUart);
        assert!(
            parse(NO_MEMORY)
                .unwrap_err()
                .to_string()
                .contains("no memory node")
        );
    }

    /// What QEMU passed the guest for `-dtb virt-no-memory.dtb` (saved from guest memory
    /// with `pmemsave`): QEMU added a memory node back and left FDT_NOP tokens behind.
    #[test]
    fn reads_a_tree_qemu_edited() {
        let b = include_bytes!("testdata/qemu-final-from-no-memory.dtb");
        let m = parse(b).unwrap();
        assert_eq!(m.cpus(), &[0, 1]);
        assert_eq!(m.memory_bytes(), 512 << 20);
        assert_eq!(m.psci, Some(PsciConduit::Hvc));
    }

    /// Damaged copies of QEMU's tree (four random bytes changed in each, a fixed seed):
    /// every one parses or is refused with an error, none panics.
    #[test]
    fn corrupt_trees_never_panic() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 17
        };
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut b = VIRT.to_vec();
            for _ in 0..4 {
                let i = next() as usize % b.len();
                b[i] = next() as u8;
            }
            match std::panic::catch_unwind(|| parse(&b).map(|m| m.ncpus)) {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("parse panicked on a damaged tree"),
            }
        }
        assert!(ok > 0 && refused > 0, "{ok} parsed, {refused} refused");
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert!(matches!(
            parse(b"not a device tree at all"),
            Err(Error::NotADeviceTree(_))
        ));
        assert!(matches!(
            parse(&VIRT[..VIRT.len() / 2]),
            Err(Error::NotADeviceTree("truncated"))
        ));
        assert_eq!(blob_size(b"\0\0\0\0\0\0\0\0"), None);
    }
}
