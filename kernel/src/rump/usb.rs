//! USB mass storage through NetBSD's USB stack in the rump kernel, bridged to AdrOS block
//! devices.
//!
//! * `usb.driver=rump|native` on the command line (default: rump when the components are
//!   linked). Before `rump_init` every USB host controller (EHCI, xHCI, and UHCI/OHCI
//!   companions) is given to the rump kernel ([`assign`]); NetBSD's `pci` → `ehci`/`xhci`
//!   → `usb` → `umass` → `scsibus` → `sd` attach to it. With `usb.driver=native` the
//!   controllers are left to the native stack (`kernel/src/usb`).
//! * Discovery is asynchronous (NetBSD's USB event thread explores the ports after
//!   `rump_init` returns, scsibus attaches `sd` from threads of its own). A discovery thread
//!   looks for `sd0`…`sd7` by opening their raw whole-disk devices (`/dev/rsdNd`) — quickly
//!   while the first disks can still be coming, then every few seconds — and registers each
//!   disk it finds as `/dev/sda`, `/dev/sdb`… (major 8, like Linux), with `/dev/sda1`…
//!   from the block layer's MBR/GPT code. `/proc/drivers` lists them.
//! * Hot-plug: NetBSD's uhub notices a stick pulled out and detaches umass → scsibus → sd
//!   itself, revoking the raw device's vnode; the disk's worker (on a failed request) and
//!   the discovery thread (once a second) ask the open descriptor for the disk's size, and
//!   when that fails the AdrOS disk answers EIO from then on, its `/dev/sdX` nodes and name
//!   are released, and the unit is looked for again (a new stick gets it).
//! * I/O goes through NetBSD's raw disk device (no second cache under AdrOS's): every disk has
//!   a worker thread with its own rump lwp (in the process that holds the descriptor), which
//!   does `pread`/`pwrite`/`DIOCCACHESYNC` for whoever asked — user threads, the native ext2
//!   driver, or the rump kernel's own bio threads when a rump file system sits on the disk
//!   (those threads already have an lwp in another rump process, where the descriptor does
//!   not exist).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::sys;
use crate::block::{self, BlockDev, SECTOR};
use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;

/// NetBSD units looked for (`sd0`…`sd7`).
const UNITS: u32 = 8;
/// NetBSD amd64: 16 partitions per disk, `d` (3) is the whole disk.
const MAXPARTITIONS: u64 = 16;
const RAW_PART: u64 = 3;

/// `usb.driver` as chosen on the command line, or the default.
pub fn driver() -> &'static str {
    match crate::boot::cmdline().param("usb.driver") {
        Some("native") => "native",
        Some("rump") => "rump",
        _ if super::LINKED => "rump",
        _ => "native",
    }
}

static CONTROLLERS: AtomicU64 = AtomicU64::new(0);

/// Gives every USB host controller to the rump kernel (called before `rump_init`).
pub fn assign() {
    let usb: Vec<_> = crate::pci::find_class(0x0c, 0x03).collect();
    if usb.is_empty() {
        return;
    }
    if driver() == "native" {
        log::info!(
            "usb: usb.driver=native: {} USB controller(s) left to the native stack (kernel/src/usb)",
            usb.len()
        );
        return;
    }
    for d in usb {
        let kind = match d.prog_if {
            0x00 => "usb uhci (NetBSD uhci)",
            0x10 => "usb ohci (NetBSD ohci)",
            0x20 => "usb ehci (NetBSD ehci)",
            0x30 => "usb xhci (NetBSD xhci)",
            _ => {
                log::warn!(
                    "usb: {}: unknown host controller interface {:#x}; not used",
                    adros_pci::slot_name(d.addr),
                    d.prog_if
                );
                continue;
            }
        };
        match super::pci::give(d, kind) {
            Ok(()) => {
                CONTROLLERS.fetch_add(1, Ordering::Relaxed);
            }
            Err(o) => log::warn!(
                "usb: {}: owned by the {} stack ({}); not given to rump",
                adros_pci::slot_name(d.addr),
                o.stack,
                o.driver
            ),
        }
    }
}

