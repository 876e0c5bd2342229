//! brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore.

use super::{Call, Table};
use crate::errno::{Errno, KResult};
use crate::mm::uspace::{PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_TOP};
use crate::proc::current_process;

pub fn register(t: &mut Table) {
    t.add(12, "brk", brk);
    t.add(9, "mmap", mmap);
    t.add(11, "munmap", munmap);
    t.add(10, "mprotect", mprotect);
    t.add(25, "mremap", mremap);
    t.add(28, "madvise", madvise);
    t.add(26, "msync", msync);
}

fn brk(c: &mut Call<'_>) -> KResult<u64> {
    let p = current_process().ok_or(Errno::ESRCH)?;
    Ok(p.aspace().brk(c.a0()))
}

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x100000;

fn prot_ok(prot: u64) -> KResult<u32> {
    if prot & !0x7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(prot as u32 & (PROT_READ | PROT_WRITE | PROT_EXEC))
}

fn mmap(c: &mut Call<'_>) -> KResult<u64> {
    let (addr, len, prot, flags, fd, off) = (c.a0(), c.a1(), c.a2(), c.a3(), c.i32(4), c.a5());
    if len == 0 || off % PAGE != 0 || (flags & (MAP_SHARED | MAP_PRIVATE)) == 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.checked_add(PAGE - 1).ok_or(Errno::ENOMEM)? & !(PAGE - 1);
    let prot = prot_ok(prot)?;
    let p = current_process().ok_or(Errno::ESRCH)?;
    let a = p.aspace();
    let file = if flags & MAP_ANONYMOUS == 0 {
        Some(p.files.lock().get(fd)?)
    } else {
        None
    };
    if let Some(f) = &file {
        // The file must be open for reading, and for writing too if a shared mapping may write.
        let acc = f.flags() & crate::fs::consts::O_ACCMODE;
        if acc == crate::fs::consts::O_WRONLY
            || (flags & MAP_SHARED != 0
                && prot & PROT_WRITE != 0
                && acc != crate::fs::consts::O_RDWR)
        {
            return Err(Errno::EACCES);
        }
    }
    // A shared mapping of a regular file maps the file's cached pages (`fs::filemap`);
    // of anything else (a device), a copy, which could not write back: no PROT_WRITE.
    let shared_file = match &file {
        Some(f) if flags & MAP_SHARED != 0 => {
            let regular = f.node().is_ok_and(|n| {
                n.stat().mode & crate::fs::consts::S_IFMT == crate::fs::consts::S_IFREG
            });
            if !regular && prot & PROT_WRITE != 0 {
                return Err(Errno::ENODEV);
            }
            regular
        }
        _ => false,
    };
    let name = if file.is_some() { "file" } else { "anon" };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let start = if fixed {
        if addr % PAGE != 0 || addr.checked_add(len).is_none_or(|e| e > USER_TOP) || addr == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_FIXED_NOREPLACE != 0
            && a.vmas()
                .iter()
                .any(|v| v.start < addr + len && v.end > addr)
        {
            return Err(Errno::EEXIST);
        }
        addr
    } else {
        // Found and claimed atomically (another thread may be mapping at the same time).
        a.map_anon_free(len, prot | PROT_WRITE, name)?
    };
    // Map writable first so file contents can be copied in, then apply the real protection.
    if fixed {
        a.map_anon(start, start + len, prot | PROT_WRITE, name)?;
    }
    if shared_file && let Some(f) = &file {
        let node = f.node()?;
        let may_write = f.flags() & crate::fs::consts::O_ACCMODE == crate::fs::consts::O_RDWR;
        if let Err(e) = crate::fs::filemap::map(&a, start, len, node, off, may_write) {
            let _ = a.unmap(start, start + len);
            return Err(e);
        }
    } else if let Some(f) = &file {
        let mut buf = alloc::vec![0u8; 64 * 1024];
        let mut done = 0u64;
        while done < len {
            let want = ((len - done) as usize).min(buf.len());
            let n = f.pread(&mut buf[..want], off + done)?;
            if n == 0 {
                break;
            }
            a.write_bytes(start + done, &buf[..n])?;
            done += n as u64;
        }
    }
    if flags & MAP_SHARED != 0
        && file.is_none()
        && let Err(e) = a.share_range(start, start + len)
    {
        let _ = a.unmap(start, start + len);
        return Err(e);
    }
    if prot & PROT_WRITE == 0 {
        a.protect(start, start + len, prot)?;
    }
    Ok(start)
}

fn munmap(c: &mut Call<'_>) -> KResult<u64> {
    let (addr, len) = (c.a0(), c.a1());
    if addr % PAGE != 0 || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = addr
        .checked_add(len.next_multiple_of(PAGE))
        .ok_or(Errno::EINVAL)?;
    let p = current_process().ok_or(Errno::ESRCH)?;
    let a = p.aspace();
    // Stores through a shared file mapping reach the file before the mapping goes.
    let vmas = a.vmas();
    if vmas.iter().any(|v| v.file.is_some()) {
        let _ = crate::fs::filemap::flush_range(&vmas, addr, end);
    }
    a.unmap(addr, end)?;
    if vmas.iter().any(|v| v.file.is_some()) {
        crate::fs::filemap::sweep();
    }
    Ok(0)
}

