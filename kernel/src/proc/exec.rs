//! execve: reading the executable (following `#!` up to 4 levels), building the new address
//! space, and switching the calling process over to it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::{Process, elf, imgcache};
use crate::arch::TrapFrame;
use crate::errno::{Errno, KResult};
use crate::mm::uspace::AddressSpace;

/// Files larger than this are refused (the image is read into memory whole).
const MAX_IMAGE: u64 = 256 << 20;

pub struct Image {
    /// The name it was executed by (AT_EXECFN; its last component names the process).
    pub path: String,
    /// The absolute, symlink-resolved path of the ELF file (`/proc/PID/exe`), as Linux
    /// gives it: glibc's `_dl_get_origin` asserts it starts with '/'.
    pub exe: String,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub main: Elf,
    /// The program interpreter (`PT_INTERP`) of a dynamically linked image.
    pub interp: Option<Elf>,
}

/// An ELF file ready to be mapped: its pages from the image cache, or its bytes (and the
/// cache key to keep its pages under, where the cache applies).
pub enum Elf {
    Cached(Arc<imgcache::Cached>),
    Bytes {
        data: Vec<u8>,
        info: elf::ElfInfo,
        key: Option<imgcache::Key>,
        base: u64,
    },
}

impl Elf {
    pub fn info(&self) -> &elf::ElfInfo {
        match self {
            Elf::Cached(c) => &c.info,
            Elf::Bytes { info, .. } => info,
        }
    }

    /// Maps the file into `aspace` (through the cache where it applies).
    fn install(&self, aspace: &AddressSpace) -> KResult<elf::Loaded> {
        match self {
            Elf::Cached(c) => c.install(aspace),
            Elf::Bytes {
                data,
                info,
                key: Some(key),
                ..
            } => imgcache::build(*key, data, info.clone())?.install(aspace),
            Elf::Bytes {
                data, info, base, ..
            } => elf::load(aspace, data, info, *base),
        }
    }
}

/// The cache key of the open file `f` with `st`, loaded at `base`.
fn cache_key(f: &crate::fs::File, st: &crate::fs::node::Stat, base: u64) -> Option<imgcache::Key> {
    let fs = f.inode()?.fs();
    imgcache::Key::of(fs.name(), st, base)
}

/// Reads and checks the program interpreter a dynamically linked executable names: a regular,
/// executable, position-independent ELF file without an interpreter of its own.
fn load_interp(p: &Process, path: &str) -> KResult<Elf> {
    let ctx = p.fs_ctx();
    let f = crate::fs::open(&ctx, None, path, 0, 0)?;
    let st = f.stat()?;
    if st.mode & 0o170000 != 0o100000 {
        return Err(Errno::EACCES);
    }
    let key = cache_key(&f, &st, elf::INTERP_BASE);
    if let Some(c) = key.as_ref().and_then(imgcache::lookup) {
        return Ok(Elf::Cached(c));
    }
    let data = read_all(&f)?;
    // Linux answers ELIBBAD for an interpreter it cannot load.
    let info = elf::parse(&data).map_err(|_| Errno::ELIBBAD)?;
    if info.interp.is_some() || !info.is_pie {
        return Err(Errno::ELIBBAD);
    }
    Ok(Elf::Bytes {
        data,
        info,
        key,
        base: elf::INTERP_BASE,
    })
}

fn read_all(f: &crate::fs::File) -> KResult<Vec<u8>> {
    let st = f.stat()?;
    if st.size < 0 || st.size as u64 > MAX_IMAGE {
        return Err(Errno::ENOMEM);
    }
    let mut data = alloc::vec![0u8; st.size as usize];
    let mut off = 0usize;
    while off < data.len() {
        let n = f.pread(&mut data[off..], off as u64)?;
        if n == 0 {
            break;
        }
        off += n;
    }
    data.truncate(off);
    Ok(data)
}

/// The process name (`comm`) an image executed by `path` gets: its last component, cut to
/// 15 bytes (Linux's `TASK_COMM_LEN` less the NUL) at a character boundary.
pub fn comm_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let mut end = base.len().min(15);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&base[..end])
}

