//! NetBSD's TCP/IP stack in a rump kernel on rumpuser-adros: loopback (`lo0` comes up with
//! 127.0.0.1 during `rump_init`), a TCP echo server and client exchanging 10 MB, and UDP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use rump_host_tests::*;

static PORT: AtomicU16 = AtomicU16::new(7100);

#[test]
fn tcp_echo_10_mb_over_loopback() {
    require_rump!();
    init().expect("rump_init");
    let port = PORT.fetch_add(1, Ordering::SeqCst);
    let total = 10 * 1024 * 1024;
    let data = Arc::new(pattern(total, 42));
    let ls = socket(AF_INET, SOCK_STREAM).expect("socket");
    setsockopt_int(ls, SOL_SOCKET, SO_REUSEADDR, 1).unwrap();
    bind(ls, &SockaddrIn::loopback(port)).expect("bind 127.0.0.1");
    listen(ls, 4).unwrap();
    let server = std::thread::spawn(move || {
        let c = accept(ls).expect("accept");
        setsockopt_int(c, IPPROTO_TCP, TCP_NODELAY, 1).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut echoed = 0usize;
        loop {
            let n = read(c, &mut buf).expect("server read");
            if n == 0 {
                break;
            }
            write_all(c, &buf[..n]).expect("server write");
            echoed += n;
        }
        close(c).unwrap();
        close(ls).unwrap();
        echoed
    });
    let t0 = Instant::now();
    let cs = socket(AF_INET, SOCK_STREAM).expect("socket");
    setsockopt_int(cs, IPPROTO_TCP, TCP_NODELAY, 1).unwrap();
    connect(cs, &SockaddrIn::loopback(port)).expect("connect");
    let d2 = data.clone();
    // Writer and reader run at once (echo needs both directions draining).
    let writer = std::thread::spawn(move || {
        for chunk in d2.chunks(64 * 1024) {
            write_all(cs, chunk).expect("client write");
        }
    });
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; 65536];
    while got.len() < total {
        let n = read(cs, &mut buf).expect("client read");
        assert!(n > 0, "connection closed early after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "stalled at {} of {total} bytes",
            got.len()
        );
    }
    writer.join().unwrap();
    close(cs).unwrap();
    assert_eq!(server.join().unwrap(), total);
    assert!(got == *data, "echoed data differs");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "tcp echo: {} MiB each way in {secs:.2} s ({:.1} MiB/s)",
        total >> 20,
        (total >> 20) as f64 / secs
    );
}

#[test]
fn udp_datagrams_over_loopback() {
    require_rump!();
    init().expect("rump_init");
    let port = PORT.fetch_add(1, Ordering::SeqCst);
    let rx = socket(AF_INET, SOCK_DGRAM).expect("socket");
    bind(rx, &SockaddrIn::loopback(port)).expect("bind");
    let tx = socket(AF_INET, SOCK_DGRAM).expect("socket");
    let tx_port = port + 1000;
    bind(tx, &SockaddrIn::loopback(tx_port)).expect("bind tx");
    for i in 0..200u32 {
        let msg = pattern(1 + (i as usize * 61) % 1400, u64::from(i));
        assert_eq!(
            sendto(tx, &msg, &SockaddrIn::loopback(port)).unwrap(),
            msg.len()
        );
        let mut buf = [0u8; 2048];
        let (n, from) = recvfrom(rx, &mut buf).unwrap();
        assert_eq!(&buf[..n], &msg[..], "datagram {i}");
        assert_eq!(u16::from_be(from.sin_port), tx_port);
        // Echo back.
        assert_eq!(sendto(rx, &buf[..n], &from).unwrap(), n);
        let mut back = [0u8; 2048];
        let (m, _) = recvfrom(tx, &mut back).unwrap();
        assert_eq!(&back[..m], &msg[..]);
    }
    close(rx).unwrap();
    close(tx).unwrap();
}
