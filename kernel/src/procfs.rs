//! procfs: `/proc/self`, `/proc/[pid]/{stat,status,cmdline,comm,maps,fd/}`, and the global
//! files busybox's `ps`, `top`, `free`, `mount`, `df`, `uptime` and `nproc` read:
//! `meminfo`, `cpuinfo`, `stat`, `uptime`, `loadavg`, `mounts`, `filesystems`, `cmdline`,
//! `version`. Contents are generated on each read.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::node::{DirEntry, FileSystem, Inode, InodeRef, SetAttr, Stat, StatFs, Timespec};
use crate::fs::sync::SleepLock;

const GLOBAL: [&str; 13] = [
    "boottimes",
    "cmdline",
    "cpuinfo",
    "drivers",
    "filesystems",
    "loadavg",
    "meminfo",
    "mounts",
    "profile",
    "stat",
    "uptime",
    "version",
    "self",
];
const PER_PID: [&str; 8] = [
    "cmdline", "comm", "cwd", "exe", "fd", "maps", "stat", "status",
];

pub struct ProcFs {
    me: Weak<ProcFs>,
    rename: SleepLock<()>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Root,
    Global(&'static str),
    SelfLink,
    Pid(u32),
    PidFile(u32, &'static str),
    FdDir(u32),
    Fd(u32, i32),
}

struct Node {
    fs: Arc<ProcFs>,
    kind: Kind,
}

/// Registers `proc` with `mount -t proc` and mounts it on /proc (Linux leaves that to
/// init; we do it so `--exec` commands and pid 1 alike find it).
pub fn init() {
    crate::fs::register_filesystem("proc", |_src| Ok(new() as Arc<dyn FileSystem>));
    let ctx = crate::fs::FsCtx::kernel();
    if let Err(e) = crate::fs::mount(&ctx, "proc", "proc", None, "/proc") {
        log::warn!("procfs: not mounted on /proc: {e:?}");
    }
}

pub fn new() -> Arc<ProcFs> {
    Arc::new_cyclic(|me| ProcFs {
        me: me.clone(),
        rename: SleepLock::new(()),
    })
}

const PROC_DEV: u64 = 0x0000_0004;

impl FileSystem for ProcFs {
    fn name(&self) -> &'static str {
        "proc"
    }
    fn root(&self) -> InodeRef {
        Arc::new(Node {
            fs: self.me.upgrade().expect("procfs alive"),
            kind: Kind::Root,
        })
    }
    fn dev(&self) -> u64 {
        PROC_DEV
    }
    fn statfs(&self) -> StatFs {
        StatFs {
            fs_type: 0x9fa0,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            ..Default::default()
        }
    }
    fn rename_lock(&self) -> &SleepLock<()> {
        &self.rename
    }
}

fn ino_of(k: &Kind) -> u64 {
    let h = |s: &str| {
        s.bytes()
            .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
    };
    match k {
        Kind::Root => 1,
        Kind::SelfLink => 2,
        Kind::Global(n) => 0x100 + (h(n) & 0xff),
        Kind::Pid(p) => (u64::from(*p) << 16) | 1,
        Kind::PidFile(p, n) => (u64::from(*p) << 16) | (2 + (h(n) & 0xfff)),
        Kind::FdDir(p) => (u64::from(*p) << 16) | 0x2000,
        Kind::Fd(p, fd) => (u64::from(*p) << 16) | 0x4000 | (*fd as u64 & 0xfff),
    }
}

fn boot_time() -> Timespec {
    let s = (crate::time::wall_clock_ns().saturating_sub(crate::time::now_ns())) / 1_000_000_000;
    Timespec {
        sec: s as i64,
        nsec: 0,
    }
}

impl Node {
    fn child(&self, kind: Kind) -> InodeRef {
        Arc::new(Node {
            fs: self.fs.clone(),
            kind,
        })
    }

