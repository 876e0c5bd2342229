//! s12: networking over QEMU's user-mode network, on each stack: native (e1000 + smoltcp)
//! and rump (NetBSD's wm(4) and TCP/IP in the rump kernel; skipped, and counted as skipped,
//! when the kernel was built without the NetBSD components).
//! Peers run on the host, bound to 127.0.0.1 only, and the guest reaches them as 10.0.2.2;
//! a guest server is reached through a `hostfwd` rule (also bound to 127.0.0.1). Bytes are
//! checked exactly: a 1 MiB HTTP body and a 1 MiB guest file by MD5 against the host's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use adros_tests::{Boot, banner, rump_linked, skip};

/// Shell prelude: waits (up to 30 s) until DHCP has configured the interface.
const WAIT_DHCP: &str = "i=0; while ! grep -q 'addr=10.0.2.15/24' /proc/drivers; do i=$((i+1)); [ $i -gt 300 ] && echo DHCP-TIMEOUT && break; sleep 0.1; done; ";

/// Whether `stack` can run here (reports the skip when not).
fn available(test: &str, stack: &str) -> bool {
    if stack == "rump" && !rump_linked() {
        skip(
            test,
            "no NetBSD source: the kernel was built without the rump components",
        );
        return false;
    }
    true
}

/// Boots with an e1000 on user networking (`net` = extra `-netdev user` options) served by
/// `stack` (`net.stack=`), runs `cmd` with /bin/sh -c; returns (output, exit status).
fn exec(name: &str, stack: &str, net: &str, cmd: &str) -> (String, i32) {
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new(name)
        .net(net)
        .args(&format!("loglevel=4 net.stack={stack} adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, status) = t.exec_result();
    (out, status)
}

/// The host's `md5sum` of `data`.
fn md5(data: &[u8]) -> String {
    let mut c = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// 1 MiB of deterministic pseudo-random bytes.
fn body() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Host peers on 127.0.0.1: an HTTP server (GET /blob: the 1 MiB body; anything else: one
/// "hello N" line), a UDP echo server, and a port nobody listens on.
struct Peers {
    http: u16,
    udp: u16,
    closed: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn start_peers(blob: Arc<Vec<u8>>) -> Peers {
    let stop = Arc::new(AtomicBool::new(false));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let st = stop.clone();
    thread::spawn(move || {
        let mut n = 0;
        while !st.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    n += 1;
                    let blob = blob.clone();
                    thread::spawn(move || {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut req = Vec::new();
                        let mut b = [0u8; 1024];
                        // A request ends with an empty line; a raw client sends nothing.
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match c.read(&mut b) {
                                Ok(0) | Err(_) => break,
                                Ok(k) => req.extend_from_slice(&b[..k]),
                            }
                        }
                        if req.starts_with(b"GET /blob ") {
                            let h = format!(
                                "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                                blob.len()
                            );
                            let _ = c.write_all(h.as_bytes());
                            let _ = c.write_all(&blob);
                        } else {
                            let _ = c.write_all(format!("hello {n}\n").as_bytes());
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = u.local_addr().unwrap().port();
    u.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let st = stop.clone();
    thread::spawn(move || {
        let mut b = [0u8; 65536];
        while !st.load(Ordering::Relaxed) {
            if let Ok((n, from)) = u.recv_from(&mut b) {
                let _ = u.send_to(&b[..n], from);
            }
        }
    });
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    Peers {
        http,
        udp,
        closed,
        stop,
    }
}

fn line_with<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines().map(str::trim).find(|l| l.starts_with(prefix))
}

#[test]
fn dhcp_configures_eth0_and_ping_gets_three_replies() {
    let (out, st) = exec(
        "s12_net-dhcp_ping",
        "native",
        "",
        &format!(
            "{WAIT_DHCP} grep '^net' /proc/drivers; ifconfig eth0; route -n; ping -c 3 10.0.2.2; echo ping-rc=$?"
        ),
    );
    assert_eq!(st, 0, "output:\n{out}");
    assert!(
        !out.contains("DHCP-TIMEOUT"),
        "no DHCP lease in 30 s:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == "net.stack=native"),
        "output:\n{out}"
    );
    let eth = line_with(&out, "net eth0 e1000").unwrap_or_else(|| panic!("no eth0 line:\n{out}"));
    for want in [
        "link=up",
        "addr=10.0.2.15/24",
        "gateway=10.0.2.2",
        "dns=10.0.2.3",
        "mac=52-54-00-12-34-56",
    ] {
        assert!(eth.contains(want), "{want} missing from {eth:?}");
    }
    check_ifconfig_and_route(&out);
    assert!(
        out.contains("3 packets transmitted, 3 packets received, 0% packet loss"),
        "output:\n{out}"
    );
    let replies = out
        .lines()
        .filter(|l| l.starts_with("64 bytes from 10.0.2.2: seq="))
        .count();
    assert_eq!(replies, 3, "output:\n{out}");
    assert!(out.contains("ping-rc=0"), "output:\n{out}");
}

/// busybox ifconfig (interface ioctls, /proc/net/dev) and route (/proc/net/route) show
/// eth0 with the DHCP address, QEMU's MAC and the default route, whichever stack runs.
fn check_ifconfig_and_route(out: &str) {
    assert!(
        out.contains("inet addr:10.0.2.15  Bcast:10.0.2.255  Mask:255.255.255.0"),
        "ifconfig:\n{out}"
    );
    assert!(out.contains("HWaddr 52:54:00:12:34:56"), "ifconfig:\n{out}");
    assert!(
        out.contains("UP BROADCAST RUNNING MULTICAST  MTU:1500"),
        "ifconfig:\n{out}"
    );
    let default = out
        .lines()
        .find(|l| l.starts_with("0.0.0.0"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(
        default.as_deref(),
        Some(
            &[
                "0.0.0.0", "10.0.2.2", "0.0.0.0", "UG", "0", "0", "0", "eth0"
            ][..]
        ),
        "route -n:\n{out}"
    );
}

/// The rump stack: NetBSD's wm(4) owns the e1000 and NetBSD's DHCP client configures it;
/// `ifconfig`/`route` show it as eth0 (the interface ioctls and /proc/net answered from the
/// rump kernel's own tables); `ping` (a raw ICMP socket in the rump kernel) gets its replies.
#[test]
fn dhcp_configures_wm0_and_ping_gets_three_replies_rump() {
    let name = "s12_net-dhcp_ping_rump";
    if !available(name, "rump") {
        return;
    }
    let (out, st) = exec(
        name,
        "rump",
        "",
        &format!(
            "{WAIT_DHCP} grep -E '^(net|pci 00:02.0)' /proc/drivers; ifconfig eth0; route -n; ping -c 3 10.0.2.2; echo ping-rc=$?"
        ),
    );
    assert_eq!(st, 0, "output:\n{out}");
    assert!(
        !out.contains("DHCP-TIMEOUT"),
        "no DHCP lease in 30 s:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == "net.stack=rump"),
        "output:\n{out}"
    );
    assert!(
        out.contains("pci 00:02.0 stack=rump driver=\"wm (NetBSD wm, TCP/IP)\""),
        "the e1000 is not owned by the rump kernel:\n{out}"
    );
    let wm =
        line_with(&out, "net wm0 wm (NetBSD wm)").unwrap_or_else(|| panic!("no wm0 line:\n{out}"));
    assert!(
        wm.contains("up=true addr=10.0.2.15/24 gateway=10.0.2.2"),
        "{wm:?}"
    );
    check_ifconfig_and_route(&out);
    let replies = out
        .lines()
        .filter(|l| l.starts_with("64 bytes from 10.0.2.2: seq="))
        .count();
    assert_eq!(replies, 3, "output:\n{out}");
    assert!(out.contains("ping-rc=0"), "output:\n{out}");
}

#[test]
fn wget_of_a_host_page_once_and_16_times_at_once_is_exact_and_the_socket_suite_passes_native() {
    wget_and_sockets("native");
}

#[test]
fn wget_of_a_host_page_once_and_16_times_at_once_is_exact_and_the_socket_suite_passes_rump() {
    wget_and_sockets("rump");
}

fn wget_and_sockets(stack: &str) {
    let name = format!("s12_net-wget_and_sockets_{stack}");
    if !available(&name, stack) {
        return;
    }
    let blob = Arc::new(body());
    let want = md5(&blob);
    let p = start_peers(blob.clone());
    let cmd = format!(
        "{WAIT_DHCP} wget -q -O /tmp/blob http://10.0.2.2:{}/blob; echo wget-rc=$?; md5sum /tmp/blob; wc -c < /tmp/blob; for i in $(seq 1 16); do wget -q -O /tmp/c$i http://10.0.2.2:{}/blob & done; wait; md5sum /tmp/c* | sed 's/^/many: /'; /usr/libexec/adros-tests/t_inet 10.0.2.2 {} {} {}",
        p.http, p.http, p.http, p.udp, p.closed
    );
    let (out, st) = exec(&name, stack, "", &cmd);
    assert!(out.contains("wget-rc=0"), "wget failed:\n{out}");
    let got = line_with(&out, &want);
    assert!(
        got.is_some_and(|l| l.ends_with("/tmp/blob")),
        "guest md5 differs from the host's {want}:\n{out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == (1 << 20).to_string()),
        "size:\n{out}"
    );
    // 16 fetches at once: every copy is whole.
    let many: Vec<&str> = out.lines().filter(|l| l.starts_with("many: ")).collect();
    assert_eq!(many.len(), 16, "16 concurrent fetches:\n{out}");
    for l in &many {
        assert!(
            l.starts_with(&format!("many: {want} ")),
            "a concurrent fetch differs: {l}\n{out}"
        );
    }
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL: ")).collect();
    assert!(
        failed.is_empty(),
        "failing socket checks:\n{}",
        failed.join("\n")
    );
    let passed = out.lines().filter(|l| l.starts_with("PASS: inet.")).count();
    assert!(
        out.contains(&format!("SUMMARY: inet {passed} passed 0 failed")),
        "t_inet did not finish:\n{out}"
    );
    assert!(passed >= 43, "only {passed} socket checks ran:\n{out}");
    assert_eq!(st, 0, "output:\n{out}");
}

#[test]
fn a_guest_tcp_server_is_reached_through_hostfwd_native() {
    hostfwd_server("native");
}

#[test]
fn a_guest_tcp_server_is_reached_through_hostfwd_rump() {
    hostfwd_server("rump");
}

fn hostfwd_server(stack: &str) {
    let name = format!("s12_net-hostfwd_server_{stack}");
    if !available(&name, stack) {
        return;
    }
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // The host side: keep trying until the guest's server has answered with 1 MiB (a
    // connection made before it listens is reset by QEMU and reads nothing).
    let fetched = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(200);
        while Instant::now() < deadline {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
                let mut v = Vec::new();
                let _ = c.read_to_end(&mut v);
                if v.len() == 1 << 20 {
                    return Some(v);
                }
            }
            thread::sleep(Duration::from_millis(500));
        }
        None
    });
    let cmd = format!(
        "{WAIT_DHCP} dd if=/dev/urandom of=/tmp/f bs=1024 count=1024 2>/dev/null; md5sum /tmp/f; nc -l -p 8080 < /tmp/f; echo served-rc=$?"
    );
    let (out, st) = exec(&name, stack, &format!("hostfwd=tcp::{port}-:8080"), &cmd);
    assert_eq!(st, 0, "output:\n{out}");
    let data = fetched
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("the host never got 1 MiB from the guest:\n{out}"));
    let want = md5(&data);
    assert!(
        line_with(&out, &want).is_some_and(|l| l.ends_with("/tmp/f")),
        "the host received bytes with md5 {want}, not the guest file's:\n{out}"
    );
    assert!(out.contains("served-rc=0"), "output:\n{out}");
}