/// A NetBSD `sd` disk as an AdrOS block device.
pub struct RumpDisk {
    name: String,
    /// Its `/dev/sdX` index (given back when the stick is removed).
    index: u32,
    unit: u32,
    /// NetBSD detached the disk (the stick was pulled out): every request answers EIO.
    gone: AtomicBool,
    /// NetBSD's raw whole-disk device, open in the worker's rump process.
    fd: i32,
    sectors: u64,
    jobs: spin::Mutex<VecDeque<Arc<Job>>>,
    work: WaitQueue,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

enum Op {
    Read { lba: u64, len: usize },
    Write { lba: u64, data: Vec<u8> },
    Flush,
}

struct Job {
    op: spin::Mutex<Option<Op>>,
    result: spin::Mutex<Option<KResult<Vec<u8>>>>,
    done: AtomicBool,
    wq: WaitQueue,
}

static DISKS: spin::Mutex<Vec<Arc<RumpDisk>>> = spin::Mutex::new(Vec::new());

impl RumpDisk {
    fn submit(&self, op: Op) -> KResult<Vec<u8>> {
        if super::is_dead() || self.gone.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let job = Arc::new(Job {
            op: spin::Mutex::new(Some(op)),
            result: spin::Mutex::new(None),
            done: AtomicBool::new(false),
            wq: WaitQueue::new(),
        });
        self.jobs.lock().push_back(job.clone());
        self.work.wake_all();
        // A dead rump kernel never completes the job: look again every second.
        loop {
            let deadline = crate::time::now_ns() + 1_000_000_000;
            if job
                .wq
                .wait_until(|| job.done.load(Ordering::Acquire), Some(deadline))
            {
                break;
            }
            if super::is_dead() {
                log::error!(
                    "usb: /dev/{}: the rump kernel died under a request: EIO",
                    self.name
                );
                return Err(Errno::EIO);
            }
            if self.gone.load(Ordering::Acquire)
                && self.jobs.lock().iter().any(|j| Arc::ptr_eq(j, &job))
            {
                // Never picked up: the worker has stopped.
                return Err(Errno::EIO);
            }
        }
        job.result.lock().take().unwrap_or(Err(Errno::EIO))
    }

    fn fd_alive(&self) -> bool {
        Self::alive(self.fd)
    }

    /// Whether NetBSD still has the disk behind `fd` (a detached disk's vnode is revoked:
    /// every call on it fails).
    fn alive(fd: i32) -> bool {
        let mut size: i64 = 0;
        sys::ioctl(fd, sys::DIOCGMEDIASIZE, &mut size).is_ok()
    }

