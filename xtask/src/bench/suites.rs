//! The guest suites' figures and the benchmark-program steps that measure them.

use super::*;

/// One invocation of the benchmark program in the guest script.
pub(super) struct Step {
    /// `adros-bench` arguments.
    pub(super) args: String,
    /// The figures it prints.
    pub(super) figures: Vec<String>,
}

fn fig(suite: &'static str, name: &str, unit: &'static str, better: Better, what: &str) -> Figure {
    Figure {
        suite,
        name: name.to_string(),
        unit,
        better,
        what: what.to_string(),
    }
}

/// The figures and guest steps of `suite`.
pub(super) fn suite(
    suite: &str,
    smp: u32,
    net: Option<&netpeer::Servers>,
    ext2_driver: &str,
) -> (Vec<Figure>, Vec<Step>) {
    use Better::*;
    let step = |args: &str, figures: &[&str]| Step {
        args: args.to_string(),
        figures: figures.iter().map(|s| s.to_string()).collect(),
    };
    match suite {
        "syscall" => (
            vec![
                fig(
                    "syscall",
                    "syscall.getpid",
                    "us",
                    Lower,
                    "getpid round trip",
                ),
                fig(
                    "syscall",
                    "syscall.clock_gettime",
                    "us",
                    Lower,
                    "libc clock_gettime(CLOCK_MONOTONIC) (the vDSO where there is one)",
                ),
                fig(
                    "syscall",
                    "syscall.fork_wait",
                    "ms",
                    Lower,
                    "fork + _exit + waitpid",
                ),
                fig(
                    "syscall",
                    "syscall.fork_exec_wait",
                    "ms",
                    Lower,
                    "fork + exec /bin/busybox true + waitpid",
                ),
                fig(
                    "syscall",
                    "syscall.pipe_throughput",
                    "MB/s",
                    Higher,
                    "64 MiB through a pipe in 64 KiB writes, to another process",
                ),
                fig(
                    "syscall",
                    "syscall.pipe_pingpong",
                    "us",
                    Lower,
                    "1-byte round trip between two processes over two pipes",
                ),
                fig(
                    "syscall",
                    "syscall.page_fault",
                    "us",
                    Lower,
                    "first touch of one 4 KiB page of a fresh 64 MiB anonymous mapping",
                ),
                fig(
                    "syscall",
                    "syscall.mmap_munmap",
                    "us",
                    Lower,
                    "mmap + munmap of 1 MiB anonymous (untouched)",
                ),
            ],
            vec![
                step("getpid", &["syscall.getpid"]),
                step("clock", &["syscall.clock_gettime"]),
                step("fork", &["syscall.fork_wait"]),
                step("forkexec", &["syscall.fork_exec_wait"]),
                step("pipe", &["syscall.pipe_throughput"]),
                step("pingpong", &["syscall.pipe_pingpong"]),
                step("pagefault", &["syscall.page_fault"]),
                step("mmap", &["syscall.mmap_munmap"]),
            ],
        ),
        "boot" => (
            vec![
                fig(
                    "boot",
                    "boot.qemu_to_command",
                    "s",
                    Lower,
                    "QEMU start to the guest command's first output (wall clock, host)",
                ),
                fig(
                    "boot",
                    "boot.uptime_at_command",
                    "s",
                    Lower,
                    "kernel uptime (/proc/uptime) when the guest command starts",
                ),
            ],
            // Read by the script's first line (see `script`), not by the program.
            vec![],
        ),
        "fs" => (
            vec![
                fig(
                    "fs",
                    "fs.create",
                    "us",
                    Lower,
                    "tmpfs: create (open O_CREAT + close) of one of 10,000 files",
                ),
                fig(
                    "fs",
                    "fs.stat",
                    "us",
                    Lower,
                    "tmpfs: stat of one of 10,000 files",
                ),
                fig(
                    "fs",
                    "fs.unlink",
                    "us",
                    Lower,
                    "tmpfs: unlink of one of 10,000 files",
                ),
                fig(
                    "fs",
                    "fs.ext2_create",
                    "ms",
                    Lower,
                    "ext2 on virtio-blk: create 10,000 empty files in one directory (total)",
                ),
                fig(
                    "fs",
                    "fs.ext2_list_stat",
                    "ms",
                    Lower,
                    "ext2: readdir of those 10,000 entries and a stat of each (total)",
                ),
                fig(
                    "fs",
                    "fs.ext2_unlink",
                    "ms",
                    Lower,
                    "ext2: unlink the 10,000 files and rmdir (total)",
                ),
                fig(
                    "fs",
                    "fs.ext2_umount",
                    "ms",
                    Lower,
                    "ext2: umount afterwards (every change written to the disk)",
                ),
            ],
            vec![
                step(
                    "fs /tmp/adros-bench-fs",
                    &["fs.create", "fs.stat", "fs.unlink"],
                ),
                step(
                    &format!("ext2 /dev/vda /tmp/ext2 {EXT2_ENTRIES} {ext2_driver}"),
                    &[
                        "fs.ext2_create",
                        "fs.ext2_list_stat",
                        "fs.ext2_unlink",
                        "fs.ext2_umount",
                    ],
                ),
            ],
        ),
        "smp" => {
            let one = format!("smp.cpu_{smp}proc_1vcpu");
            let all = format!("smp.cpu_{smp}proc_{smp}vcpu");
            (
                vec![
                    fig(
                        "smp",
                        &one,
                        "ms",
                        Lower,
                        &format!("{smp} CPU-bound processes (fixed work each) pinned to CPU 0"),
                    ),
                    fig(
                        "smp",
                        &all,
                        "ms",
                        Lower,
                        &format!("the same {smp} processes free to use {smp} vCPUs"),
                    ),
                    fig(
                        "smp",
                        "smp.speedup",
                        "x",
                        Higher,
                        &format!("speedup of {smp} vCPUs over 1 (same boot)"),
                    ),
                    fig(
                        "smp",
                        "smp.pipe_pingpong_xcpu",
                        "us",
                        Lower,
                        "1-byte pipe round trip, processes pinned to CPU 0 and CPU 1",
                    ),
                ],
                vec![
                    step(&format!("smp {smp}"), &[&one, &all, "smp.speedup"]),
                    step("pingpong-xcpu", &["smp.pipe_pingpong_xcpu"]),
                ],
            )
        }
        "net" => {
            let Some(p) = net else {
                return (vec![], vec![]);
            };
            use netpeer::*;
            (
                vec![
                    fig(
                        "net",
                        "net.tcp_rx",
                        "MiB/s",
                        Higher,
                        &format!("TCP host → guest: {NET_RX_MIB} MiB read in 64 KiB calls"),
                    ),
                    fig(
                        "net",
                        "net.tcp_tx",
                        "MiB/s",
                        Higher,
                        &format!(
                            "TCP guest → host: {NET_TX_MIB} MiB in 64 KiB writes, until the host has it all"
                        ),
                    ),
                    fig(
                        "net",
                        "net.tcp_rr",
                        "us",
                        Lower,
                        "TCP 1-byte request/response round trip (TCP_NODELAY)",
                    ),
                    fig(
                        "net",
                        "net.tcp_connect",
                        "conn/s",
                        Higher,
                        "TCP connect + 1 byte from the server + close, one at a time",
                    ),
                ],
                vec![
                    step(
                        &format!("net-rx 10.0.2.2 {} {NET_RX_MIB}", p.rx),
                        &["net.tcp_rx"],
                    ),
                    step(
                        &format!("net-tx 10.0.2.2 {} {NET_TX_MIB}", p.tx),
                        &["net.tcp_tx"],
                    ),
                    step(
                        &format!("net-rr 10.0.2.2 {} {NET_RR}", p.rr),
                        &["net.tcp_rr"],
                    ),
                    step(
                        &format!("net-conn 10.0.2.2 {} {NET_CONN}", p.conn),
                        &["net.tcp_connect"],
                    ),
                ],
            )
        }
        _ => (vec![], vec![]),
    }
}
