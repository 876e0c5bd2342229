//! The host side of the `net` suite: four TCP servers on 127.0.0.1 (never another
//! interface), which both guests reach as 10.0.2.2 through QEMU's user-mode network —
//! a source that sends `NET_RX_MIB` MiB per connection, a sink that reads to end of file
//! and answers one byte, a one-byte echo, and an accept-send-one-byte-close server. They run
//! in threads of their own (blocking accepts: no polling delay in the connection figure)
//! until xtask exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::util::Result;

/// Host → guest stream size per connection (MiB).
pub const NET_RX_MIB: u32 = 32;
/// Guest → host stream size (MiB).
pub const NET_TX_MIB: u32 = 16;
/// One-byte round trips.
pub const NET_RR: u32 = 2000;
/// Connections opened one after another.
pub const NET_CONN: u32 = 200;

pub struct Servers {
    pub rx: u16,
    pub tx: u16,
    pub rr: u16,
    pub conn: u16,
}

/// Starts the four servers.
pub fn start() -> Result<Servers> {
    let rx = serve(|mut c| {
        let buf = vec![0xa5u8; 1 << 16];
        for _ in 0..(NET_RX_MIB as usize * 16) {
            if c.write_all(&buf).is_err() {
                return;
            }
        }
    })?;
    let tx = serve(|mut c| {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return,
            }
        }
        let _ = c.write_all(b"k");
    })?;
    let rr = serve(|mut c| {
        let _ = c.set_nodelay(true);
        let mut b = [0u8; 1];
        while let Ok(1) = c.read(&mut b) {
            if c.write_all(&b).is_err() {
                return;
            }
        }
    })?;
    let conn = serve(|mut c| {
        let _ = c.write_all(b"c");
    })?;
    Ok(Servers { rx, tx, rr, conn })
}

/// A listener on 127.0.0.1 (an ephemeral port) whose connections each get a thread
/// running `handle`.
fn serve(handle: impl Fn(TcpStream) + Send + Sync + Copy + 'static) -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bench net: bind: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            let _ = c.set_read_timeout(Some(Duration::from_secs(150)));
            thread::spawn(move || handle(c));
        }
    });
    Ok(port)
}
