use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, TxToken as _};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    HardwareAddress, IpAddress, IpCidr, Ipv4Address,
};

use super::*;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const LINK6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
const OWN6: Ipv6Addr = Ipv6Addr::new(0xfec0, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);

/// A wire that keeps what was sent and has room for `room` frames.
#[derive(Default)]
struct FakeWire {
    sent: Vec<Vec<u8>>,
    incoming: VecDeque<Vec<u8>>,
    room: usize,
}

impl Wire for FakeWire {
    fn receive_frame(&mut self) -> Option<Vec<u8>> {
        self.incoming.pop_front()
    }
    fn can_send(&mut self) -> bool {
        self.sent.len() < self.room
    }
    fn send_frame(&mut self, frame: &[u8]) -> bool {
        if self.sent.len() >= self.room {
            return false;
        }
        self.sent.push(frame.to_vec());
        true
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

fn setup() -> (Looped<FakeWire>, Interface, SocketSet<'static>) {
    let mut dev = Looped::new(FakeWire {
        room: 1000,
        ..FakeWire::default()
    });
    dev.set_own(&[IpAddr::V4(OWN), IpAddr::V6(LINK6), IpAddr::V6(OWN6)]);
    let cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(MAC)));
    let mut iface = Interface::new(cfg, &mut dev, Instant::from_millis(0));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(OWN), 24)).unwrap();
        a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap();
        a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128))
            .unwrap();
        a.push(IpCidr::new(IpAddress::Ipv6(LINK6), 64)).unwrap();
        a.push(IpCidr::new(IpAddress::Ipv6(OWN6), 64)).unwrap();
    });
    iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(10, 0, 2, 2))
        .unwrap();
    (dev, iface, SocketSet::new(Vec::new()))
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    )
}

/// A TCP connection to `to`:80 inside one interface, and a line each way.
fn talk_to_self(to: IpAddress) -> (Looped<FakeWire>, usize) {
    let (mut dev, mut iface, mut sockets) = setup();
    let mut l = tcp_socket();
    l.listen(80).unwrap();
    let server = sockets.add(l);
    let client = sockets.add(tcp_socket());
    sockets
        .get_mut::<tcp::Socket>(client)
        // The source as Linux picks it (smoltcp would take the first IPv4 address): the
        // socket layer binds a loopback connection to the address it goes to.
        .connect(iface.context(), (to, 80), (to, 49152))
        .unwrap();
    let mut t = Instant::from_millis(1);
    let (mut sent, mut echoed) = (false, false);
    let mut got = Vec::new();
    for _ in 0..200 {
        iface.poll(t, &mut dev, &mut sockets);
        t += Duration::from_millis(1);
        let c = sockets.get_mut::<tcp::Socket>(client);
        if c.may_send() && !sent {
            c.send_slice(b"hello\n").unwrap();
            sent = true;
        }
        let s = sockets.get_mut::<tcp::Socket>(server);
        if s.can_recv() && !echoed {
            let mut b = [0u8; 64];
            let n = s.recv_slice(&mut b).unwrap();
            assert_eq!(&b[..n], b"hello\n");
            s.send_slice(b"back\n").unwrap();
            echoed = true;
        }
        let c = sockets.get_mut::<tcp::Socket>(client);
        if c.can_recv() {
            let mut b = [0u8; 64];
            let n = c.recv_slice(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
        }
        if got == b"back\n" {
            let s = sockets.get::<tcp::Socket>(server);
            assert_eq!(s.remote_endpoint().unwrap().addr, to);
            let steps = dev.stats().packets as usize;
            return (dev, steps);
        }
    }
    panic!(
        "no connection to {to}: got {got:?}, stats {:?}",
        dev.stats()
    );
}

#[test]
fn tcp_to_127_0_0_1_stays_off_the_wire() {
    let (dev, looped) = talk_to_self(IpAddress::Ipv4(Ipv4Addr::LOCALHOST));
    assert!(
        dev.inner.sent.is_empty(),
        "{} frames went out",
        dev.inner.sent.len()
    );
    // ARP request and reply, SYN, SYN-ACK, ACK, two data segments at least.
    assert!(looped >= 7, "{looped}");
    assert_eq!(dev.stats().dropped, 0);
    assert!(!dev.pending());
}

#[test]
fn tcp_to_the_hosts_own_address_stays_off_the_wire() {
    let (dev, _) = talk_to_self(IpAddress::Ipv4(OWN));
    assert!(
        dev.inner.sent.is_empty(),
        "{} frames went out",
        dev.inner.sent.len()
    );
}

#[test]
fn tcp_to_ipv6_loopback_and_own_addresses_stays_off_the_wire() {
    for to in [Ipv6Addr::LOCALHOST, LINK6, OWN6] {
        let (dev, looped) = talk_to_self(IpAddress::Ipv6(to));
        assert!(
            dev.inner.sent.is_empty(),
            "{to}: {} frames went out",
            dev.inner.sent.len()
        );
        // Solicitation answered (the advertisement), SYN, SYN-ACK, ACK, two data segments.
        assert!(looped >= 6, "{to}: {looped}");
        assert_eq!(dev.stats().dropped, 0);
    }
}

#[test]
fn other_ipv6_hosts_are_solicited_on_the_wire() {
    let (mut dev, mut iface, mut sockets) = setup();
    let mut u = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
    );
    u.bind(5000).unwrap();
    let h = sockets.add(u);
    let host = Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 2);
    sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(b"x", (IpAddress::Ipv6(host), 7))
        .unwrap();
    iface.poll(Instant::from_millis(1), &mut dev, &mut sockets);
    assert_eq!(dev.inner.sent.len(), 1);
    let eth = EthernetFrame::new_checked(&dev.inner.sent[0][..]).unwrap();
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
    // To fec0::2's solicited-node group, 33:33:ff:00:00:02.
    assert_eq!(eth.dst_addr(), EthernetAddress([0x33, 0x33, 0xff, 0, 0, 2]));
    assert_eq!(dev.stats().packets, 0);
}

