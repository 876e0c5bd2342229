//! ELF64 loading for static and static-PIE x86_64 executables, and the initial user stack
//! (argv, envp, auxv) the System V ABI prescribes.

use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use crate::mm::uspace::{
    AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, STACK_SIZE, STACK_TOP,
};

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
/// Where a static-PIE executable is placed.
const PIE_BASE: u64 = 0x5555_5555_4000;

#[derive(Clone, Copy, Debug)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
}

#[derive(Debug)]
pub struct ElfInfo {
    pub entry: u64,
    pub phdrs: Vec<Phdr>,
    pub phoff: u64,
    pub phentsize: u16,
    pub is_pie: bool,
}

fn u16_at(b: &[u8], o: usize) -> KResult<u16> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(Errno::ENOEXEC)
}
fn u32_at(b: &[u8], o: usize) -> KResult<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(Errno::ENOEXEC)
}
fn u64_at(b: &[u8], o: usize) -> KResult<u64> {
    let s = b.get(o..o + 8).ok_or(Errno::ENOEXEC)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Parses and validates the headers of an x86_64 ELF executable held in `image`.
pub fn parse(image: &[u8]) -> KResult<ElfInfo> {
    if image.len() < 64 || &image[..4] != b"\x7fELF" {
        return Err(Errno::ENOEXEC);
    }
    if image[4] != 2 || image[5] != 1 || u16_at(image, 18)? != 62 {
        return Err(Errno::ENOEXEC); // not ELF64, little endian, x86_64
    }
    let etype = u16_at(image, 16)?;
    if etype != ET_EXEC && etype != ET_DYN {
        return Err(Errno::ENOEXEC);
    }
    let entry = u64_at(image, 24)?;
    let phoff = u64_at(image, 32)?;
    let phentsize = u16_at(image, 54)?;
    let phnum = u16_at(image, 56)?;
    if phentsize < 56 || phnum == 0 || phnum > 128 {
        return Err(Errno::ENOEXEC);
    }
    let mut phdrs = Vec::new();
    for i in 0..phnum as usize {
        let o = usize::try_from(phoff).map_err(|_| Errno::ENOEXEC)? + i * phentsize as usize;
        let p = Phdr {
            p_type: u32_at(image, o)?,
            p_flags: u32_at(image, o + 4)?,
            p_offset: u64_at(image, o + 8)?,
            p_vaddr: u64_at(image, o + 16)?,
            p_filesz: u64_at(image, o + 32)?,
            p_memsz: u64_at(image, o + 40)?,
        };
        if p.p_type == PT_INTERP {
            // Dynamically linked: AdrOS runs static executables only (for now).
            return Err(Errno::ENOEXEC);
        }
        if p.p_type == PT_LOAD
            && (p.p_filesz > p.p_memsz
                || p.p_offset
                    .checked_add(p.p_filesz)
                    .is_none_or(|e| e > image.len() as u64))
        {
            return Err(Errno::ENOEXEC);
        }
        phdrs.push(p);
    }
    if !phdrs.iter().any(|p| p.p_type == PT_LOAD) {
        return Err(Errno::ENOEXEC);
    }
    Ok(ElfInfo {
        entry,
        phdrs,
        phoff,
        phentsize,
        is_pie: etype == ET_DYN,
    })
}

/// What the loader produced.
pub struct Loaded {
    pub entry: u64,
    pub phdr_addr: u64,
    pub phnum: u64,
    pub brk: u64,
    pub base: u64,
}

/// Maps every PT_LOAD segment of `image` into `aspace`.
pub fn load(aspace: &AddressSpace, image: &[u8], info: &ElfInfo) -> KResult<Loaded> {
    let base = if info.is_pie { PIE_BASE } else { 0 };
    let mut top = 0u64;
    let mut phdr_addr = 0u64;
    for p in info.phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        let va = base.checked_add(p.p_vaddr).ok_or(Errno::ENOEXEC)?;
        let start = va & !(PAGE - 1);
        let end = va
            .checked_add(p.p_memsz)
            .ok_or(Errno::ENOEXEC)?
            .next_multiple_of(PAGE);
        if end > crate::mm::uspace::MMAP_BASE || start < PAGE {
            return Err(Errno::ENOEXEC);
        }
        let mut prot = 0;
        if p.p_flags & 4 != 0 {
            prot |= PROT_READ;
        }
        if p.p_flags & 2 != 0 {
            prot |= PROT_WRITE;
        }
        if p.p_flags & 1 != 0 {
            prot |= PROT_EXEC;
        }
        // Segments may share a page at their edges: map only what is not mapped yet.
        let existing = aspace.vmas();
        let mut s = start;
        for v in existing.iter().filter(|v| v.start < end && v.end > start) {
            if v.start <= s && v.end > s {
                s = v.end;
            }
        }
        if s < end {
            aspace.map_anon_keep(s, end, prot, "exe")?;
        }
        // Widen permissions of a shared edge page if needed.
        if s > start {
            aspace.add_prot(start, s, prot);
        }
        let data = &image[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize];
        aspace.write_bytes(va, data)?;
        if info.phoff >= p.p_offset && info.phoff < p.p_offset + p.p_filesz {
            phdr_addr = va + (info.phoff - p.p_offset);
        }
        top = top.max(end);
    }
    if let Some(p) = info.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        phdr_addr = base + p.p_vaddr;
    }
    Ok(Loaded {
        entry: base + info.entry,
        phdr_addr,
        phnum: info.phdrs.len() as u64,
        brk: top,
        base,
    })
}

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;

