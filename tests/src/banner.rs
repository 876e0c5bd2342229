//! Parsers for what AdrOS prints on the serial console at boot.
//!
//! The banner is a block framed by lines of `=`; inside it, ` memory: N MiB usable …`,
//! ` cpus: N …` and, once PCI enumeration lands, `lspci`-style lines such as
//! `00:1f.2 SATA controller [0106]: 8086:2922 …`.

/// Whether the framed banner block has been printed completely.
pub fn complete(serial: &str) -> bool {
    serial.lines().filter(|l| is_frame(l)).count() >= 2
}

fn is_frame(l: &str) -> bool {
    let t = l.trim();
    t.len() >= 8 && t.bytes().all(|b| b == b'=')
}

/// The lines between the first two frame lines, trimmed.
pub fn lines(serial: &str) -> Vec<&str> {
    let mut inside = false;
    let mut out = Vec::new();
    for l in serial.lines() {
        if is_frame(l) {
            if inside {
                break;
            }
            inside = true;
            continue;
        }
        if inside {
            out.push(l.trim());
        }
    }
    out
}

/// The value of a `key: …` line of the banner.
pub fn field<'a>(serial: &'a str, key: &str) -> Option<&'a str> {
    lines(serial).into_iter().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

fn first_number(s: &str) -> Option<u64> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Usable memory in MiB from ` memory: N MiB usable …`.
pub fn usable_mib(serial: &str) -> Option<u64> {
    first_number(field(serial, "memory")?)
}

/// CPU count from ` cpus: N …`.
pub fn cpus(serial: &str) -> Option<u64> {
    first_number(field(serial, "cpus")?)
}

/// Whether an `lspci`-style line: `bb:dd.f …` with hex bus/device and a function digit.
pub fn is_pci_line(l: &str) -> bool {
    let b = l.trim().as_bytes();
    b.len() > 8
        && b[0].is_ascii_hexdigit()
        && b[1].is_ascii_hexdigit()
        && b[2] == b':'
        && b[3].is_ascii_hexdigit()
        && b[4].is_ascii_hexdigit()
        && b[5] == b'.'
        && b[6].is_ascii_digit()
        && b[7] == b' '
}

/// The PCI lines anywhere in the transcript (the kernel may print them inside or after the
/// banner).
pub fn pci_lines(serial: &str) -> Vec<&str> {
    serial
        .lines()
        .map(str::trim)
        .filter(|l| is_pci_line(l))
        .collect()
}

/// The crash report (`!!! KERNEL PANIC` / `!!! KERNEL EXCEPTION` to the end), if any.
pub fn crash_report(serial: &str) -> Option<&str> {
    let i = serial
        .find("!!! KERNEL PANIC")
        .or_else(|| serial.find("!!! KERNEL EXCEPTION"))?;
    Some(&serial[i..])
}

/// The kernel's hang report (from `!!! hang report` to its end line), which the harness
/// asks for with an NMI when a guest times out; None if there is none.
pub fn hang_report(serial: &str) -> Option<&str> {
    let i = serial.find("!!! hang report")?;
    let rest = &serial[i..];
    let end = rest
        .find(crate::qemu::HANG_REPORT_END)
        .map_or(rest.len(), |e| {
            e + rest[e..].find('\n').unwrap_or(rest.len() - e)
        });
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "AdrOS 0.1.0 starting\nAdrOS: command line: console=ttyS0\n\
        ================================================================\n \
        AdrOS 0.1.0 — x86_64, NetBSD rump kernel hypercall ABI\n \
        memory: 1022 MiB usable of 1024 MiB RAM top; 1000 MiB free (256000 of 261000 frames)\n \
        cpus: 2 (from the ACPI MADT)\n \
        00:00.0 Host bridge [0600]: 8086:29c0\n \
        00:03.0 SCSI storage controller [0100]: 1af4:1001 virtio block\n\
        ================================================================\nAdrOS: idling\n";

    #[test]
    fn finds_the_hang_report() {
        let s = "PASS: a\n!!! hang report (NMI): CPU 0 was at x\n  thread 1\n!!! end of hang report; continuing\nmore\n";
        let r = hang_report(s).unwrap();
        assert!(r.starts_with("!!! hang report"));
        assert!(r.ends_with("continuing"));
        assert!(hang_report("PASS: a\n").is_none());
    }

    #[test]
    fn parses_the_banner() {
        assert!(complete(SAMPLE));
        assert!(!complete(&SAMPLE[..200]));
        assert_eq!(usable_mib(SAMPLE), Some(1022));
        assert_eq!(cpus(SAMPLE), Some(2));
        assert_eq!(pci_lines(SAMPLE).len(), 2);
        assert!(pci_lines(SAMPLE)[1].contains("1af4:1001"));
        assert!(crash_report(SAMPLE).is_none());
    }

    #[test]
    fn pci_line_shape() {
        assert!(is_pci_line("00:1f.2 SATA controller [0106]: 8086:2922"));
        assert!(!is_pci_line("memory: 10 MiB"));
        assert!(!is_pci_line("12:34:56 time"));
    }

    #[test]
    fn finds_crash_reports() {
        let s = "boot\n!!! KERNEL PANIC on CPU 0: boom\n    at x.rs:1:1\n";
        assert!(crash_report(s).unwrap().contains("boom"));
    }
}
