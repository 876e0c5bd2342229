//! The core against a fake host controller with one fake BOT stick behind it: descriptor
//! parsing with malformed input, enumeration, SCSI encodings, and the BOT state machine
//! with a device that stalls, answers with wrong tags, short or oversized CSWs and phase
//! errors.

use super::bot::{self, BotError, CswFault, Transport};
use super::desc::*;
use super::disk::{DiskError, ScsiDisk};
use super::*;

// ---------------------------------------------------------------- descriptors

fn device_desc() -> Vec<u8> {
    vec![
        18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x46, 0x46, 0x01, 0x00, 0, 1, 1, 2, 3, 1,
    ]
}

fn config_desc() -> Vec<u8> {
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
    c.extend_from_slice(&[9, 4, 0, 0, 2, 8, 6, 0x50, 0]);
    c.extend_from_slice(&[7, 5, 0x81, 2, 0x00, 0x02, 0]);
    c.extend_from_slice(&[7, 5, 0x02, 2, 0x00, 0x02, 0]);
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    c
}

#[test]
fn parses_device_and_config() {
    let d = DeviceDescriptor::parse(&device_desc()).unwrap();
    assert_eq!((d.vendor, d.product, d.max_packet_size0), (0x4646, 1, 64));
    let c = Configuration::parse(&config_desc()).unwrap();
    assert_eq!(c.interfaces.len(), 1);
    let i = &c.interfaces[0];
    assert_eq!((i.class, i.subclass, i.protocol), (8, 6, 0x50));
    assert_eq!(i.endpoints.len(), 2);
    assert!(i.endpoints[0].is_in());
    assert_eq!(i.endpoints[1].number(), 2);
    assert_eq!(i.endpoints[0].packet_size(), 512);
    let t = Transport::from_interface(DeviceId(1), i).unwrap();
    assert_eq!((t.ep_in, t.ep_out), (0x81, 0x02));
}

#[test]
fn rejects_malformed_descriptors() {
    // Device: too short, wrong type, bad bLength, bad EP0 size.
    assert_eq!(
        DeviceDescriptor::parse(&device_desc()[..10]),
        Err(DescError::TooShort { need: 18, got: 10 })
    );
    let mut d = device_desc();
    d[1] = 2;
    assert!(matches!(
        DeviceDescriptor::parse(&d),
        Err(DescError::WrongType { .. })
    ));
    let mut d = device_desc();
    d[0] = 0;
    assert!(matches!(
        DeviceDescriptor::parse(&d),
        Err(DescError::BadLength { .. })
    ));
    let mut d = device_desc();
    d[7] = 7;
    assert!(matches!(
        DeviceDescriptor::parse(&d),
        Err(DescError::BadEndpoint { .. })
    ));

    // Config: a zero-length descriptor in the middle (a naive walker loops forever).
    let mut c = config_desc();
    c[9] = 0;
    assert_eq!(
        Configuration::parse(&c),
        Err(DescError::ZeroLength { offset: 9 })
    );
    // bLength past the end of the buffer.
    let mut c = config_desc();
    let last = c.len() - 7;
    c[last] = 200;
    assert!(matches!(
        Configuration::parse(&c),
        Err(DescError::PastEnd { .. })
    ));
    // wTotalLength larger than what was returned.
    let mut c = config_desc();
    c[2] = 200;
    assert!(matches!(
        Configuration::parse(&c),
        Err(DescError::TooShort { .. })
    ));
    // wTotalLength absurd.
    let mut c = config_desc();
    c[2..4].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(
        config_total_length(&c),
        Err(DescError::BadTotalLength(0xffff))
    );
    let mut c = config_desc();
    c[2..4].copy_from_slice(&3u16.to_le_bytes());
    assert_eq!(config_total_length(&c), Err(DescError::BadTotalLength(3)));
    // An endpoint before any interface.
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50, 7, 5, 0x81, 2, 0, 2, 0];
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    assert_eq!(
        Configuration::parse(&c),
        Err(DescError::OrphanEndpoint { offset: 9 })
    );
    // Endpoint 0 / zero max packet.
    let mut c = config_desc();
    c[20] = 0x80;
    assert!(matches!(
        Configuration::parse(&c),
        Err(DescError::BadEndpoint { .. })
    ));
    // Too many interfaces and endpoints.
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
    for i in 0..=MAX_INTERFACES {
        c.extend_from_slice(&[9, 4, i as u8, 0, 0, 0xff, 0, 0, 0]);
    }
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    assert_eq!(Configuration::parse(&c), Err(DescError::TooManyInterfaces));
    let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 31, 0xff, 0, 0, 0];
    for i in 0..=MAX_ENDPOINTS {
        c.extend_from_slice(&[7, 5, 1 + (i as u8 % 15), 2, 0, 2, 0]);
    }
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    assert_eq!(
        Configuration::parse(&c),
        Err(DescError::TooManyEndpoints { interface: 0 })
    );
    // A one-byte tail.
    let mut c = config_desc();
    c.push(1);
    let n = c.len() as u16;
    c[2..4].copy_from_slice(&n.to_le_bytes());
    assert!(Configuration::parse(&c).is_err());
}

