//! ELF64 loading for x86_64 executables — static, static-PIE and dynamically linked ones,
//! whose program interpreter (`PT_INTERP`, e.g. glibc's `ld-linux-x86-64.so.2`) is loaded
//! beside them — and the initial user stack (argv, envp, auxv) the System V ABI prescribes.

use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use crate::mm::uspace::{
    AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, STACK_SIZE, STACK_TOP,
};

use elf::abi::{EI_NIDENT, ET_DYN, ET_EXEC, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use elf::endian::LittleEndian;
use elf::file::{Class, ELF64_EHDR_TAILSIZE, FileHeader};
use elf::parse::ParseAt;
use elf::segment::ProgramHeader;
use zerocopy::IntoBytes;

/// Where a position-independent executable is placed (where Linux puts it without ASLR).
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Where the program interpreter of a dynamically linked executable is placed: below the
/// mmap area, far above any executable.
pub const INTERP_BASE: u64 = 0x7e00_0000_0000;
/// The longest `PT_INTERP` path accepted (Linux allows up to PATH_MAX).
const INTERP_MAX: u64 = 4096;

#[derive(Clone, Copy, Debug)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
}

#[derive(Clone, Debug)]
pub struct ElfInfo {
    pub entry: u64,
    pub phdrs: Vec<Phdr>,
    pub phoff: u64,
    pub phentsize: u16,
    pub is_pie: bool,
    /// The program interpreter named by `PT_INTERP`, if any.
    pub interp: Option<alloc::string::String>,
}

/// Parses and validates the headers of an x86_64 ELF executable held in `image` (with the
/// `elf` crate: ELF64, little endian, x86_64, `ET_EXEC` or `ET_DYN`, every `PT_LOAD` and the
/// `PT_INTERP` path inside the image).
pub fn parse(image: &[u8]) -> KResult<ElfInfo> {
    let bad = |_| Errno::ENOEXEC;
    let ident =
        elf::file::parse_ident::<LittleEndian>(image.get(..EI_NIDENT).ok_or(Errno::ENOEXEC)?)
            .map_err(bad)?;
    if ident.1 != Class::ELF64 {
        return Err(Errno::ENOEXEC);
    }
    let tail = image
        .get(EI_NIDENT..EI_NIDENT + ELF64_EHDR_TAILSIZE)
        .ok_or(Errno::ENOEXEC)?;
    let ehdr = FileHeader::parse_tail(ident, tail).map_err(bad)?;
    if ehdr.e_machine != crate::syscall::arch::ELF_MACHINE
        || (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN)
    {
        return Err(Errno::ENOEXEC);
    }
    let (phoff, phentsize, phnum) = (ehdr.e_phoff, ehdr.e_phentsize, ehdr.e_phnum);
    if usize::from(phentsize) < ProgramHeader::size_for(Class::ELF64) || phnum == 0 || phnum > 128 {
        return Err(Errno::ENOEXEC);
    }
    let table = usize::try_from(phoff).map_err(|_| Errno::ENOEXEC)?;
    let mut phdrs = Vec::new();
    let mut interp = None;
    for i in 0..usize::from(phnum) {
        let mut at = table + i * usize::from(phentsize);
        let h = ProgramHeader::parse_at(LittleEndian, Class::ELF64, &mut at, image).map_err(bad)?;
        let p = Phdr {
            p_type: h.p_type,
            p_flags: h.p_flags,
            p_offset: h.p_offset,
            p_vaddr: h.p_vaddr,
            p_filesz: h.p_filesz,
            p_memsz: h.p_memsz,
        };
        if p.p_type == PT_INTERP {
            // A NUL-terminated absolute path inside the file; a second PT_INTERP is refused.
            if interp.is_some() || p.p_filesz < 2 || p.p_filesz > INTERP_MAX {
                return Err(Errno::ENOEXEC);
            }
            let end = p.p_offset.checked_add(p.p_filesz).ok_or(Errno::ENOEXEC)?;
            let raw = image
                .get(p.p_offset as usize..end as usize)
                .ok_or(Errno::ENOEXEC)?;
            let path = raw.strip_suffix(&[0]).ok_or(Errno::ENOEXEC)?;
            if path.contains(&0) {
                return Err(Errno::ENOEXEC);
            }
            let path = core::str::from_utf8(path).map_err(|_| Errno::ENOEXEC)?;
            interp = Some(alloc::string::String::from(path));
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
        entry: ehdr.e_entry,
        phdrs,
        phoff,
        phentsize,
        is_pie: ehdr.e_type == ET_DYN,
        interp,
    })
}

/// What the loader produced.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The executable's own entry point (`AT_ENTRY`).
    pub entry: u64,
    /// Where user space starts: the interpreter's entry point, or `entry` without one.
    pub start: u64,
    /// Where the interpreter was loaded (`AT_BASE`), or 0.
    pub interp_base: u64,
    pub phdr_addr: u64,
    pub phnum: u64,
    pub brk: u64,
    pub base: u64,
}

/// Maps every PT_LOAD segment of `image` into `aspace`, a position-independent image at
/// `pie_base`.
pub fn load(aspace: &AddressSpace, image: &[u8], info: &ElfInfo, pie_base: u64) -> KResult<Loaded> {
    let base = if info.is_pie { pie_base } else { 0 };
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
        if p.p_flags & PF_R != 0 {
            prot |= PROT_READ;
        }
        if p.p_flags & PF_W != 0 {
            prot |= PROT_WRITE;
        }
        if p.p_flags & PF_X != 0 {
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
        start: base + info.entry,
        interp_base: 0,
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
const AT_SYSINFO_EHDR: u64 = 33;

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
    let platform_at = push_bytes(&mut sp, crate::syscall::arch::PLATFORM)?;
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
    let vdso = super::vdso::map(aspace);
    let auxv: [(u64, u64); 18] = [
        // AT_IGNORE (1) stands in when there is no vDSO.
        vdso.map_or((1, 0), |at| (AT_SYSINFO_EHDR, at)),
        (AT_PHDR, ld.phdr_addr),
        (AT_PHENT, 56),
        (AT_PHNUM, ld.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, ld.interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, ld.entry),
        (AT_UID, u64::from(uid)),
        (AT_EUID, u64::from(uid)),
        (AT_GID, u64::from(gid)),
        (AT_EGID, u64::from(gid)),
        (AT_PLATFORM, platform_at),
        (AT_HWCAP, crate::syscall::arch::HWCAP),
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
    let bytes = words.as_bytes();
    sp -= bytes.len() as u64;
    sp &= !15;
    aspace.write_bytes(sp, bytes)?;
    Ok(sp)
}