    fn worker(self: Arc<Self>, fd: i32) {
        loop {
            self.work.wait_until(
                || !self.jobs.lock().is_empty() || self.gone.load(Ordering::Acquire),
                None,
            );
            if self.gone.load(Ordering::Acquire) {
                // Detached: fail whatever is queued, give the descriptor back, stop.
                let pending: Vec<_> = self.jobs.lock().drain(..).collect();
                for job in pending {
                    *job.result.lock() = Some(Err(Errno::EIO));
                    job.done.store(true, Ordering::Release);
                    job.wq.wake_all();
                }
                let _ = sys::close(fd);
                return;
            }
            let Some(job) = self.jobs.lock().pop_front() else {
                continue;
            };
            let op = job.op.lock().take();
            let r = match op {
                Some(Op::Read { lba, len }) => {
                    let mut v = alloc::vec![0u8; len];
                    match sys::pread(fd, &mut v, lba * SECTOR) {
                        Ok(n) if n == len => {
                            self.reads.fetch_add(1, Ordering::Relaxed);
                            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            Ok(v)
                        }
                        Ok(n) => {
                            log::warn!(
                                "usb: /dev/{}: short read at sector {lba}: {n} of {len}",
                                self.name
                            );
                            Err(Errno::EIO)
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(Op::Write { lba, data }) => match sys::pwrite(fd, &data, lba * SECTOR) {
                    Ok(n) if n == data.len() => {
                        self.writes.fetch_add(1, Ordering::Relaxed);
                        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        Ok(Vec::new())
                    }
                    Ok(_) => Err(Errno::EIO),
                    Err(e) => Err(e),
                },
                Some(Op::Flush) => {
                    let mut force: i32 = 1;
                    sys::ioctl(fd, sys::DIOCCACHESYNC, &mut force).map(|_| Vec::new())
                }
                None => Err(Errno::EIO),
            };
            if let Err(e) = &r {
                self.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "usb: /dev/{} (NetBSD sd{}): I/O error {e:?}",
                    self.name,
                    self.unit
                );
                if !Self::alive(fd) && !self.gone.swap(true, Ordering::AcqRel) {
                    log::warn!(
                        "usb: /dev/{}: NetBSD sd{} is gone (detached under a request)",
                        self.name,
                        self.unit
                    );
                }
            }
            *job.result.lock() = Some(r);
            job.done.store(true, Ordering::Release);
            job.wq.wake_all();
        }
    }
}

impl BlockDev for RumpDisk {
    fn name(&self) -> &str {
        &self.name
    }
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> KResult<()> {
        if lba
            .checked_add(buf.len() as u64 / SECTOR)
            .is_none_or(|e| e > self.sectors)
        {
            return Err(Errno::EIO);
        }
        let v = self.submit(Op::Read {
            lba,
            len: buf.len(),
        })?;
        buf.copy_from_slice(&v);
        Ok(())
    }
    fn write_sectors(&self, lba: u64, buf: &[u8]) -> KResult<()> {
        if lba
            .checked_add(buf.len() as u64 / SECTOR)
            .is_none_or(|e| e > self.sectors)
        {
            return Err(Errno::EIO);
        }
        self.submit(Op::Write {
            lba,
            data: buf.to_vec(),
        })
        .map(drop)
    }
    fn flush(&self) -> KResult<()> {
        self.submit(Op::Flush).map(drop)
    }
    fn driver(&self) -> &'static str {
        "rump-usb"
    }
}

/// Opens NetBSD's `sdN` raw whole-disk device; `None` while it does not exist (yet).
fn open_unit(unit: u32, major: Option<u64>) -> Option<i32> {
    let path = alloc::format!("/dev/rsd{unit}d");
    if unit > 0 {
        // rump's scsipi component makes nodes for sd0 only.
        if let Some(maj) = major {
            let minor = u64::from(unit) * MAXPARTITIONS + RAW_PART;
            let dev = netbsd_makedev(maj, minor);
            let _ = sys::mknodat(sys::AT_FDCWD, &path, sys::NB_S_IFCHR | 0o600, dev);
        }
    }
    sys::openat(sys::AT_FDCWD, &path, sys::O_RDWR, 0).ok()
}

/// NetBSD's `makedev` (`sys/types.h`).
fn netbsd_makedev(major: u64, minor: u64) -> u64 {
    ((major << 8) & 0x000f_ff00) | ((minor << 12) & 0xfff0_0000) | (minor & 0x0000_00ff)
}

fn netbsd_major(dev: u64) -> u64 {
    (dev & 0x000f_ff00) >> 8
}

fn attach(unit: u32, fd: i32) -> bool {
    let mut size: i64 = 0;
    let mut ssize: u32 = 0;
    if let Err(e) = sys::ioctl(fd, sys::DIOCGMEDIASIZE, &mut size) {
        log::warn!("usb: NetBSD sd{unit}: cannot read its size ({e:?}); not used");
        let _ = sys::close(fd);
        return false;
    }
    let _ = sys::ioctl(fd, sys::DIOCGSECTORSIZE, &mut ssize);
    if ssize != 512 {
        log::warn!("usb: NetBSD sd{unit}: {ssize}-byte sectors are not supported; not used");
        let _ = sys::close(fd);
        return false;
    }
    let Some((index, name)) = block::next_sd_name() else {
        log::warn!("usb: NetBSD sd{unit}: no free /dev/sdX name");
        let _ = sys::close(fd);
        return false;
    };
    let disk = Arc::new(RumpDisk {
        name: name.clone(),
        index,
        unit,
        gone: AtomicBool::new(false),
        fd,
        sectors: size as u64 / SECTOR,
        jobs: spin::Mutex::new(VecDeque::new()),
        work: WaitQueue::new(),
        reads: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let w = disk.clone();
    crate::sched::thread::spawn("rump-usb-io", move || w.worker(fd));
    DISKS.lock().push(disk.clone());
    crate::println!(
        "usb: NetBSD sd{unit} is /dev/{name} ({} MiB, rump USB stack)",
        size >> 20
    );
    block::add_disk_major(block::SD_MAJOR, index, disk);
    true
}

/// NetBSD detached `unit` (NetBSD's uhub saw the stick go and detached umass, scsibus and
/// sd): its AdrOS disk answers EIO from now on (open files and mounts keep it), its
/// `/dev` nodes and name are released for the next stick, its worker closes the raw
/// device and stops.
fn detach(unit: u32) {
    let gone: Vec<Arc<RumpDisk>> = {
        let mut disks = DISKS.lock();
        let (gone, keep): (Vec<_>, Vec<_>) = disks.drain(..).partition(|d| d.unit == unit);
        *disks = keep;
        gone
    };
    for d in gone {
        d.gone.store(true, Ordering::Release);
        d.work.wake_all();
        block::remove_disk_major(block::SD_MAJOR, d.index);
        block::release_sd_name(d.index);
        crate::println!(
            "usb: NetBSD sd{unit} was detached (stick removed): /dev/{} is gone ({} reads, {} errors); open files and mounts on it get EIO",
            d.name,
            d.reads.load(Ordering::Relaxed),
            d.errors.load(Ordering::Relaxed)
        );
    }
}

/// Whether the disk of `unit` is still attached in NetBSD (asked on its open descriptor).
fn unit_alive(unit: u32) -> bool {
    let Some(d) = DISKS.lock().iter().find(|d| d.unit == unit).cloned() else {
        return false;
    };
    if d.gone.load(Ordering::Acquire) {
        return false;
    }
    // The worker's descriptor is in the same rump process; a detached disk's vnode is
    // revoked, so the ioctl fails.
    d.fd_alive()
}

/// Starts looking for disks (after `rump_init`), when the rump kernel has a USB controller.
pub fn start_discovery() {
    if CONTROLLERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    crate::sched::thread::spawn("rump-usb-discover", || {
        let t0 = crate::time::now_ns();
        let mut found = [false; UNITS as usize];
        let mut attached = [false; UNITS as usize];
        let mut major = None;
        let mut last_alive_check = t0;
        loop {
            if super::is_dead() {
                return;
            }
            // Attached disks are asked whether they still exist once a second (a failed
            // request asks at once, in the worker).
            let check_alive = crate::time::now_ns() - last_alive_check >= 1_000_000_000;
            if check_alive {
                last_alive_check = crate::time::now_ns();
            }
            for unit in 0..UNITS {
                let u = unit as usize;
                if attached[u] && check_alive && !unit_alive(unit) {
                    // Pulled out: NetBSD detached sd<unit>; a new stick may get the unit.
                    detach(unit);
                    attached[u] = false;
                    found[u] = false;
                }
                if found[u] {
                    continue;
                }
                if let Some(fd) = open_unit(unit, major) {
                    if unit == 0 {
                        major = sys::fstat(fd).ok().map(|st| netbsd_major(st.st_rdev));
                    }
                    found[u] = true;
                    log::info!(
                        "usb: NetBSD sd{unit} appeared {} ms after rump_init",
                        (crate::time::now_ns() - t0) / 1_000_000
                    );
                    attached[u] = attach(unit, fd);
                } else if unit == 0 && major.is_none() {
                    // The nodes of sd0 exist from the start; its major names the driver.
                    major = sys::fstatat(sys::AT_FDCWD, "/dev/rsd0d", 0)
                        .ok()
                        .map(|st| netbsd_major(st.st_rdev));
                }
            }
            // Sticks come within the first seconds (the USB explore thread starts after
            // 500 ms, each port takes a few hundred ms more): look often then, once a
            // second after (sticks plugged in or pulled out later).
            let elapsed = crate::time::now_ns() - t0;
            crate::sched::thread::sleep_ms(if elapsed < 30_000_000_000 { 100 } else { 1000 });
        }
    });
}

/// `/proc/drivers` lines: one per disk.
pub fn report() -> Vec<String> {
    let mut v = Vec::new();
    if crate::pci::find_class(0x0c, 0x03).next().is_some() {
        v.push(alloc::format!("usb driver={}", driver()));
    }
    v.extend(crate::usb::report());
    for d in DISKS.lock().iter() {
        v.push(alloc::format!(
            "usb-disk {} netbsd=sd{} stack=rump sectors={} reads={} writes={} bytes={} errors={}",
            d.name,
            d.unit,
            d.sectors,
            d.reads.load(Ordering::Relaxed),
            d.writes.load(Ordering::Relaxed),
            d.bytes.load(Ordering::Relaxed),
            d.errors.load(Ordering::Relaxed)
        ));
    }
    v
}