fn mprotect(c: &mut Call<'_>) -> KResult<u64> {
    let (addr, len) = (c.a0(), c.a1());
    if addr % PAGE != 0 {
        return Err(Errno::EINVAL);
    }
    // PROT_GROWSDOWN / PROT_GROWSUP are accepted (and ignored); anything else is EINVAL.
    let prot = prot_ok(c.a2() & !0x0300_0000)?;
    let end = addr
        .checked_add(len.next_multiple_of(PAGE))
        .ok_or(Errno::ENOMEM)?;
    if end == addr {
        return Ok(0);
    }
    current_process()
        .ok_or(Errno::ESRCH)?
        .aspace()
        .protect(addr, end, prot)?;
    Ok(0)
}

const MREMAP_MAYMOVE: u64 = 1;

fn mremap(c: &mut Call<'_>) -> KResult<u64> {
    let (old, old_len, new_len, flags) = (
        c.a0(),
        c.a1().next_multiple_of(PAGE),
        c.a2().next_multiple_of(PAGE),
        c.a3(),
    );
    if old % PAGE != 0 || new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let p = current_process().ok_or(Errno::ESRCH)?;
    let a = p.aspace();
    let vma = a
        .vmas()
        .into_iter()
        .find(|v| v.start <= old && old < v.end)
        .ok_or(Errno::EFAULT)?;
    if new_len <= old_len {
        if vma.file.is_some() {
            let _ = crate::fs::filemap::flush_range(
                core::slice::from_ref(&vma),
                old + new_len,
                old + old_len,
            );
        }
        a.unmap(old + new_len, old + old_len)?;
        crate::fs::filemap::sweep();
        return Ok(old);
    }
    if vma.file.is_some() {
        // Growing a shared file mapping would need its new pages from the file's cache.
        return Err(Errno::EINVAL);
    }
    // Grow in place if the following range is free.
    let free_after = !a
        .vmas()
        .iter()
        .any(|v| v.start < old + new_len && v.end > old + old_len);
    if free_after && old + new_len <= USER_TOP {
        a.map_anon(old + old_len, old + new_len, vma.prot, &vma.name)?;
        return Ok(old);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let new = a.map_anon_free(new_len, vma.prot | PROT_WRITE, &vma.name)?;
    let mut buf = alloc::vec![0u8; 4096];
    let mut o = 0;
    while o < old_len {
        crate::arch::uaccess::copy_from_user(&mut buf, old + o)?;
        a.write_bytes(new + o, &buf)?;
        o += 4096;
    }
    if vma.prot & PROT_WRITE == 0 {
        a.protect(new, new + new_len, vma.prot)?;
    }
    a.unmap(old, old + old_len)?;
    Ok(new)
}

/// Advice must be one Linux knows, at a page-aligned address. MADV_DONTNEED drops private
/// anonymous pages (they read back as zeroes); other advice is accepted and ignored.
fn madvise(c: &mut Call<'_>) -> KResult<u64> {
    let known = matches!(c.a2(), 0..=4 | 8..=23 | 25 | 100 | 101);
    if !c.a0().is_multiple_of(PAGE) || !known {
        return Err(Errno::EINVAL);
    }
    const MADV_DONTNEED: u64 = 4;
    if c.a2() == MADV_DONTNEED {
        let end = c
            .a0()
            .checked_add(c.a1().next_multiple_of(PAGE))
            .ok_or(Errno::EINVAL)?;
        current_process()
            .ok_or(Errno::ESRCH)?
            .aspace()
            .discard(c.a0(), end)?;
    }
    Ok(0)
}

const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// Writes the shared file pages of the range back to their files (MS_ASYNC too: the write
/// is cheap next to a caller that wants to know it failed). ENOMEM if part of the range is
/// not mapped, as on Linux.
fn msync(c: &mut Call<'_>) -> KResult<u64> {
    let (addr, len, flags) = (c.a0(), c.a1(), c.a2());
    if !addr.is_multiple_of(PAGE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let end = addr
        .checked_add(len.next_multiple_of(PAGE))
        .ok_or(Errno::ENOMEM)?;
    let p = current_process().ok_or(Errno::ESRCH)?;
    let vmas = p.aspace().vmas();
    let covered: u64 = vmas
        .iter()
        .filter(|v| v.start < end && v.end > addr)
        .map(|v| v.end.min(end) - v.start.max(addr))
        .sum();
    if covered != end - addr {
        return Err(Errno::ENOMEM);
    }
    crate::fs::filemap::flush_range(&vmas, addr, end)?;
    Ok(0)
}
