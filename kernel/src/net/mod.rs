//! Networking: the native stack (the `adros-e1000` driver under `smoltcp`), chosen with
//! `net.stack=native|rump` on the kernel command line, and the AF_INET/AF_INET6 sockets
//! user space reaches through it ([`inet`]).
//!
//! `net.stack=rump` (NetBSD's TCP/IP in the rump kernel) is not available yet: the kernel
//! says so in a log line and falls back to the native stack. With no e1000 on the PCI bus
//! (`cargo xtask run` without `--net user`) there is no network and AF_INET sockets fail
//! with ENETUNREACH on use.
//!
//! One thread (`net`) owns the interface: it sleeps on an event the e1000's interrupt
//! handler (which only reads and so acknowledges ICR) and the socket calls notify, or until
//! smoltcp's next timer (retransmissions, DHCP renewals); then it drains the rings, polls
//! smoltcp, runs DHCP, and publishes each socket's readiness ([`inet`]), waking the wait
//! queues of sockets whose readiness changed — so `poll`/`epoll` never poll in a loop.
//! Socket calls take the same stack lock, act on their smoltcp socket and poll at once, so
//! a `send` leaves without waiting for the thread.
//!
//! DHCP runs at boot without user action; the lease (address, gateway, DNS servers) is
//! what `/proc/drivers` and `/proc/net/*` report. IPv6 addresses (`::1`, link-local, and
//! stateless autoconfiguration from router advertisements) are [`slaac`]'s.

pub mod ifreq;
pub mod inet;
pub mod procnet;
pub mod slaac;
pub mod socket;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use adros_e1000::E1000;
use adros_hal::Event;
use adros_netloop::Looped;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

use crate::hal::{Bar, KernelEvent, KernelHal};
use crate::sync::Mutex;
use crate::sync::spin::IrqSpinLock;

pub type Nic = E1000<KernelHal, Bar>;

/// 127.0.0.1/8, served by [`Looped`].
const LOOPBACK: IpCidr = IpCidr::Ipv4(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 8));

/// The interface's configuration as DHCP left it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lease {
    pub addr: Option<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: [Option<Ipv4Addr>; 3],
    /// When the lease was obtained (ns of uptime).
    pub at_ns: u64,
}

/// The interface as user space sees it (`eth0`), whichever stack runs it: what the
/// interface ioctls, `/proc/net/dev` and `/proc/net/route` report.
#[derive(Clone, Copy, Debug, Default)]
pub struct IfInfo {
    pub mac: [u8; 6],
    pub addr: Option<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub link_up: bool,
    pub mtu: u32,
    pub txqlen: u32,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    /// Receive overruns (`fifo` in /proc/net/dev).
    pub rx_fifo: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One IPv6 address of the host (`/proc/net/if_inet6`).
#[derive(Clone, Copy, Debug)]
pub struct Inet6Addr {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

/// The IPv6 addresses of the stack that runs (`::1` counts, on `lo`).
pub fn inet6_addrs() -> Vec<Inet6Addr> {
    if stack_name() == "rump" {
        return crate::rump::net::inet6_addrs();
    }
    let Some(n) = net() else {
        return Vec::new();
    };
    let st = n.stack.lock();
    st.slaac
        .cidrs()
        .into_iter()
        .filter_map(|c| match c {
            IpCidr::Ipv6(c) => Some(Inet6Addr {
                addr: c.address(),
                prefix: c.prefix_len(),
            }),
            _ => None,
        })
        .collect()
}

/// The interface of the stack that runs, if there is a network.
/// The loopback's counters, when the stack has a `lo`: the native stack's, or NetBSD's
/// `lo0` on the rump stack.
pub fn loopback() -> Option<adros_netloop::LoopStats> {
    if stack_name() == "rump" {
        return crate::rump::net::loopback();
    }
    Some(net()?.stack.lock().dev.stats())
}

pub fn interface() -> Option<IfInfo> {
    if stack_name() == "rump" {
        return crate::rump::net::interface();
    }
    let n = net()?;
    let (link, st) = {
        let s = n.stack.lock();
        (s.dev.inner.link(), s.dev.inner.stats())
    };
    let l = *n.lease.lock();
    Some(IfInfo {
        mac: n.mac,
        addr: l.addr,
        gateway: l.gateway,
        link_up: link.up,
        mtu: 1500,
        txqlen: adros_e1000::TX_RING as u32,
        rx_bytes: st.rx_bytes,
        rx_packets: st.rx_packets,
        rx_errors: 0,
        rx_dropped: st.rx_dropped,
        rx_fifo: st.rx_overruns,
        tx_bytes: st.tx_bytes,
        tx_packets: st.tx_packets,
        tx_errors: 0,
        tx_dropped: st.tx_dropped,
    })
}

/// Everything behind the stack lock.
pub struct Stack {
    /// The NIC with loopback in front of it: frames for 127.0.0.0/8 and for the host's own
    /// address come straight back (`lo`), the rest goes to the e1000.
    pub dev: Looped<Nic>,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    pub inet: inet::Table,
    /// The DHCP lease's address, if any.
    lease4: Option<Ipv4Cidr>,
    pub slaac: slaac::Slaac,
}

pub struct Net {
    pub stack: Mutex<Stack>,
    event: KernelEvent,
    /// Interrupt causes read by the handler, not yet seen by the thread.
    icr: AtomicU32,
    regs: Bar,
    pub lease: IrqSpinLock<Lease>,
    pub mac: [u8; 6],
    pub mac_source: &'static str,
    pub slot: String,
    pub irq: IrqSpinLock<String>,
    pub interrupts: AtomicU64,
    pub polls: AtomicU64,
}

static NET: spin::Once<Arc<Net>> = spin::Once::new();
static CHOICE: spin::Once<&'static str> = spin::Once::new();

/// The stack, when there is a network.
pub fn net() -> Option<&'static Arc<Net>> {
    NET.get()
}

pub fn now() -> Instant {
    Instant::from_micros((crate::time::now_ns() / 1000) as i64)
}

impl Net {
    /// Wakes the `net` thread (new work for the interface).
    pub fn kick(&self) {
        self.event.notify();
    }

