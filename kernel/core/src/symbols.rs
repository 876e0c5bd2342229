//! Kernel symbol table for backtraces. `cargo xtask build` writes `nm -n` output of the
//! kernel ELF next to it and GRUB loads it as the `symbols` module.

use alloc::vec::Vec;
use core::fmt;

pub struct SymbolTable {
    /// (address, name), sorted by address.
    entries: Vec<(u64, &'static str)>,
}

impl SymbolTable {
    /// Parses `nm -n` lines: `ffffffff80200000 T name`. Malformed lines are skipped.
    pub fn parse(text: &'static str) -> Self {
        let mut entries: Vec<(u64, &'static str)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ' ');
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                matches!(kind, "T" | "t" | "W" | "w").then_some((addr, name))
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The symbol containing `addr` and the offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&'static str, u64)> {
        let i = self.entries.partition_point(|e| e.0 <= addr);
        let (a, n) = *self.entries.get(i.checked_sub(1)?)?;
        Some((n, addr - a))
    }
}

static TABLE: spin::Once<SymbolTable> = spin::Once::new();

pub fn install(t: SymbolTable) {
    TABLE.call_once(|| t);
}

/// The symbol containing `addr` in the installed table, and the offset into it.
pub fn lookup(addr: u64) -> Option<(&'static str, u64)> {
    TABLE.get()?.lookup(addr)
}

/// Formats an address as `0x… name+0xoff`.
pub struct Sym(pub u64);

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TABLE.get().and_then(|t| t.lookup(self.0)) {
            Some((name, off)) => write!(f, "{:#018x} {}+{:#x}", self.0, name, off),
            None => write!(f, "{:#018x} ?", self.0),
        }
    }
}

/// Prints the chain of frame records from `fp` — each record is (caller's frame pointer,
/// return address), the layout both x86_64 (`rbp`) and aarch64 (`x29`) use — through
/// `print`, folding repeated frames. Stops at a null, misaligned (`align`), non-kernel
/// (below `lowest`) or unmapped record, or after 64 frames.
#[cfg(target_os = "none")]
pub fn print_frame_chain(mut fp: u64, align: u64, lowest: u64, print: fn(fmt::Arguments)) {
    print(format_args!("    backtrace:\n"));
    let (mut last, mut repeats) = (0, 0);
    for depth in 0..64 {
        if fp == 0 || !fp.is_multiple_of(align) || fp < lowest {
            break;
        }
        if !crate::mm::paging::mapped_for_report(fp)
            || !crate::mm::paging::mapped_for_report(fp + 8)
        {
            break;
        }
        // SAFETY: both words were just checked to be mapped kernel memory.
        let (next, ret) = unsafe { (*(fp as *const u64), *((fp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        if ret == last {
            repeats += 1;
        } else {
            if repeats > 0 {
                print(format_args!(
                    "      ... previous frame repeated {repeats} more times\n"
                ));
            }
            repeats = 0;
            print(format_args!("      #{depth:<2} {}\n", Sym(ret)));
        }
        last = ret;
        fp = next;
    }
    if repeats > 0 {
        print(format_args!(
            "      ... previous frame repeated {repeats} more times\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lookup_between_symbols() {
        let t = SymbolTable::parse(
            "ffffffff80200000 T kmain\nffffffff80200100 t helper\nbogus line\nffffffff80300000 D data\n",
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(0xffffffff80200010), Some(("kmain", 0x10)));
        assert_eq!(t.lookup(0xffffffff80200100), Some(("helper", 0)));
        assert_eq!(t.lookup(0x1000), None);
    }
}