impl Image {
    /// Opens `path` (relative to `p`'s cwd or `dirfd`) and prepares it, resolving scripts.
    pub fn load(p: &Process, path: &str, argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> KResult<Image> {
        Self::load_at(p, None, path, argv, envp)
    }

    pub fn load_at(
        p: &Process,
        base: Option<&crate::fs::PathRef>,
        path: &str,
        mut argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> KResult<Image> {
        let ctx = p.fs_ctx();
        let mut path = String::from(path);
        let mut base = base.cloned();
        // The name a `#!` script was executed by: as on Linux (`bprm->filename`), it stays
        // AT_EXECFN and names the process (`comm`) while the interpreter runs it.
        let mut script: Option<String> = None;
        for _ in 0..4 {
            let f = crate::fs::open(&ctx, base.as_ref(), &path, 0, 0)?;
            let st = f.stat()?;
            if st.mode & 0o170000 != 0o100000 {
                return Err(Errno::EACCES);
            }
            if crate::fs::access(&ctx, base.as_ref(), &path, 1, true).is_err() {
                return Err(Errno::EACCES);
            }
            // An ELF file executed before (and unchanged since): its pages are cached.
            let key = cache_key(&f, &st, elf::PIE_BASE);
            if let Some(c) = key.as_ref().and_then(imgcache::lookup) {
                let interp = match &c.info.interp {
                    Some(ip) => Some(load_interp(p, ip)?),
                    None => None,
                };
                let path = if base.is_some() && !path.starts_with('/') {
                    f.path()
                } else {
                    path
                };
                return Ok(Image {
                    path: script.unwrap_or(path),
                    exe: f.path(),
                    argv,
                    envp,
                    main: Elf::Cached(c),
                    interp,
                });
            }
            let data = read_all(&f)?;
            if data.starts_with(b"#!") {
                let line_end = data
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(data.len())
                    .min(255);
                let line = core::str::from_utf8(&data[2..line_end])
                    .map_err(|_| Errno::ENOEXEC)?
                    .trim();
                let (interp, arg) = match line.split_once(char::is_whitespace) {
                    Some((i, a)) => (i.trim(), Some(a.trim())),
                    None => (line, None),
                };
                if interp.is_empty() {
                    return Err(Errno::ENOEXEC);
                }
                let mut new_argv = alloc::vec![interp.as_bytes().to_vec()];
                if let Some(a) = arg.filter(|a| !a.is_empty()) {
                    new_argv.push(a.as_bytes().to_vec());
                }
                new_argv.push(crate::fs::bytename::to_bytes(&path).into_owned());
                new_argv.extend(argv.into_iter().skip(1));
                argv = new_argv;
                if script.is_none() {
                    script = Some(if base.is_some() && !path.starts_with('/') {
                        f.path()
                    } else {
                        path.clone()
                    });
                }
                path = String::from(interp);
                base = None;
                continue;
            }
            let info = elf::parse(&data)?;
            let interp = match &info.interp {
                Some(ip) => Some(load_interp(p, ip)?),
                None => None,
            };
            let exe = f.path();
            // Relative to a directory descriptor (execveat): name the image by its full
            // path (AT_EXECFN, /proc/PID/exe), as a bare relative name means nothing to
            // the new program, whose cwd may differ.
            let path = if base.is_some() && !path.starts_with('/') {
                f.path()
            } else {
                path
            };
            return Ok(Image {
                path: script.unwrap_or(path),
                exe,
                argv,
                envp,
                main: Elf::Bytes {
                    data,
                    info,
                    key,
                    base: elf::PIE_BASE,
                },
                interp,
            });
        }
        Err(Errno::ELOOP)
    }

    /// Builds a fresh address space for the image, installs it in `p`, and returns the
    /// user frame to start it with.
    /// The old address space is handed back: the caller drops it only once no CPU runs on
    /// it any more (after switching CR3).
    pub fn install(self, p: &Arc<Process>) -> KResult<(TrapFrame, Arc<AddressSpace>)> {
        let aspace = Arc::new(AddressSpace::new()?);
        let mut ld = self.main.install(&aspace)?;
        if let Some(i) = &self.interp {
            let il = i.install(&aspace)?;
            ld.start = il.entry;
            ld.interp_base = il.base;
        }
        aspace.set_brk_start(ld.brk.next_multiple_of(crate::mm::uspace::PAGE));
        let creds = {
            // POSIX: execve copies the effective ids into the saved set-user/group-IDs.
            let mut c = p.creds.lock();
            c.suid = c.euid;
            c.sgid = c.egid;
            *c
        };
        let rsp = elf::setup_stack(
            &aspace,
            &ld,
            &self.argv,
            &self.envp,
            &crate::fs::bytename::to_bytes(&self.path),
            creds.uid,
            creds.gid,
        )?;
        let old = core::mem::replace(&mut *p.aspace.lock(), aspace);
        // Stores through shared file mappings of the old image reach their files.
        crate::fs::filemap::flush_all(&old);
        *p.name.lock() = comm_of(&self.path);
        *p.exe.lock() = self.exe;
        *p.cmdline.lock() = self
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Ok((crate::arch::user::user_frame(ld.start, rsp), old))
    }
}

/// The `execve` system call: on success the calling thread continues in the new image.
pub fn execve(
    frame: &mut TrapFrame,
    dirfd: Option<i32>,
    path: &str,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> KResult<()> {
    let t = super::current_task().ok_or(Errno::EPERM)?;
    let p = t.process.clone();
    let base = match dirfd {
        Some(fd) if fd != -100 && !path.starts_with('/') => Some(
            p.files
                .lock()
                .get(fd)?
                .path_ref()
                .ok_or(Errno::ENOTDIR)?
                .clone(),
        ),
        _ => None,
    };
    let img = Image::load_at(&p, base.as_ref(), path, argv, envp)?;
    if p.live_threads().len() > 1 {
        // Other threads die (Linux's de_thread).
        for o in p.live_threads() {
            if o.tid != t.tid {
                o.killed.store(true, Ordering::Release);
                if let Some(th) = o.thread() {
                    crate::sched::wake(&th);
                }
            }
        }
    }
    let (new, old_space) = img.install(&p)?;
    // Switch this thread to the new address space now (the old one is freed when the
    // last reference — possibly this CPU's CR3 — goes away).
    let th = crate::sched::current();
    th.cr3.store(p.aspace().pml4(), Ordering::Release);
    {
        let _irq = crate::sched::IrqOff::new();
        p.aspace().activate();
        let _ = crate::arch::cpu::set_tls_base(0);
    }
    th.fs_base.store(0, Ordering::Relaxed);
    // No thread of this process runs on it now (the others were killed); a vfork parent
    // that shares it keeps its own reference.
    drop(old_space);
    th.reset_fpu();
    let closed = p.files.lock().close_on_exec();
    drop(closed);
    p.sig.lock().reset_for_exec();
    // Pending signals and the mask survive execve (POSIX); only the alternate stack goes.
    t.sig.lock().altstack = (0, 0, 2);
    t.clear_child_tid.store(0, Ordering::Relaxed);
    p.vfork_released.store(true, Ordering::Release);
    p.vfork_done.wake_all();
    *frame = new;
    Ok(())
}