/// Builds the initial stack (8 MiB VMA below STACK_TOP) and returns the user rsp.
pub fn setup_stack(
    aspace: &AddressSpace,
    ld: &Loaded,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    uid: u32,
    gid: u32,
) -> KResult<u64> {
    aspace.map_anon(
        STACK_TOP - STACK_SIZE,
        STACK_TOP,
        PROT_READ | PROT_WRITE,
        "[stack]",
    )?;
    let mut sp = STACK_TOP;
    let push_bytes = |sp: &mut u64, b: &[u8]| -> KResult<u64> {
        *sp -= b.len() as u64;
        aspace.write_bytes(*sp, b)?;
        Ok(*sp)
    };
    let with_nul = |v: &[u8]| {
        let mut x = v.to_vec();
        x.push(0);
        x
    };
    let execfn_at = push_bytes(&mut sp, &with_nul(execfn))?;
    let platform_at = push_bytes(&mut sp, b"x86_64\0")?;
    let mut env_at = Vec::new();
    for e in envp.iter().rev() {
        env_at.push(push_bytes(&mut sp, &with_nul(e))?);
    }
    env_at.reverse();
    let mut arg_at = Vec::new();
    for a in argv.iter().rev() {
        arg_at.push(push_bytes(&mut sp, &with_nul(a))?);
    }
    arg_at.reverse();
    let mut rnd = [0u8; 16];
    crate::proc::random_bytes(&mut rnd);
    let random_at = push_bytes(&mut sp, &rnd)?;
    sp &= !15;
    let auxv: [(u64, u64); 17] = [
        (AT_PHDR, ld.phdr_addr),
        (AT_PHENT, 56),
        (AT_PHNUM, ld.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, ld.entry),
        (AT_UID, u64::from(uid)),
        (AT_EUID, u64::from(uid)),
        (AT_GID, u64::from(gid)),
        (AT_EGID, u64::from(gid)),
        (AT_PLATFORM, platform_at),
        (AT_HWCAP, 0x178bfbff),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_RANDOM, random_at),
        (AT_EXECFN, execfn_at),
    ];
    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(arg_at.iter());
    words.push(0);
    words.extend(env_at.iter());
    words.push(0);
    for (k, v) in auxv {
        words.push(k);
        words.push(v);
    }
    words.push(AT_NULL);
    words.push(0);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    sp -= bytes.len() as u64;
    sp &= !15;
    aspace.write_bytes(sp, &bytes)?;
    Ok(sp)
}