#[test]
fn strings() {
    let s = [10, 3, b'U', 0, b'S', 0, b'B', 0, 0x3a, 0xd8];
    // Unpaired surrogate at the end: replaced, not a panic.
    assert_eq!(parse_string(&s).unwrap(), "USB\u{fffd}");
    assert_eq!(
        parse_string(&[0, 3]),
        Err(DescError::ZeroLength { offset: 0 })
    );
    assert_eq!(
        parse_string(&[9, 3, 0, 0]),
        Err(DescError::PastEnd {
            offset: 0,
            len: 9,
            buf: 4
        })
    );
    assert_eq!(
        parse_string(&[5, 3, 0, 0, 0]),
        Err(DescError::OddString { len: 5 })
    );
    assert_eq!(parse_langids(&[4, 3, 9, 4]).unwrap(), vec![0x0409]);
}

#[test]
fn scsi_encodings() {
    assert_eq!(
        scsi::rw(false, 0x1234, 8).as_slice(),
        &[0x28, 0, 0, 0, 0x12, 0x34, 0, 0, 8, 0]
    );
    assert_eq!(
        scsi::rw(true, 0x0102_0304, 0x100).as_slice(),
        &[0x2a, 0, 1, 2, 3, 4, 0, 1, 0, 0]
    );
    // Past 2^32 blocks: the 16-byte form.
    let c = scsi::rw(false, 0x1_0000_0000, 1);
    assert_eq!(
        c.as_slice(),
        &[0x88, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    );
    // A run that ends past 2^32 too.
    assert_eq!(scsi::rw(true, 0xffff_ffff, 2).bytes[0], 0x8a);
    assert_eq!(scsi::read_capacity_16(32).as_slice()[..2], [0x9e, 0x10]);
    assert_eq!(scsi::read_capacity_16(32).bytes[13], 32);
    assert_eq!(scsi::inquiry(36).as_slice(), &[0x12, 0, 0, 0, 36, 0]);
    assert_eq!(
        scsi::mode_sense_6(192).as_slice(),
        &[0x1a, 0, 0x3f, 0, 192, 0]
    );
    assert_eq!(scsi::synchronize_cache().as_slice()[0], 0x35);
    assert_eq!(
        scsi::parse_capacity_10(&[0, 0, 0xff, 0xff, 0, 0, 2, 0]),
        Some(scsi::Capacity {
            blocks: 0x10000,
            block_size: 512
        })
    );
    assert_eq!(scsi::parse_capacity_16(&[0xff; 12]), None);
    let mut s = [0u8; 18];
    s[0] = 0x70;
    s[2] = 6;
    s[12] = 0x28;
    assert_eq!(
        scsi::Sense::parse(&s),
        Some(scsi::Sense {
            key: 6,
            asc: 0x28,
            ascq: 0
        })
    );
    assert_eq!(
        scsi::mode_sense_write_protected(&[3, 0, 0x80, 0]),
        Some(true)
    );
    let b = bot::cbw(7, 512, true, 1, scsi::rw(false, 9, 1).as_slice());
    assert_eq!(&b[0..4], b"USBC");
    assert_eq!(b[12..15], [0x80, 1, 10]);
}

#[test]
fn csw_checks() {
    let mut c = [0u8; 13];
    c[0..4].copy_from_slice(b"USBS");
    c[4..8].copy_from_slice(&5u32.to_le_bytes());
    assert_eq!(bot::parse_csw(&c, 5, 0), Ok((0, 0)));
    assert_eq!(bot::parse_csw(&c[..12], 5, 0), Err(CswFault::Length(12)));
    assert_eq!(
        bot::parse_csw(&c, 6, 0),
        Err(CswFault::Tag {
            expected: 6,
            got: 5
        })
    );
    c[8] = 9;
    assert_eq!(
        bot::parse_csw(&c, 5, 4),
        Err(CswFault::Residue {
            residue: 9,
            expected: 4
        })
    );
    c[12] = 3;
    assert_eq!(bot::parse_csw(&c, 5, 40), Err(CswFault::Status(3)));
    c[0] = b'X';
    assert!(matches!(
        bot::parse_csw(&c, 5, 40),
        Err(CswFault::Signature(_))
    ));
}

// ---------------------------------------------------------------- fake controller + stick

#[derive(Default, Clone, Copy)]
struct Faults {
    stall_cbw: u32,
    stall_data: u32,
    wrong_tag: u32,
    short_csw: u32,
    oversized_csw: u32,
    phase_error: u32,
    /// Every command fails with this sense key (TEST UNIT READY included).
    not_ready: u32,
    write_protect: bool,
    /// Never answers bulk transfers at all (NAK forever → timeout).
    dead: bool,
}

enum Phase {
    Cbw,
    In(Vec<u8>, u32),
    Out { lba: u64, len: usize, tag: u32 },
    Csw { tag: u32, residue: u32, status: u8 },
}

struct FakeHc {
    disk: Vec<u8>,
    device: Vec<u8>,
    config: Vec<u8>,
    f: Faults,
    phase: Phase,
    halted_in: bool,
    halted_out: bool,
    sense: [u8; 18],
    resets: u32,
    clear_halts: u32,
    host_resets: u32,
    released: bool,
    disabled: bool,
    configured: Vec<u8>,
    set_config: Option<u16>,
    max_transfer: usize,
    commands: Vec<u8>,
    ep0_mps: u16,
}

impl FakeHc {
    fn new(blocks: usize) -> Self {
        let disk = (0..blocks * 512)
            .map(|i| (i / 512) as u8 ^ (i % 251) as u8)
            .collect();
        FakeHc {
            disk,
            device: device_desc(),
            config: config_desc(),
            f: Faults::default(),
            phase: Phase::Cbw,
            halted_in: false,
            halted_out: false,
            sense: [0; 18],
            resets: 0,
            clear_halts: 0,
            host_resets: 0,
            released: false,
            disabled: false,
            configured: Vec::new(),
            set_config: None,
            max_transfer: 64 * 1024,
            commands: Vec::new(),
            ep0_mps: 64,
        }
    }

    fn fail(&mut self, tag: u32, residue: u32, key: u8, asc: u8) {
        self.sense = [0; 18];
        self.sense[0] = 0x70;
        self.sense[2] = key;
        self.sense[7] = 10;
        self.sense[12] = asc;
        self.phase = Phase::Csw {
            tag,
            residue,
            status: 1,
        };
    }

    fn take(n: &mut u32) -> bool {
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }

    fn exec(&mut self, cbw: &[u8]) {
        let tag = u32::from_le_bytes(cbw[4..8].try_into().unwrap());
        let len = u32::from_le_bytes(cbw[8..12].try_into().unwrap());
        let cdb = &cbw[15..15 + usize::from(cbw[14])];
        self.commands.push(cdb[0]);
        let blocks = (self.disk.len() / 512) as u64;
        if Self::take(&mut self.f.phase_error) {
            // The device stalls the data phase, then reports the phase error in its CSW.
            self.halted_in = len > 0;
            self.phase = Phase::Csw {
                tag,
                residue: len,
                status: 2,
            };
            return;
        }
        if cdb[0] != scsi::REQUEST_SENSE
            && cdb[0] != scsi::INQUIRY
            && Self::take(&mut self.f.not_ready)
        {
            return self.fail(tag, len, scsi::SENSE_UNIT_ATTENTION, 0x28);
        }
        let reply = |v: Vec<u8>| {
            let mut v = v;
            v.truncate(len as usize);
            v
        };
        match cdb[0] {
            scsi::TEST_UNIT_READY | scsi::SYNCHRONIZE_CACHE_10 => {
                self.phase = Phase::Csw {
                    tag,
                    residue: 0,
                    status: 0,
                }
            }
            scsi::INQUIRY => {
                let mut d = vec![0u8; 36];
                d[1] = 0x80;
                d[8..16].copy_from_slice(b"QEMU    ");
                d[16..32].copy_from_slice(b"QEMU HARDDISK   ");
                self.phase = Phase::In(reply(d), tag);
            }
            scsi::REQUEST_SENSE => self.phase = Phase::In(reply(self.sense.to_vec()), tag),
            scsi::READ_CAPACITY_10 => {
                let mut d = ((blocks - 1) as u32).to_be_bytes().to_vec();
                d.extend_from_slice(&512u32.to_be_bytes());
                self.phase = Phase::In(reply(d), tag);
            }
            scsi::MODE_SENSE_6 => {
                let d = vec![3, 0, if self.f.write_protect { 0x80 } else { 0 }, 0];
                self.phase = Phase::In(reply(d), tag);
            }
            scsi::READ_10 | scsi::WRITE_10 => {
                let lba = u64::from(u32::from_be_bytes(cdb[2..6].try_into().unwrap()));
                let n = usize::from(u16::from_be_bytes([cdb[7], cdb[8]]));
                if lba + n as u64 > blocks || n * 512 != len as usize {
                    return self.fail(tag, len, scsi::SENSE_ILLEGAL_REQUEST, 0x21);
                }
                if cdb[0] == scsi::READ_10 {
                    let d = self.disk[lba as usize * 512..(lba as usize + n) * 512].to_vec();
                    self.phase = Phase::In(d, tag);
                } else if self.f.write_protect {
                    self.fail(tag, len, scsi::SENSE_DATA_PROTECT, 0x27)
                } else {
                    self.phase = Phase::Out {
                        lba,
                        len: n * 512,
                        tag,
                    };
                }
            }
            _ => self.fail(tag, len, scsi::SENSE_ILLEGAL_REQUEST, 0x20),
        }
    }
}

impl HostController for FakeHc {
    fn ports(&self) -> u8 {
        1
    }
    fn port_status(&mut self, _port: u8) -> PortStatus {
        PortStatus {
            connected: true,
            enabled: true,
            changed: false,
        }
    }
    fn enable_port(&mut self, _port: u8) -> Result<Speed, UsbError> {
        Ok(Speed::High)
    }
    fn disable_port(&mut self, _port: u8) {
        self.disabled = true;
    }
    fn new_device(&mut self, _port: u8, _speed: Speed) -> Result<DeviceId, UsbError> {
        Ok(DeviceId(1))
    }
    fn release_device(&mut self, _dev: DeviceId) {
        self.released = true;
    }
    fn set_ep0_max_packet(&mut self, _dev: DeviceId, mps: u16) -> Result<(), UsbError> {
        self.ep0_mps = mps;
        Ok(())
    }
    fn control(&mut self, _dev: DeviceId, s: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        assert_eq!(usize::from(s.length), data.len());
        match (s.request_type, s.request) {
            (req::IN_STD_DEVICE, req::GET_DESCRIPTOR) => {
                let src = match (s.value >> 8) as u8 {
                    DT_DEVICE => self.device.clone(),
                    DT_CONFIG => self.config.clone(),
                    DT_STRING if s.value & 0xff == 0 => vec![4, 3, 9, 4],
                    DT_STRING => vec![8, 3, b'A', 0, b'd', 0, b'r', 0],
                    _ => return Err(UsbError::Stall),
                };
                let n = src.len().min(data.len());
                data[..n].copy_from_slice(&src[..n]);
                Ok(n)
            }
            (req::OUT_STD_DEVICE, req::SET_CONFIGURATION) => {
                self.set_config = Some(s.value);
                Ok(0)
            }
            (req::OUT_STD_ENDPOINT, req::CLEAR_FEATURE) => {
                self.clear_halts += 1;
                if s.index & 0x80 != 0 {
                    self.halted_in = false;
                } else {
                    self.halted_out = false;
                }
                Ok(0)
            }
            (req::OUT_CLASS_INTERFACE, 0xff) => {
                self.resets += 1;
                self.phase = Phase::Cbw;
                Ok(0)
            }
            (req::IN_CLASS_INTERFACE, 0xfe) => Err(UsbError::Stall),
            _ => Err(UsbError::Stall),
        }
    }
    fn configure_endpoints(
        &mut self,
        _dev: DeviceId,
        eps: &[EndpointDescriptor],
    ) -> Result<(), UsbError> {
        self.configured = eps.iter().map(|e| e.address).collect();
        Ok(())
    }
    fn bulk_in(&mut self, _dev: DeviceId, ep: u8, buf: &mut [u8]) -> Result<usize, UsbError> {
        assert_eq!(ep, 0x81);
        if self.f.dead {
            return Err(UsbError::Timeout);
        }
        if self.halted_in {
            return Err(UsbError::Stall);
        }
        match core::mem::replace(&mut self.phase, Phase::Cbw) {
            Phase::In(d, tag) => {
                if Self::take(&mut self.f.stall_data) {
                    self.halted_in = true;
                    self.phase = Phase::Csw {
                        tag,
                        residue: d.len() as u32,
                        status: 1,
                    };
                    return Err(UsbError::Stall);
                }
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                self.phase = Phase::Csw {
                    tag,
                    residue: (buf.len() - n) as u32,
                    status: 0,
                };
                Ok(n)
            }
            Phase::Csw {
                tag,
                residue,
                status,
            } => {
                let mut c = vec![0u8; 13];
                c[0..4].copy_from_slice(b"USBS");
                let tag = if Self::take(&mut self.f.wrong_tag) {
                    tag ^ 0xdead
                } else {
                    tag
                };
                c[4..8].copy_from_slice(&tag.to_le_bytes());
                c[8..12].copy_from_slice(&residue.to_le_bytes());
                c[12] = status;
                if Self::take(&mut self.f.short_csw) {
                    c.truncate(7);
                }
                if Self::take(&mut self.f.oversized_csw) {
                    c.extend_from_slice(&[0; 8]);
                }
                let n = c.len().min(buf.len());
                buf[..n].copy_from_slice(&c[..n]);
                if c.len() > buf.len() {
                    return Err(UsbError::Babble);
                }
                Ok(n)
            }
            other => {
                // An IN where the device expects a CBW or OUT data: the device stalls.
                self.phase = other;
                self.halted_in = true;
                Err(UsbError::Stall)
            }
        }
    }
    fn bulk_out(&mut self, _dev: DeviceId, ep: u8, data: &[u8]) -> Result<usize, UsbError> {
        assert_eq!(ep, 0x02);
        if self.f.dead {
            return Err(UsbError::Timeout);
        }
        if self.halted_out {
            return Err(UsbError::Stall);
        }
        match core::mem::replace(&mut self.phase, Phase::Cbw) {
            Phase::Cbw => {
                if data.len() != 31 || &data[0..4] != b"USBC" {
                    self.halted_out = true;
                    self.halted_in = true;
                    return Err(UsbError::Stall);
                }
                if Self::take(&mut self.f.stall_cbw) {
                    self.halted_out = true;
                    return Err(UsbError::Stall);
                }
                self.exec(data);
                Ok(31)
            }
            Phase::Out { lba, len, tag } => {
                let n = len.min(data.len());
                let at = lba as usize * 512;
                self.disk[at..at + n].copy_from_slice(&data[..n]);
                self.phase = Phase::Csw {
                    tag,
                    residue: (len - n) as u32,
                    status: 0,
                };
                Ok(n)
            }
            other => {
                self.phase = other;
                self.halted_out = true;
                Err(UsbError::Stall)
            }
        }
    }
    fn reset_endpoint(&mut self, _dev: DeviceId, _ep: u8) -> Result<(), UsbError> {
        self.host_resets += 1;
        Ok(())
    }
    fn max_transfer(&self) -> usize {
        self.max_transfer
    }
}

fn bring_up(hc: &mut FakeHc) -> (Transport, ScsiDisk) {
    let dev = enumerate(hc, 1).unwrap();
    let i = dev
        .config
        .interfaces
        .iter()
        .find_map(|i| Transport::from_interface(dev.id, i));
    let mut t = i.unwrap();
    assert_eq!(t.max_lun(hc), 0);
    let d = ScsiDisk::probe(&mut t, hc, 0, 10, |_| {}).unwrap();
    (t, d)
}

#[test]
fn enumerates_and_configures() {
    let mut hc = FakeHc::new(64);
    let dev = enumerate(&mut hc, 1).unwrap();
    assert_eq!(dev.product, "Adr");
    assert_eq!(hc.configured, vec![0x81, 0x02]);
    assert_eq!(hc.set_config, Some(1));
    assert_eq!(dev.speed, Speed::High);
}

#[test]
fn full_speed_ep0_is_resized() {
    let mut hc = FakeHc::new(64);
    hc.device[7] = 16;
    enumerate(&mut hc, 1).unwrap();
    assert_eq!(hc.ep0_mps, 16);
}

#[test]
fn malformed_config_fails_enumeration_and_disables_port() {
    let mut hc = FakeHc::new(64);
    hc.config[9] = 0; // zero-length interface descriptor
    let e = enumerate(&mut hc, 1).unwrap_err();
    assert_eq!(e, UsbError::Descriptor(DescError::ZeroLength { offset: 9 }));
    assert!(hc.released && hc.disabled);
    assert_eq!(hc.set_config, None);
}

#[test]
fn reads_and_writes_in_runs() {
    let mut hc = FakeHc::new(1024);
    hc.max_transfer = 16 * 1024;
    let (mut t, d) = bring_up(&mut hc);
    assert_eq!(d.blocks, 1024);
    assert_eq!(d.vendor, "QEMU");
    assert!(!d.write_protected);
    let mut buf = vec![0u8; 100 * 512];
    hc.commands.clear();
    d.read(&mut t, &mut hc, 7, &mut buf).unwrap();
    assert_eq!(buf, hc.disk[7 * 512..107 * 512]);
    // 100 blocks in 32-block runs: 4 READ(10)s.
    assert_eq!(hc.commands, vec![0x28; 4]);
    let data: Vec<u8> = (0..40 * 512).map(|i| (i * 7) as u8).collect();
    d.write(&mut t, &mut hc, 1000, &data[..24 * 512]).unwrap();
    assert_eq!(hc.disk[1000 * 512..1024 * 512], data[..24 * 512]);
    assert_eq!(
        d.write(&mut t, &mut hc, 1001, &data[..24 * 512]),
        Err(DiskError::Range)
    );
    assert_eq!(
        d.read(&mut t, &mut hc, 0, &mut buf[..100]),
        Err(DiskError::Range)
    );
    d.flush(&mut t, &mut hc).unwrap();
    assert_eq!(t.resets, 0);
}

#[test]
fn unit_attention_is_retried() {
    let mut hc = FakeHc::new(64);
    hc.f.not_ready = 3;
    let (_, d) = bring_up(&mut hc);
    assert_eq!(d.blocks, 64);
    let mut hc = FakeHc::new(64);
    hc.f.not_ready = 100;
    let dev = enumerate(&mut hc, 1).unwrap();
    let mut t = Transport::from_interface(dev.id, &dev.config.interfaces[0]).unwrap();
    assert_eq!(
        ScsiDisk::probe(&mut t, &mut hc, 0, 5, |_| {}).unwrap_err(),
        DiskError::NotReady
    );
}

#[test]
fn write_protect_from_mode_sense() {
    let mut hc = FakeHc::new(64);
    hc.f.write_protect = true;
    let (mut t, d) = bring_up(&mut hc);
    assert!(d.write_protected);
    assert_eq!(
        d.write(&mut t, &mut hc, 0, &[0; 512]),
        Err(DiskError::WriteProtected)
    );
}

#[test]
fn stalled_data_phase_reads_csw_and_reports_sense() {
    let mut hc = FakeHc::new(64);
    let (mut t, d) = bring_up(&mut hc);
    hc.f.stall_data = 1;
    hc.sense[0] = 0x70;
    hc.sense[2] = scsi::SENSE_MEDIUM_ERROR;
    let mut buf = [0u8; 1024];
    let e = d.read(&mut t, &mut hc, 3, &mut buf).unwrap_err();
    assert!(matches!(e, DiskError::Sense(_)), "{e:?}");
    // Cleared on both sides, no reset recovery needed, and the next read works.
    assert!(hc.clear_halts >= 1 && hc.host_resets >= 1);
    assert_eq!(t.resets, 0);
    d.read(&mut t, &mut hc, 3, &mut buf).unwrap();
    assert_eq!(buf[..], hc.disk[3 * 512..5 * 512]);
}

fn fault_then_recover(set: impl Fn(&mut Faults), want: impl Fn(&BotError) -> bool) {
    // One fault: reset recovery, then the same READ is sent again and returns the data.
    let mut hc = FakeHc::new(64);
    let (mut t, d) = bring_up(&mut hc);
    set(&mut hc.f);
    let mut buf = [0u8; 512];
    let before = hc.commands.len();
    d.read(&mut t, &mut hc, 5, &mut buf).unwrap();
    assert_eq!(buf[..], hc.disk[5 * 512..6 * 512]);
    assert_eq!(t.resets, 1, "reset recovery");
    assert_eq!(t.retries, 1);
    assert_eq!(hc.resets, 1);
    assert!(!hc.halted_in && !hc.halted_out);
    let sent = &hc.commands[before..];
    assert!(sent.iter().all(|&c| c == scsi::READ_10), "{sent:?}");

    // A fault that persists: every attempt fails, each followed by reset recovery, and the
    // caller gets the error rather than an endless loop.
    let mut hc = FakeHc::new(64);
    let (mut t, d) = bring_up(&mut hc);
    for _ in 0..bot::COMMAND_ATTEMPTS {
        set(&mut hc.f);
    }
    let e = d.read(&mut t, &mut hc, 5, &mut buf).unwrap_err();
    match e {
        DiskError::Transport(b) => assert!(want(&b), "{b:?}"),
        e => panic!("{e:?}"),
    }
    assert_eq!(t.resets, bot::COMMAND_ATTEMPTS);
    assert_eq!(t.retries, bot::COMMAND_ATTEMPTS - 1);
    assert!(!hc.halted_in && !hc.halted_out);
    d.read(&mut t, &mut hc, 5, &mut buf).unwrap();
    assert_eq!(buf[..], hc.disk[5 * 512..6 * 512]);
}

#[test]
fn wrong_tag_triggers_reset_recovery() {
    fault_then_recover(
        |f| f.wrong_tag += 1,
        |e| matches!(e, BotError::BadCsw(CswFault::Tag { .. })),
    );
}

#[test]
fn short_csw_triggers_reset_recovery() {
    fault_then_recover(
        |f| f.short_csw += 1,
        |e| *e == BotError::BadCsw(CswFault::Length(7)),
    );
}

#[test]
fn oversized_csw_triggers_reset_recovery() {
    fault_then_recover(
        |f| f.oversized_csw += 1,
        |e| {
            matches!(
                e,
                BotError::BadCsw(CswFault::Length(14)) | BotError::Usb(UsbError::Babble)
            )
        },
    );
}

#[test]
fn phase_error_triggers_reset_recovery() {
    fault_then_recover(|f| f.phase_error += 1, |e| *e == BotError::PhaseError);
}

#[test]
fn stalled_cbw_triggers_reset_recovery() {
    fault_then_recover(
        |f| f.stall_cbw += 1,
        |e| *e == BotError::Usb(UsbError::Stall),
    );
}

#[test]
fn dead_device_times_out_without_reset_storm() {
    let mut hc = FakeHc::new(64);
    let (mut t, d) = bring_up(&mut hc);
    hc.f.dead = true;
    let mut buf = [0u8; 512];
    let e = d.read(&mut t, &mut hc, 0, &mut buf).unwrap_err();
    assert_eq!(e, DiskError::Transport(BotError::Usb(UsbError::Timeout)));
    assert!(t.resets <= 1);
}