    fn content(&self) -> KResult<String> {
        match &self.kind {
            Kind::Global(n) => global(n),
            Kind::PidFile(pid, n) => per_pid(*pid, n),
            _ => Err(Errno::EISDIR),
        }
    }
}

impl Inode for Node {
    fn stat(&self) -> Stat {
        let (mode, nlink) = match &self.kind {
            Kind::Root | Kind::Pid(_) | Kind::FdDir(_) => (S_IFDIR | 0o555, 2),
            Kind::SelfLink | Kind::Fd(..) => (S_IFLNK | 0o777, 1),
            Kind::PidFile(_, "cwd" | "exe") => (S_IFLNK | 0o777, 1),
            _ => (S_IFREG | 0o444, 1),
        };
        let (uid, gid) = match &self.kind {
            Kind::Pid(p) | Kind::PidFile(p, _) | Kind::FdDir(p) | Kind::Fd(p, _) => {
                crate::proc::process(*p)
                    .map(|x| {
                        let c = *x.creds.lock();
                        (c.euid, c.egid)
                    })
                    .unwrap_or((0, 0))
            }
            _ => (0, 0),
        };
        let t = boot_time();
        Stat {
            dev: PROC_DEV,
            ino: ino_of(&self.kind),
            mode,
            nlink,
            uid,
            gid,
            rdev: 0,
            size: 0,
            blksize: 1024,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
        }
    }