#[test]
fn other_hosts_are_reached_on_the_wire() {
    let (mut dev, mut iface, mut sockets) = setup();
    let mut u = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 1024]),
    );
    u.bind(5000).unwrap();
    let h = sockets.add(u);
    sockets
        .get_mut::<udp::Socket>(h)
        .send_slice(b"x", (IpAddress::v4(10, 0, 2, 2), 7))
        .unwrap();
    iface.poll(Instant::from_millis(1), &mut dev, &mut sockets);
    // The gateway is resolved on the wire: an ARP request for 10.0.2.2.
    assert_eq!(dev.inner.sent.len(), 1);
    let eth = EthernetFrame::new_checked(&dev.inner.sent[0][..]).unwrap();
    assert_eq!(eth.ethertype(), EthernetProtocol::Arp);
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    match arp {
        ArpRepr::EthernetIpv4 {
            operation,
            target_protocol_addr,
            ..
        } => {
            assert_eq!(operation, ArpOperation::Request);
            assert_eq!(target_protocol_addr, Ipv4Address::new(10, 0, 2, 2));
        }
        _ => panic!("{arp:?}"),
    }
    assert_eq!(dev.stats().packets, 0);
}

fn ipv4_frame(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&20u16.to_be_bytes());
    f[22] = 64;
    f[26..30].copy_from_slice(&OWN.octets());
    f[30..34].copy_from_slice(&dst.octets());
    f
}

fn send(dev: &mut Looped<FakeWire>, frame: &[u8]) -> bool {
    match dev.transmit(Instant::from_millis(0)) {
        Some(t) => {
            t.consume(frame.len(), |b| b.copy_from_slice(frame));
            true
        }
        None => false,
    }
}

#[test]
fn a_full_loop_queue_drops_and_counts() {
    let (mut dev, _, _) = setup();
    for _ in 0..QUEUE + 10 {
        assert!(send(&mut dev, &ipv4_frame(Ipv4Addr::new(127, 9, 9, 9))));
    }
    let st = dev.stats();
    assert_eq!((st.packets, st.dropped), (QUEUE as u64, 10));
    assert!(dev.inner.sent.is_empty());
    let mut n = 0;
    while let Some((rx, _)) = dev.receive(Instant::from_millis(0)) {
        use smoltcp::phy::RxToken as _;
        rx.consume(|b| assert_eq!(&b[30..34], &[127, 9, 9, 9]));
        n += 1;
    }
    assert_eq!(n, QUEUE);
}