    /// One round under the stack lock: interrupt causes, the rings, smoltcp, DHCP,
    /// readiness. Returns when smoltcp next wants to run.
    fn service(&self, st: &mut Stack) -> Option<Duration> {
        let icr = self.icr.swap(0, Ordering::AcqRel);
        if st.dev.inner.note_interrupt(icr) {
            let l = st.dev.inner.link();
            log::info!(
                "net: link {} {} Mb/s {}-duplex",
                if l.up { "up" } else { "down" },
                l.mbps,
                if l.full_duplex { "full" } else { "half" }
            );
        }
        st.poll(self);
        if st.dev.pending() {
            // Loopback frames left after the poll's rounds: at once, not at the next timer.
            return Some(Duration::ZERO);
        }
        let t = now();
        st.iface.poll_delay(t, &st.sockets)
    }
}

impl Stack {
    /// Polls smoltcp until it has nothing more to do right now, then DHCP and readiness.
    pub fn poll(&mut self, net: &Net) {
        net.polls.fetch_add(1, Ordering::Relaxed);
        inet::reap_closed(self);
        // Bounded: each round drains at most the receive ring; 8 rounds cover a burst
        // arriving while we poll.
        for _ in 0..8 {
            let r = self.iface.poll(now(), &mut self.dev, &mut self.sockets);
            if r == smoltcp::iface::PollResult::None
                && !self.dev.inner.rx_pending()
                && !self.dev.pending()
            {
                break;
            }
        }
        self.dhcp_event(net);
        if self.slaac.receive(&mut self.sockets) {
            self.set_addrs();
        }
        if self.slaac.solicit(&mut self.sockets, now()) {
            // The solicitation leaves now, not at the next poll.
            let _ = self.iface.poll(now(), &mut self.dev, &mut self.sockets);
        }
        inet::publish(self);
    }

    /// The interface's addresses: the lease first (smoltcp takes the first IPv4 address as
    /// the source of whatever the socket layer does not bind), 127.0.0.1/8, then IPv6's;
    /// the loopback's own-address list and the default IPv6 route to match.
    fn set_addrs(&mut self) {
        let lease = self.lease4;
        let v6 = self.slaac.cidrs();
        self.iface.update_ip_addrs(|a| {
            a.clear();
            if let Some(l) = lease {
                let _ = a.push(IpCidr::Ipv4(l));
            }
            let _ = a.push(LOOPBACK);
            for c in &v6 {
                let _ = a.push(*c);
            }
        });
        let mut own: Vec<IpAddr> = lease.iter().map(|l| IpAddr::V4(l.address())).collect();
        own.push(IpAddr::V6(self.slaac.link_local));
        own.extend(self.slaac.global.iter().map(|a| IpAddr::V6(*a)));
        self.dev.set_own(&own);
        match self.slaac.router {
            Some(r) => {
                let _ = self.iface.routes_mut().add_default_ipv6_route(r);
            }
            None => {
                self.iface.routes_mut().remove_default_ipv6_route();
            }
        }
    }