    fn set_attr(&self, _a: &SetAttr) -> KResult<()> {
        Err(Errno::EPERM)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs(&self) -> Arc<dyn FileSystem> {
        self.fs.clone()
    }

    fn lookup(&self, name: &str) -> KResult<InodeRef> {
        match &self.kind {
            Kind::Root => {
                if name == ".." {
                    return Ok(self.child(Kind::Root));
                }
                if name == "self" {
                    return Ok(self.child(Kind::SelfLink));
                }
                if let Some(g) = GLOBAL.iter().find(|g| **g == name) {
                    return Ok(self.child(Kind::Global(g)));
                }
                let pid: u32 = name.parse().map_err(|_| Errno::ENOENT)?;
                let p = crate::proc::process(pid).ok_or(Errno::ENOENT)?;
                if p.zombie.load(Ordering::Acquire) && p.pid != pid {
                    return Err(Errno::ENOENT);
                }
                Ok(self.child(Kind::Pid(pid)))
            }
            Kind::Pid(pid) => {
                if name == ".." {
                    return Ok(self.child(Kind::Root));
                }
                if name == "fd" {
                    return Ok(self.child(Kind::FdDir(*pid)));
                }
                let f = PER_PID.iter().find(|f| **f == name).ok_or(Errno::ENOENT)?;
                Ok(self.child(Kind::PidFile(*pid, f)))
            }
            Kind::FdDir(pid) => {
                if name == ".." {
                    return Ok(self.child(Kind::Pid(*pid)));
                }
                let fd: i32 = name.parse().map_err(|_| Errno::ENOENT)?;
                let p = crate::proc::process(*pid).ok_or(Errno::ENOENT)?;
                p.files.lock().get(fd).map_err(|_| Errno::ENOENT)?;
                Ok(self.child(Kind::Fd(*pid, fd)))
            }
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn readdir(&self, offset: u64, max: usize) -> KResult<Vec<DirEntry>> {
        let mut all: Vec<(u64, u8, String)> = Vec::new();
        let me = ino_of(&self.kind);
        all.push((me, DT_DIR, ".".into()));
        all.push((1, DT_DIR, "..".into()));
        match &self.kind {
            Kind::Root => {
                for g in GLOBAL {
                    let k = if g == "self" {
                        Kind::SelfLink
                    } else {
                        Kind::Global(g)
                    };
                    all.push((
                        ino_of(&k),
                        if g == "self" { DT_LNK } else { DT_REG },
                        g.to_string(),
                    ));
                }
                let mut pids: Vec<u32> = crate::proc::all_processes()
                    .iter()
                    .filter(|p| !p.zombie.load(Ordering::Acquire))
                    .map(|p| p.pid)
                    .collect();
                pids.sort_unstable();
                for p in pids {
                    all.push((ino_of(&Kind::Pid(p)), DT_DIR, p.to_string()));
                }
            }
            Kind::Pid(pid) => {
                for f in PER_PID {
                    let t = match f {
                        "fd" => DT_DIR,
                        "cwd" | "exe" => DT_LNK,
                        _ => DT_REG,
                    };
                    all.push((ino_of(&Kind::PidFile(*pid, f)), t, f.to_string()));
                }
            }
            Kind::FdDir(pid) => {
                let p = crate::proc::process(*pid).ok_or(Errno::ENOENT)?;
                for (fd, _) in p.files.lock().list() {
                    all.push((ino_of(&Kind::Fd(*pid, fd)), DT_LNK, fd.to_string()));
                }
            }
            _ => return Err(Errno::ENOTDIR),
        }
        Ok(all
            .into_iter()
            .enumerate()
            .skip(offset as usize)
            .take(max)
            .map(|(i, (ino, kind, name))| DirEntry {
                ino,
                kind,
                name,
                next_offset: i as u64 + 1,
            })
            .collect())
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> KResult<usize> {
        let c = self.content()?;
        let b = c.as_bytes();
        let o = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - o);
        buf[..n].copy_from_slice(&b[o..o + n]);
        Ok(n)
    }

    fn readlink(&self) -> KResult<String> {
        match &self.kind {
            Kind::SelfLink => Ok(crate::proc::current_process()
                .map(|p| p.pid.to_string())
                .unwrap_or_else(|| "0".into())),
            Kind::Fd(pid, fd) => {
                let p = crate::proc::process(*pid).ok_or(Errno::ENOENT)?;
                let f = p.files.lock().get(*fd)?;
                Ok(f.path())
            }
            Kind::PidFile(pid, "cwd") => {
                let p = crate::proc::process(*pid).ok_or(Errno::ENOENT)?;
                crate::fs::getcwd(&p.fs_ctx())
            }
            Kind::PidFile(pid, "exe") => {
                let p = crate::proc::process(*pid).ok_or(Errno::ENOENT)?;
                Ok(p.exe.lock().clone())
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

fn global(name: &str) -> KResult<String> {
    let mut s = String::new();
    match name {
        "cmdline" => {
            s.push_str(&crate::boot::info().cmdline);
            s.push('\n');
        }
        "version" => {
            s.push_str("Linux version 6.1.0-adros (AdrOS 0.1.0, rustc) #1 SMP\n");
        }
        "filesystems" => {
            for f in crate::fs::filesystems() {
                let _ = writeln!(s, "nodev\t{f}");
            }
        }
        "uptime" => {
            let ns = crate::time::now_ns();
            let idle: u64 = crate::arch::percpu::online_cpus()
                .map(|c| c.sched.idle_ticks.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                s,
                "{}.{:02} {}.{:02}",
                ns / 1_000_000_000,
                (ns / 10_000_000) % 100,
                idle / 1000,
                (idle / 10) % 100
            );
        }
        "loadavg" => {
            let n = crate::proc::all_processes().len();
            let running: usize = crate::arch::percpu::online_cpus()
                .map(|c| c.sched.runnable() + usize::from(!c.sched.is_idle()))
                .sum();
            let _ = writeln!(
                s,
                "0.00 0.00 0.00 {running}/{n} {}",
                crate::proc::last_pid()
            );
        }
        "meminfo" => {
            let (free, total) = crate::mm::phys::stats();
            let (heap_mapped, _) = crate::mm::heap::stats();
            let kb = |frames: usize| frames as u64 * 4;
            let _ = writeln!(s, "MemTotal:       {:8} kB", kb(total));
            let _ = writeln!(s, "MemFree:        {:8} kB", kb(free));
            let _ = writeln!(s, "MemAvailable:   {:8} kB", kb(free));
            let _ = writeln!(s, "Buffers:        {:8} kB", 0);
            let _ = writeln!(s, "Cached:         {:8} kB", 0);
            let _ = writeln!(s, "SwapCached:     {:8} kB", 0);
            let _ = writeln!(s, "Shmem:          {:8} kB", 0);
            let _ = writeln!(s, "Slab:           {:8} kB", heap_mapped / 1024);
            let _ = writeln!(s, "SwapTotal:      {:8} kB", 0);
            let _ = writeln!(s, "SwapFree:       {:8} kB", 0);
        }
        "cpuinfo" => {
            let brand = crate::arch::cpu::brand();
            let mhz = crate::time::tsc_hz() as f64 / 1e6;
            let n = crate::arch::smp::online_count();
            for c in crate::arch::percpu::online_cpus() {
                let _ = write!(
                    s,
                    "processor\t: {}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 0\nmodel name\t: {}\nstepping\t: 0\ncpu MHz\t\t: {:.3}\ncache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: {}\ncore id\t\t: {}\ncpu cores\t: {}\napicid\t\t: {}\nfpu\t\t: yes\nflags\t\t: fpu tsc msr pae apic sse sse2 syscall nx lm\nbogomips\t: {:.2}\naddress sizes\t: 40 bits physical, 48 bits virtual\n\n",
                    c.cpu_id,
                    brand,
                    mhz,
                    n,
                    c.cpu_id,
                    n,
                    c.apic_id,
                    mhz * 2.0
                );
            }
        }
        "stat" => {
            let mut tot = [0u64; 2];
            let mut lines = String::new();
            for c in crate::arch::percpu::online_cpus() {
                let ticks = c.sched.ticks.load(Ordering::Relaxed) / 10; // USER_HZ = 100
                let idle = c.sched.idle_ticks.load(Ordering::Relaxed) / 10;
                let busy = ticks.saturating_sub(idle);
                tot[0] += busy;
                tot[1] += idle;
                let _ = writeln!(lines, "cpu{} {} 0 0 {} 0 0 0 0 0 0", c.cpu_id, busy, idle);
            }
            let _ = writeln!(s, "cpu  {} 0 0 {} 0 0 0 0 0 0", tot[0], tot[1]);
            s.push_str(&lines);
            let switches: u64 = crate::arch::percpu::online_cpus()
                .map(|c| c.sched.switches.load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                s,
                "intr 0\nctxt {switches}\nbtime {}\nprocesses {}\nprocs_running 1\nprocs_blocked 0",
                boot_time().sec,
                crate::proc::last_pid()
            );
        }
        "mounts" => {
            for m in crate::fs::mounts() {
                match m.driver {
                    Some(d) => {
                        writeln!(s, "{} {} {} rw,driver={d} 0 0", m.source, m.path, m.fstype)
                    }
                    None => writeln!(s, "{} {} {} rw 0 0", m.source, m.path, m.fstype),
                }
                .ok();
            }
        }
        "profile" => s.push_str(&crate::profile::report(60)),
        "boottimes" => {
            // Milestones in ms of uptime (the clock starts at calibration, a few ms into boot).
            let ms = |ns: u64| {
                if ns == 0 {
                    alloc::string::String::from("-")
                } else {
                    alloc::format!("{}.{:03}", ns / 1_000_000, (ns / 1000) % 1000)
                }
            };
            let _ = writeln!(
                s,
                "kernel_ready_ms {}",
                ms(crate::boot::BOOT_DONE_NS.load(Ordering::Relaxed))
            );
            let _ = writeln!(
                s,
                "init_started_ms {}",
                ms(crate::boot::INIT_START_NS.load(Ordering::Relaxed))
            );
            let _ = writeln!(
                s,
                "first_console_read_ms {}",
                ms(crate::tty::FIRST_CONSOLE_READ_NS.load(Ordering::Relaxed))
            );
            let _ = writeln!(s, "rump_init_ms {}", ms(crate::rump::init_ns()));
        }
        "drivers" => {
            // Which stack serves what: the rump kernel, block devices, and mounts.
            let rump = crate::rump::state_name();
            if crate::rump::LINKED {
                let _ = writeln!(
                    s,
                    "rump {rump} netbsd=\"{}\" init_ms={} components=\"{}\"",
                    crate::rump::sys::version(),
                    crate::rump::init_ns() / 1_000_000,
                    crate::rump::components()
                );
            } else {
                let _ = writeln!(s, "rump not-linked");
            }
            if crate::rump::LINKED {
                let b = rumpuser_adros::bio::stats();
                let us = |ns: u64, n: u64| ns / n.max(1) / 1000;
                let _ = writeln!(
                    s,
                    "rump-bio requests={} host_ios={} bytes={} mean_queue_us={} mean_io_us={} mean_done_us={} mean_done_vcpu_wait_us={} max_queued={}",
                    b.requests,
                    b.ios,
                    b.bytes,
                    us(b.queue_ns, b.requests),
                    us(b.io_ns, b.ios),
                    us(b.done_ns, b.ios),
                    us(b.vcpu_ns, b.ios),
                    b.max_queued
                );
                let c = rumpuser_adros::locks::contention();
                let _ = writeln!(
                    s,
                    "rump-locks contended={} wait_ms={}",
                    c.waits,
                    c.wait_ns / 1_000_000
                );
            }
            let _ = writeln!(s, "ext2 default={}", crate::ext2_vfs::default_driver());
            for (name, _, _, driver) in crate::block::list() {
                let _ = writeln!(s, "block {name} {driver}");
            }
            for line in crate::block::virtio::reports() {
                let _ = writeln!(s, "{line}");
            }
            for line in crate::net::report() {
                let _ = writeln!(s, "{line}");
            }
            for m in crate::fs::mounts() {
                if let Some(d) = m.driver {
                    let _ = writeln!(s, "mount {} {} {} {d}", m.path, m.source, m.fstype);
                }
            }
        }
        _ => return Err(Errno::ENOENT),
    }
    Ok(s)
}

fn state_char(p: &crate::proc::Process) -> char {
    if p.zombie.load(Ordering::Acquire) {
        return 'Z';
    }
    let running = p.live_threads().iter().any(|t| {
        t.thread()
            .is_some_and(|th| th.state() == crate::sched::STATE_RUNNING)
    });
    if running { 'R' } else { 'S' }
}

fn per_pid(pid: u32, name: &str) -> KResult<String> {
    let p = crate::proc::process(pid).ok_or(Errno::ENOENT)?;
    let mut s = String::new();
    let comm = p.name.lock().clone();
    let cmdline = p.cmdline.lock().clone();
    let vmas = p.aspace().vmas();
    let vsize: u64 = vmas.iter().map(|v| v.end - v.start).sum();
    let threads = p.live_threads().len().max(1);
    let creds = *p.creds.lock();
    match name {
        "cmdline" => {
            for a in &cmdline {
                s.push_str(a);
                s.push('\0');
            }
        }
        "comm" => {
            s.push_str(&comm);
            s.push('\n');
        }
        "stat" => {
            let start = (p.start_ns / 10_000_000) as u64;
            let _ = writeln!(
                s,
                "{} ({}) {} {} {} {} 0 -1 4194560 0 0 0 0 {} 0 {} 0 20 {} {} 0 {} {} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0",
                pid,
                comm,
                state_char(&p),
                p.ppid.load(Ordering::Relaxed),
                p.pgid.load(Ordering::Relaxed),
                p.sid.load(Ordering::Relaxed),
                p.cpu_ns() / 10_000_000,
                p.children_ns.load(Ordering::Relaxed) / 10_000_000,
                p.nice.load(Ordering::Relaxed),
                threads,
                start,
                vsize,
                vsize / 4096 / 4
            );
        }
        "status" => {
            let _ = write!(
                s,
                "Name:\t{}\nState:\t{}\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t{u}\t{eu}\t{eu}\t{eu}\nGid:\t{g}\t{eg}\t{eg}\t{eg}\nVmSize:\t{} kB\nVmRSS:\t{} kB\nThreads:\t{}\n",
                comm,
                state_char(&p),
                pid,
                pid,
                p.ppid.load(Ordering::Relaxed),
                vsize / 1024,
                vsize / 1024 / 4,
                threads,
                u = creds.uid,
                eu = creds.euid,
                g = creds.gid,
                eg = creds.egid
            );
        }
        "maps" => {
            for v in &vmas {
                let perm = |b: u32, c: char| if v.prot & b != 0 { c } else { '-' };
                let _ = writeln!(
                    s,
                    "{:08x}-{:08x} {}{}{}p 00000000 00:00 0          {}",
                    v.start,
                    v.end,
                    perm(crate::mm::uspace::PROT_READ, 'r'),
                    perm(crate::mm::uspace::PROT_WRITE, 'w'),
                    perm(crate::mm::uspace::PROT_EXEC, 'x'),
                    v.name
                );
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(s)
}

#[allow(dead_code)]
fn unused(_: &str) -> String {
    format!("")
}