#[test]
fn malformed_frames_go_to_the_wire_unharmed() {
    let (mut dev, _, _) = setup();
    let short = [0u8; 6];
    let mut truncated_ip = ipv4_frame(Ipv4Addr::LOCALHOST);
    truncated_ip.truncate(20);
    let mut arp_short = [0u8; 20];
    arp_short[12..14].copy_from_slice(&[0x08, 0x06]);
    for f in [&short[..], &truncated_ip[..], &arp_short[..]] {
        assert!(send(&mut dev, f));
    }
    assert_eq!(dev.inner.sent.len(), 3);
    assert_eq!(dev.stats().packets, 0);
}

#[test]
fn a_full_wire_holds_every_frame_back() {
    let (mut dev, _, _) = setup();
    dev.inner.room = 0;
    assert!(!send(&mut dev, &ipv4_frame(Ipv4Addr::LOCALHOST)));
    dev.inner.room = 1;
    assert!(send(&mut dev, &ipv4_frame(Ipv4Addr::LOCALHOST)));
    assert!(dev.pending());
}

#[test]
fn own_addresses_can_change() {
    let (mut dev, _, _) = setup();
    assert!(dev.is_local(OWN.into()) && dev.is_local(Ipv4Addr::new(127, 1, 2, 3).into()));
    assert!(dev.is_local(OWN6.into()) && dev.is_local(Ipv6Addr::LOCALHOST.into()));
    dev.set_own(&[]);
    assert!(!dev.is_local(OWN.into()) && !dev.is_local(OWN6.into()));
    let many: Vec<IpAddr> = (1..=8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(192, 168, 0, i)))
        .collect();
    dev.set_own(&many);
    assert!(dev.is_local(many[MAX_OWN - 1]) && !dev.is_local(many[MAX_OWN]));
}

#[test]
fn frames_from_the_wire_claiming_ipv6_loopback_are_dropped() {
    let (mut dev, _, _) = setup();
    let v6 = |src: Ipv6Addr, dst: Ipv6Addr| {
        let mut f = vec![0u8; 14 + 40];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[20] = 59; // no next header
        f[21] = 64;
        f[22..38].copy_from_slice(&src.octets());
        f[38..54].copy_from_slice(&dst.octets());
        f
    };
    let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    let fine = v6(peer, LINK6);
    for f in [
        v6(peer, Ipv6Addr::LOCALHOST),
        v6(Ipv6Addr::LOCALHOST, LINK6),
        fine.clone(),
    ] {
        dev.inner.incoming.push_back(f);
    }
    use smoltcp::phy::RxToken as _;
    let (rx, _) = dev.receive(Instant::from_millis(0)).unwrap();
    rx.consume(|b| assert_eq!(b, &fine[..]));
    assert!(dev.receive(Instant::from_millis(0)).is_none());
    assert_eq!(dev.stats().martians, 2);
}

#[test]
fn frames_from_the_wire_claiming_127_are_dropped() {
    let (mut dev, _, _) = setup();
    let mut to_lo = ipv4_frame(Ipv4Addr::LOCALHOST);
    to_lo[0..6].copy_from_slice(&MAC);
    let mut from_lo = ipv4_frame(OWN);
    from_lo[26..30].copy_from_slice(&[127, 0, 0, 1]);
    let mut arp = vec![0u8; 14 + 28];
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        source_protocol_addr: Ipv4Address::new(10, 0, 2, 2),
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: Ipv4Address::new(127, 0, 0, 1),
    }
    .emit(&mut ArpPacket::new_unchecked(&mut arp[14..]));
    let fine = ipv4_frame(OWN);
    for f in [to_lo, from_lo, arp, fine.clone()] {
        dev.inner.incoming.push_back(f);
    }
    use smoltcp::phy::RxToken as _;
    let (rx, _) = dev.receive(Instant::from_millis(0)).unwrap();
    rx.consume(|b| assert_eq!(b, &fine[..]));
    assert!(dev.receive(Instant::from_millis(0)).is_none());
    assert_eq!(dev.stats().martians, 3);
}
