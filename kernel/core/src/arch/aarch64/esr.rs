//! Decoding the Exception Syndrome Register (ESR_ELx) for fault reports: the exception
//! class, and for aborts the fault status (what kind of fault, at which table level) and
//! whether it was a write. Plain logic, tested on the host.

/// The exception class (ESR bits 31:26) in words.
pub fn class_name(esr: u64) -> &'static str {
    match (esr >> 26) & 0x3f {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "WFI/WFE trapped",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC from AArch64",
        0x16 => "HVC from AArch64",
        0x17 => "SMC from AArch64",
        0x18 => "MSR/MRS/system instruction trapped",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at the current EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at the current EL",
        0x26 => "SP alignment fault",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "other exception class",
    }
}

/// Whether the class is an instruction or data abort (FAR holds the faulting address).
pub fn is_abort(esr: u64) -> bool {
    matches!((esr >> 26) & 0x3f, 0x20 | 0x21 | 0x24 | 0x25)
}

/// For aborts: the fault status code (ISS bits 5:0) in words, with the table level.
pub fn fault_status(esr: u64) -> (&'static str, Option<u8>) {
    let fsc = esr & 0x3f;
    let level = Some((fsc & 3) as u8);
    match fsc >> 2 {
        0b0000 => ("address size fault", level),
        0b0001 => ("translation fault", level),
        0b0010 => ("access flag fault", level),
        0b0011 => ("permission fault", level),
        _ => match fsc {
            0b01_0000 => ("synchronous external abort", None),
            0b10_0001 => ("alignment fault", None),
            0b11_0000 => ("TLB conflict abort", None),
            _ => ("other fault status", None),
        },
    }
}

/// For data aborts: the access was a write (ISS bit 6, WnR).
pub fn is_write(esr: u64) -> bool {
    matches!((esr >> 26) & 0x3f, 0x24 | 0x25) && esr & (1 << 6) != 0
}

/// One line: `data abort at the current EL: translation fault (level 3), write`.
pub fn describe(esr: u64, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    write!(out, "{}", class_name(esr))?;
    if is_abort(esr) {
        let (what, level) = fault_status(esr);
        write!(out, ": {what}")?;
        if let Some(l) = level {
            write!(out, " (level {l})")?;
        }
        if matches!((esr >> 26) & 0x3f, 0x24 | 0x25) {
            write!(out, ", {}", if is_write(esr) { "write" } else { "read" })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn decodes_a_kernel_write_to_an_unmapped_page() {
        // EC 0x25, IL, WnR, DFSC = translation fault level 3 (0b000111).
        let esr = (0x25 << 26) | (1 << 25) | (1 << 6) | 0b00_0111;
        let mut s = String::new();
        describe(esr, &mut s).unwrap();
        assert_eq!(
            s,
            "data abort at the current EL: translation fault (level 3), write"
        );
    }

    #[test]
    fn decodes_other_classes() {
        assert_eq!(class_name(0x3c << 26), "BRK instruction");
        assert_eq!(class_name(0), "unknown reason (undefined instruction)");
        let mut s = String::new();
        describe((0x21 << 26) | 0b00_1111, &mut s).unwrap();
        assert_eq!(
            s,
            "instruction abort at the current EL: permission fault (level 3)"
        );
        assert!(!is_write(0x21 << 26 | 1 << 6));
        assert_eq!(fault_status(0b10_0001), ("alignment fault", None));
    }
}