    fn dhcp_event(&mut self, net: &Net) {
        let ev = self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll();
        match ev {
            None => {}
            Some(dhcpv4::Event::Configured(c)) => {
                // Copied out: the event borrows the socket set.
                let (address, router) = (c.address, c.router);
                let dns: Vec<Ipv4Addr> = c.dns_servers.iter().copied().collect();
                self.lease4 = Some(address);
                self.set_addrs();
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                let mut l = net.lease.lock();
                l.addr = Some(address);
                l.gateway = router;
                l.dns = [None; 3];
                for (i, d) in dns.iter().take(3).enumerate() {
                    l.dns[i] = Some(*d);
                }
                l.at_ns = crate::time::now_ns();
                drop(l);
                log::info!(
                    "net: DHCP: address {} gateway {} dns {}",
                    address,
                    router.map_or(String::from("none"), |r| format!("{r}")),
                    dns.iter()
                        .map(|d| format!("{d}"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.lease4 = None;
                self.set_addrs();
                self.iface.routes_mut().remove_default_ipv4_route();
                *net.lease.lock() = Lease::default();
                log::info!("net: DHCP: deconfigured");
            }
        }
    }
}

/// Which stack `net.stack=` asked for and which one runs, for `/proc/drivers`.
pub fn stack_name() -> &'static str {
    CHOICE.get().copied().unwrap_or("none")
}

/// Chooses the stack and brings the network up. Call once the scheduler, PCI and the
/// interrupt controllers are up.
pub fn init() {
    let cmd = crate::boot::cmdline();
    let want = cmd.param("net.stack").unwrap_or("native");
    match want {
        "native" => {}
        "rump" if crate::rump::net::assigned() => {
            // The rump kernel owns the e1000 (given before rump_init); it serves sockets.
            CHOICE.call_once(|| "rump");
            procnet::register();
            return;
        }
        "rump" if !crate::rump::LINKED => log::warn!(
            "net: net.stack=rump: the NetBSD components are not linked (no NetBSD source at build time); using the native stack"
        ),
        "rump" => log::warn!(
            "net: net.stack=rump: no e1000 was given to the rump kernel (none on the bus, or rump=off); using the native stack"
        ),
        other => {
            log::warn!("net: net.stack={other}: unknown (native|rump); using the native stack")
        }
    }
    let Some(d) = crate::pci::find(adros_e1000::VENDOR_ID, adros_e1000::DEVICE_ID) else {
        log::info!("net: no e1000 (8086:100e) on the PCI bus: no network");
        return;
    };
    match bring_up(d) {
        Ok(n) => {
            CHOICE.call_once(|| "native");
            procnet::register();
            let n = NET.call_once(|| n);
            // After NET is set: the handler acknowledges the device through it (an
            // interrupt it could not acknowledge would keep the level line asserted).
            *n.irq.lock() = attach_irq(d);
            let net = n.clone();
            crate::sched::spawn("net", move || run(&net));
        }
        Err(e) => log::warn!(
            "net: e1000 at {}: not brought up: {e}",
            adros_pci::slot_name(d.addr)
        ),
    }
}

fn bring_up(d: &'static crate::pci::PciDevice) -> Result<Arc<Net>, String> {
    crate::pci::claim(
        d.addr,
        crate::pci::Owner {
            stack: "native",
            driver: "e1000",
        },
    )
    .map_err(|o| format!("owned by the {} stack ({})", o.stack, o.driver))?;
    crate::pci::enable_memory(d);
    crate::pci::enable_bus_master(d);
    let regs = crate::pci::map_bar_regs(d, 0).map_err(|e| format!("BAR0: {e:?}"))?;
    let bar = Bar(regs);
    let mut dev = Looped::new(E1000::new(KernelHal, bar).map_err(|e| format!("{e:?}"))?);
    let mac = dev.inner.mac();
    let mac_source = dev.inner.mac_source();
    let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    cfg.random_seed = crate::time::now_ns()
        ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]);
    let mut iface = Interface::new(cfg, &mut dev, now());
    iface.update_ip_addrs(|a| {
        let _ = a.push(LOOPBACK);
    });
    let mut sockets = SocketSet::new(Vec::new());
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let slaac = slaac::Slaac::new(&mut sockets, mac);
    let link = dev.inner.link();
    let slot = adros_pci::slot_name(d.addr);
    log::info!(
        "net: e1000 at {slot}: MAC {} (from {mac_source}), link {} {} Mb/s; native stack (smoltcp), DHCP starting",
        EthernetAddress(mac),
        if link.up { "up" } else { "down" },
        link.mbps
    );
    let net = Arc::new(Net {
        stack: Mutex::new(Stack {
            dev,
            iface,
            sockets,
            dhcp,
            inet: inet::Table::default(),
            lease4: None,
            slaac,
        }),
        event: KernelEvent::default(),
        icr: AtomicU32::new(0),
        regs: bar,
        lease: IrqSpinLock::new(Lease::default()),
        mac,
        mac_source,
        slot,
        irq: IrqSpinLock::new(String::from("polled")),
        interrupts: AtomicU64::new(0),
        polls: AtomicU64::new(0),
    });
    net.stack.lock().set_addrs();
    Ok(net)
}

/// Returns how interrupts arrive, for `/proc/drivers`. Attaches the interrupt handler to the function's INTx line through [`crate::irq`], which
/// shares the line with whatever else is on it (virtio, USB controllers on q35's PIRQs).
fn attach_irq(d: &'static crate::pci::PciDevice) -> String {
    let Some(gsi) = crate::pci::irq(d) else {
        return String::from("polled (no routed INTx)");
    };
    match crate::irq::attach(gsi, "e1000", alloc::boxed::Box::new(irq_handler)) {
        Ok(()) => format!("gsi {gsi} (shared line)"),
        Err(e) => format!("polled (GSI {gsi}: {e:?})"),
    }
}

/// Hard-interrupt handler: reads (and so acknowledges) ICR; a shared line's other devices
/// leave it 0.
fn irq_handler() {
    if let Some(n) = NET.get() {
        let icr = Nic::ack(&n.regs);
        if icr != 0 {
            n.interrupts.fetch_add(1, Ordering::Relaxed);
            n.icr.fetch_or(icr, Ordering::AcqRel);
            n.event.notify();
        }
    }
}

/// The `net` thread: services the interface whenever it is kicked or smoltcp's next timer
/// is due (at least once a second, which also covers a lost interrupt).
fn run(net: &Arc<Net>) -> ! {
    loop {
        let delay = {
            let mut st = net.stack.lock();
            net.service(&mut st)
        };
        let wait_ns = delay.map_or(1_000_000_000, |d| d.total_micros().min(1_000_000) * 1000);
        if wait_ns > 0 {
            net.event.wait(Some(crate::time::now_ns() + wait_ns));
        }
    }
}

/// `/proc/drivers` lines: which stack, the interface, its link and address.
pub fn report() -> Vec<String> {
    let mut v = alloc::vec![format!("net.stack={}", stack_name())];
    if stack_name() == "rump" {
        v.extend(crate::rump::net::report());
    }
    if let Some(n) = net() {
        let (link, stats, lo) = {
            let st = n.stack.lock();
            (st.dev.inner.link(), st.dev.inner.stats(), st.dev.stats())
        };
        let l = *n.lease.lock();
        v.push(format!(
            "net eth0 e1000 {} mac={} mac_from={} link={} speed={} duplex={} addr={} gateway={} dns={} irq=\"{}\" interrupts={} rx_packets={} tx_packets={} rx_dropped={} tx_dropped={} half_open_dropped={}",
            n.slot,
            EthernetAddress(n.mac),
            n.mac_source,
            if link.up { "up" } else { "down" },
            link.mbps,
            if link.full_duplex { "full" } else { "half" },
            l.addr.map_or(String::from("none"), |a| format!("{a}")),
            l.gateway.map_or(String::from("none"), |a| format!("{a}")),
            l.dns.iter().flatten().map(|d| format!("{d}")).collect::<Vec<_>>().join(","),
            n.irq.lock().clone(),
            n.interrupts.load(Ordering::Relaxed),
            stats.rx_packets,
            stats.tx_packets,
            stats.rx_dropped,
            stats.tx_dropped,
            inet::HALF_OPEN_DROPPED.load(Ordering::Relaxed),
        ));
        {
            let st = n.stack.lock();
            v.push(format!(
                "net eth0 ipv6 link_local={}/64 autoconf={} router={} adverts={} bad_adverts={}",
                st.slaac.link_local,
                st.slaac
                    .global
                    .iter()
                    .map(|a| format!("{a}/64"))
                    .collect::<Vec<_>>()
                    .join(","),
                st.slaac
                    .router
                    .map_or(String::from("none"), |r| format!("{r}")),
                st.slaac.adverts,
                slaac::BAD_ADVERTS.load(Ordering::Relaxed),
            ));
        }
        v.push(format!(
            "net lo loopback addr=127.0.0.1/8,::1/128 packets={} bytes={} dropped={} martians={}",
            lo.packets, lo.bytes, lo.dropped, lo.martians
        ));
    }
    v
}
