//! The driver against a fake controller and codec. The controller follows QEMU's
//! `intel-hda` where it matters (reset values, RINTCNT stopping the CORB until RIRBSTS is
//! cleared, SRST clearing itself, BCIS stalling the stream, BDL parsed when RUN is set);
//! the codec answers verbs like `hda-duplex` (with its mixer: amplifier with 0x4a steps),
//! or like a graph the test builds (mixers, selectors, cycles, malformed lists).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use adros_hal::fake::{FakeHal, FakeMemory};

use super::codec::*;
use super::convert::*;
use super::format::*;
use super::*;

#[derive(Clone, Default)]
struct Node {
    params: BTreeMap<u8, u32>,
    config: u32,
    /// Raw connection list entries (short form unless CONNLIST_LEN says long).
    conn: Vec<u32>,
}

#[derive(Default)]
struct Codec {
    nodes: BTreeMap<u8, Node>,
    silent: bool,
    format: BTreeMap<u8, u32>,
    stream_id: BTreeMap<u8, u32>,
    /// (nid, output?, left?) → (gain, mute)
    amps: BTreeMap<(u8, bool, bool), (u32, bool)>,
    pinctl: BTreeMap<u8, u32>,
    conn_sel: BTreeMap<u8, u32>,
    log: Vec<u32>,
}

const QEMU_PCM: u32 = (1 << 17) | 0x1fc; // 16-bit, 16–96 kHz
const QEMU_AMP: u32 = (1 << 31) | (3 << 16) | (0x4a << 8) | 0x4a;

fn widget(kind: u32, extra: u32) -> u32 {
    (kind << 20) | extra
}

impl Codec {
    /// QEMU's hda-duplex (mixer on): root 0, AFG 1, DAC 2 → line-out pin 3, ADC 4 ← pin 5.
    fn duplex() -> Self {
        let mut c = Codec::default();
        let p = |v: &[(u8, u32)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        c.nodes.insert(
            0,
            Node {
                params: p(&[(PAR_VENDOR_ID, 0x1af4_0022), (PAR_NODE_COUNT, 0x0001_0001)]),
                ..Node::default()
            },
        );
        c.nodes.insert(
            1,
            Node {
                params: p(&[
                    (PAR_FUNCTION_TYPE, FUNCTION_AUDIO),
                    (PAR_NODE_COUNT, 0x0002_0004),
                    (PAR_PCM, QEMU_PCM),
                    (PAR_AMP_IN_CAP, 0),
                    (PAR_AMP_OUT_CAP, 0),
                ]),
                ..Node::default()
            },
        );
        c.nodes.insert(
            2,
            Node {
                params: p(&[
                    (
                        PAR_AUDIO_WIDGET_CAP,
                        widget(
                            0,
                            WCAP_FORMAT_OVRD | WCAP_AMP_OVRD | WCAP_OUT_AMP | WCAP_STEREO,
                        ),
                    ),
                    (PAR_PCM, QEMU_PCM),
                    (PAR_AMP_IN_CAP, 0),
                    (PAR_AMP_OUT_CAP, QEMU_AMP),
                ]),
                ..Node::default()
            },
        );
        c.nodes.insert(
            3,
            Node {
                params: p(&[
                    (
                        PAR_AUDIO_WIDGET_CAP,
                        widget(4, WCAP_CONN_LIST | WCAP_STEREO),
                    ),
                    (PAR_PIN_CAP, PINCAP_OUT),
                    (PAR_CONNLIST_LEN, 1),
                ]),
                config: 0x10, // jack, line out (device 0), association 1
                conn: vec![2],
            },
        );
        c.nodes.insert(
            4,
            Node {
                params: p(&[
                    (
                        PAR_AUDIO_WIDGET_CAP,
                        widget(1, WCAP_CONN_LIST | WCAP_FORMAT_OVRD | WCAP_STEREO),
                    ),
                    (PAR_CONNLIST_LEN, 1),
                    (PAR_PCM, QEMU_PCM),
                ]),
                conn: vec![5],
                ..Node::default()
            },
        );
        c.nodes.insert(
            5,
            Node {
                params: p(&[
                    (PAR_AUDIO_WIDGET_CAP, widget(4, WCAP_STEREO)),
                    (PAR_PIN_CAP, 1 << 5),
                ]),
                config: (0x8 << 20) | 0x20, // line in
                ..Node::default()
            },
        );
        c
    }

    fn set_node_count(&mut self, start: u8, n: u8) {
        self.nodes
            .get_mut(&1)
            .unwrap()
            .params
            .insert(PAR_NODE_COUNT, (u32::from(start) << 16) | u32::from(n));
    }

    fn add(&mut self, nid: u8, caps: u32, conn: Vec<u32>, config: u32, pin_caps: u32) {
        let mut n = Node::default();
        n.params.insert(PAR_AUDIO_WIDGET_CAP, caps);
        n.params.insert(PAR_CONNLIST_LEN, conn.len() as u32);
        n.params.insert(PAR_PIN_CAP, pin_caps);
        n.params.insert(PAR_AMP_OUT_CAP, QEMU_AMP);
        n.params.insert(PAR_AMP_IN_CAP, QEMU_AMP);
        n.params.insert(PAR_PCM, QEMU_PCM);
        n.config = config;
        n.conn = conn;
        self.nodes.insert(nid, n);
    }

    /// Answers a command word like QEMU's hda-codec (unknown verbs answer 0); None when
    /// the codec is silent.
    fn answer(&mut self, word: u32) -> Option<u32> {
        if self.silent {
            return None;
        }
        self.log.push(word);
        let nid = ((word >> 20) & 0x7f) as u8;
        let data = word & 0xf_ffff;
        let (verb, payload) = if data & 0x70000 == 0x70000 {
            ((data >> 8) & 0xfff, data & 0xff)
        } else {
            ((data >> 8) & 0xf00, data & 0xffff)
        };
        // QEMU answers 0 for a node it does not have.
        let node = self.nodes.get(&nid).cloned().unwrap_or_default();
        Some(match verb {
            0xf00 => *node.params.get(&(payload as u8)).unwrap_or(&0),
            0xf02 => {
                let lp = *node.params.get(&PAR_CONNLIST_LEN).unwrap_or(&0);
                let long = lp & 0x80 != 0;
                let count = (lp & 0x7f) as usize;
                let (per, width) = if long { (2, 16) } else { (4, 8) };
                let mut r = 0;
                for k in 0..per {
                    let i = payload as usize + k;
                    if i < count {
                        let e = node.conn.get(i).copied().unwrap_or(0x7f);
                        r |= (e & ((1 << width) - 1)) << (k * width);
                    }
                }
                r
            }
            0xf1c => node.config,
            0x700 => {
                // 0x701 (connect select), 0x705 (power), 0x706 (stream), 0x707 (pin ctl), 0x70c
                0
            }
            0x200 => {
                self.format.insert(nid, payload);
                0
            }
            0x300 => {
                let output = payload & AMP_SET_OUTPUT != 0;
                for (bit, left) in [(AMP_SET_LEFT, true), (AMP_SET_RIGHT, false)] {
                    if payload & bit != 0 {
                        self.amps.insert(
                            (nid, output, left),
                            (payload & 0x7f, payload & AMP_MUTE != 0),
                        );
                    }
                }
                0
            }
            v if v & 0xf00 == 0x700 => {
                match v {
                    0x701 => {
                        self.conn_sel.insert(nid, payload);
                    }
                    0x706 => {
                        self.stream_id.insert(nid, payload);
                    }
                    0x707 => {
                        self.pinctl.insert(nid, payload);
                    }
                    _ => {}
                }
                0
            }
            _ => 0,
        })
    }
}

struct Ctl {
    regs: [u8; 0x200],
    rirb_count: u32,
    codec: Option<Codec>,
    /// Parsed BDL of output stream 4 (addr, len, ioc) and the DMA cursor.
    bdl: Vec<(u64, u32, bool)>,
    be: usize,
    bp: u32,
    played: Vec<u8>,
    resets: u32,
    /// GCTL.CRST never reads back.
    stuck_reset: bool,
}

#[derive(Clone)]
struct Fake {
    st: Arc<Mutex<Ctl>>,
    mem: FakeMemory,
}

const OUT0: usize = 4; // first output descriptor: GCAP 0x4401 has 4 input streams

impl Ctl {
    fn r8(&self, o: usize) -> u8 {
        self.regs[o]
    }
    fn r16(&self, o: usize) -> u16 {
        u16::from_le_bytes([self.regs[o], self.regs[o + 1]])
    }
    fn r32(&self, o: usize) -> u32 {
        u32::from_le_bytes(self.regs[o..o + 4].try_into().unwrap())
    }
    fn w8(&mut self, o: usize, v: u8) {
        self.regs[o] = v;
    }
    fn w16(&mut self, o: usize, v: u16) {
        self.regs[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn w32(&mut self, o: usize, v: u32) {
        self.regs[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn reset(&mut self) {
        self.resets += 1;
        self.regs = [0; 0x200];
        self.w16(GCAP, 0x4401);
        self.w8(VMAJ, 1);
        self.w8(CORBSIZE, 0x42);
        self.w8(RIRBSIZE, 0x42);
        self.rirb_count = 0;
        if self.codec.is_some() {
            self.w16(STATESTS, 1);
        }
        self.bdl.clear();
    }

    fn corb_run(&mut self, mem: &FakeMemory) {
        loop {
            if self.r8(CORBCTL) & CORBCTL_RUN == 0 {
                return;
            }
            let wp = self.r16(CORBWP) & 0xff;
            let rp = self.r16(CORBRP) & 0xff;
            if rp == wp || self.rirb_count == u32::from(self.r16(RINTCNT)) {
                return;
            }
            let rp = (rp + 1) & 0xff;
            self.w16(CORBRP, rp);
            let base = u64::from(self.r32(CORBLBASE)) | (u64::from(self.r32(CORBUBASE)) << 32);
            let mut b = [0u8; 4];
            assert!(
                mem.read(base + 4 * u64::from(rp), &mut b),
                "CORB outside memory"
            );
            let word = u32::from_le_bytes(b);
            let cad = word >> 28;
            let resp = if cad == 0 {
                self.codec.as_mut().and_then(|c| c.answer(word))
            } else {
                None
            };
            let Some(resp) = resp else { continue };
            if self.r8(RIRBCTL) & RIRBCTL_DMAEN == 0 {
                continue;
            }
            let wp = (self.r16(RIRBWP) + 1) & 0xff;
            let rb = u64::from(self.r32(RIRBLBASE)) | (u64::from(self.r32(RIRBUBASE)) << 32);
            assert!(mem.write(rb + 8 * u64::from(wp), &resp.to_le_bytes()));
            assert!(mem.write(rb + 8 * u64::from(wp) + 4, &cad.to_le_bytes()));
            self.w16(RIRBWP, wp);
            self.rirb_count += 1;
            let corb_empty = self.r16(CORBRP) & 0xff == self.r16(CORBWP) & 0xff;
            if (self.rirb_count == u32::from(self.r16(RINTCNT)) || corb_empty)
                && self.r8(RIRBCTL) & RIRBCTL_RINTCTL != 0
            {
                let s = self.r8(RIRBSTS) | 1;
                self.w8(RIRBSTS, s);
            }
        }
    }

    fn intsts(&self) -> u32 {
        let mut s = 0;
        for i in 0..8 {
            if self.r8(sd(i) + SD_STS) & SD_STS_BCIS != 0 {
                s |= 1 << i;
            }
        }
        if s & self.r32(INTCTL) != 0 {
            s |= 1 << 31;
        }
        s
    }

    fn after_write(&mut self, off: usize, old: &[u8; 0x200], mem: &FakeMemory) {
        let old32 = |o: usize| u32::from_le_bytes(old[o..o + 4].try_into().unwrap());
        match off {
            GCTL => {
                if self.r32(GCTL) & GCTL_CRST == 0 {
                    self.reset();
                } else if self.stuck_reset {
                    self.w32(GCTL, 0);
                }
            }
            STATESTS => {
                let v = old32(STATESTS) as u16 & !self.r16(STATESTS);
                self.w16(STATESTS, v);
            }
            CORBWP | CORBCTL => self.corb_run(mem),
            RIRBWP => {
                let v = if self.r16(RIRBWP) & RIRBWP_RST != 0 {
                    0
                } else {
                    old32(RIRBWP) as u16
                };
                self.w16(RIRBWP, v);
            }
            RIRBSTS => {
                let was = old[RIRBSTS];
                let v = was & !self.r8(RIRBSTS);
                self.w8(RIRBSTS, v);
                if was & 1 != 0 && v & 1 == 0 {
                    self.rirb_count = 0;
                    self.corb_run(mem);
                }
            }
            o if (0x80..0x180).contains(&o) => {
                let i = (o - 0x80) / 0x20;
                let base = sd(i);
                match o - base {
                    SD_STS => {
                        let v = old[base + SD_STS] & !self.r8(base + SD_STS);
                        self.w8(base + SD_STS, v);
                    }
                    SD_CTL => {
                        let ctl = self.r32(base);
                        if ctl & SD_CTL_SRST != 0 {
                            self.w32(base, 0);
                        }
                        // The status byte is not written through CTL.
                        self.w8(base + SD_STS, old[base + SD_STS]);
                        let was = old32(base) & SD_CTL_RUN;
                        let now = self.r32(base) & SD_CTL_RUN;
                        if now != 0 && was == 0 && i == OUT0 {
                            self.parse_bdl(mem);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn parse_bdl(&mut self, mem: &FakeMemory) {
        let base = sd(OUT0);
        let addr =
            u64::from(self.r32(base + SD_BDPL)) | (u64::from(self.r32(base + SD_BDPU)) << 32);
        let n = usize::from(self.r16(base + SD_LVI)) + 1;
        self.bdl.clear();
        for i in 0..n {
            let mut e = [0u8; 16];
            assert!(mem.read(addr + 16 * i as u64, &mut e));
            self.bdl.push((
                u64::from_le_bytes(e[0..8].try_into().unwrap()),
                u32::from_le_bytes(e[8..12].try_into().unwrap()),
                u32::from_le_bytes(e[12..16].try_into().unwrap()) & 1 != 0,
            ));
        }
        self.be = 0;
        self.bp = 0;
        self.w32(base + SD_LPIB, 0);
    }

    /// Fetches up to `n` bytes from output stream 0 like `intel_hda_xfer`: nothing while
    /// stopped or while BCIS is set. Returns the bytes fetched.
    fn fetch(&mut self, n: usize, mem: &FakeMemory) -> usize {
        let base = sd(OUT0);
        if self.r32(base) & SD_CTL_RUN == 0 || self.bdl.is_empty() {
            return 0;
        }
        if self.r8(base + SD_STS) & SD_STS_BCIS != 0 {
            return 0;
        }
        let cbl = self.r32(base + SD_CBL);
        let mut left = n;
        let mut irq = false;
        while left > 0 {
            let (addr, len, ioc) = self.bdl[self.be];
            let lpib = self.r32(base + SD_LPIB);
            let copy = (left as u32).min(cbl - lpib).min(len - self.bp) as usize;
            let mut b = vec![0u8; copy];
            assert!(mem.read(addr + u64::from(self.bp), &mut b));
            self.played.extend_from_slice(&b);
            self.w32(base + SD_LPIB, lpib + copy as u32);
            self.bp += copy as u32;
            left -= copy;
            if self.bp == len {
                irq |= ioc;
                self.bp = 0;
                self.be += 1;
                if self.be == self.bdl.len() {
                    self.be = 0;
                    self.w32(base + SD_LPIB, 0);
                }
            }
        }
        if irq {
            let s = self.r8(base + SD_STS) | SD_STS_BCIS;
            self.w8(base + SD_STS, s);
        }
        n
    }
}

impl Fake {
    fn new(hal: &FakeHal, codec: Option<Codec>) -> Self {
        let mut c = Ctl {
            regs: [0; 0x200],
            rirb_count: 0,
            codec,
            bdl: Vec::new(),
            be: 0,
            bp: 0,
            played: Vec::new(),
            resets: 0,
            stuck_reset: false,
        };
        c.reset();
        c.resets = 0;
        c.w32(GCTL, GCTL_CRST);
        Fake {
            st: Arc::new(Mutex::new(c)),
            mem: hal.mem.clone(),
        }
    }
    fn write(&self, off: usize, bytes: &[u8]) {
        let mut s = self.st.lock().unwrap();
        let old = s.regs;
        s.regs[off..off + bytes.len()].copy_from_slice(bytes);
        s.after_write(off, &old, &self.mem);
    }
    fn fetch(&self, n: usize) -> usize {
        self.st.lock().unwrap().fetch(n, &self.mem)
    }
    fn played(&self) -> Vec<u8> {
        std::mem::take(&mut self.st.lock().unwrap().played)
    }
    fn codec<R>(&self, f: impl FnOnce(&mut Codec) -> R) -> R {
        f(self.st.lock().unwrap().codec.as_mut().unwrap())
    }
}

impl Mmio for Fake {
    fn read32(&self, off: usize) -> u32 {
        let s = self.st.lock().unwrap();
        if off == INTSTS {
            s.intsts()
        } else {
            s.r32(off)
        }
    }
    fn write32(&self, off: usize, v: u32) {
        self.write(off, &v.to_le_bytes());
    }
    fn read8(&self, off: usize) -> u8 {
        self.st.lock().unwrap().r8(off)
    }
    fn read16(&self, off: usize) -> u16 {
        self.st.lock().unwrap().r16(off)
    }
    fn write8(&self, off: usize, v: u8) {
        self.write(off, &[v]);
    }
    fn write16(&self, off: usize, v: u16) {
        self.write(off, &v.to_le_bytes());
    }
    fn len(&self) -> usize {
        0x200
    }
}

fn boot(codec: Option<Codec>) -> (Result<Hda<FakeHal, Fake>, Error>, Fake) {
    let hal = FakeHal::default();
    let fake = Fake::new(&hal, codec);
    (Hda::new(hal, fake.clone()), fake)
}

#[test]
fn reset_starts_the_rings_and_finds_the_codec() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let h = h.unwrap();
    assert_eq!(h.codecs, 1);
    assert_eq!((h.iss, h.oss), (4, 4));
    let s = fake.st.lock().unwrap();
    assert_eq!(s.resets, 1, "one controller reset");
    assert_ne!(s.r32(GCTL) & GCTL_CRST, 0, "out of reset");
    assert_eq!(s.r8(CORBCTL) & CORBCTL_RUN, CORBCTL_RUN);
    assert_eq!(s.r16(RINTCNT), 1, "RINTCNT 0 would stop QEMU's CORB");
    assert_eq!(s.r16(STATESTS), 0, "STATESTS acknowledged");
}

#[test]
fn verbs_round_trip_through_corb_and_rirb() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    // More verbs than the rings hold: the pointers wrap.
    for _ in 0..600 {
        assert_eq!(h.param(0, 0, PAR_VENDOR_ID), Ok(0x1af4_0022));
    }
    assert_eq!(h.param(0, 2, PAR_AMP_OUT_CAP), Ok(QEMU_AMP));
    assert_eq!(h.verb(0, 3, GET_CONFIG_DEFAULT, 0), Ok(0x10));
    let log = fake.codec(|c| c.log.clone());
    assert_eq!(log.last(), Some(&command(0, 3, GET_CONFIG_DEFAULT, 0)));
    assert_eq!(command(0, 2, SET_STREAM_FORMAT, 0x4011), 0x0022_4011);
    assert_eq!(command(0, 3, SET_PIN_WIDGET_CONTROL, 0x40), 0x0037_0740);
}

#[test]
fn a_codec_that_does_not_answer_is_an_error_not_a_hang() {
    let mut c = Codec::duplex();
    c.silent = true;
    let (h, _) = boot(Some(c));
    let mut h = h.unwrap();
    let r = h.param(0, 0, PAR_VENDOR_ID);
    assert_eq!(
        r,
        Err(Error::NoResponse {
            cad: 0,
            nid: 0,
            verb: 0xf00
        })
    );
    assert!(matches!(h.probe_output(), Err(Error::NoResponse { .. })));
    assert_eq!(h.verb_timeouts, 2);
    // A codec address nobody answers on behaves the same.
    let (h, _) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    assert!(matches!(
        h.param(3, 0, 0),
        Err(Error::NoResponse { cad: 3, .. })
    ));
    assert_eq!(
        h.param(0, 0, PAR_VENDOR_ID),
        Ok(0x1af4_0022),
        "still works after"
    );
}

#[test]
fn no_codec_and_stuck_reset_are_errors() {
    let (h, _) = boot(None);
    assert_eq!(h.err(), Some(Error::NoCodec));
    let hal = FakeHal::default();
    let fake = Fake::new(&hal, Some(Codec::duplex()));
    fake.st.lock().unwrap().stuck_reset = true;
    assert_eq!(Hda::new(hal, fake).err(), Some(Error::ResetTimeout));
}

#[test]
fn graph_walk_finds_dac_to_line_out_on_qemus_duplex_codec() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    let out = h.probe_output().unwrap().clone();
    assert_eq!(out.path.nodes, vec![3, 2]);
    assert_eq!(out.path.device, PinDevice::LineOut);
    assert_eq!(out.volume_amp.map(|v| v.0), Some(2));
    assert!(out.stereo);
    assert_eq!(out.pcm, PcmCaps(QEMU_PCM));
    assert_eq!(
        fake.codec(|c| c.pinctl.get(&3).copied()),
        Some(PINCTL_OUT_EN)
    );
    // Volume 100 = all 0x4a steps, unmuted.
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, true)).copied()),
        Some((0x4a, false))
    );
}

/// A Realtek-like graph: two DACs, a mixer and a selector, a headphone and a line-out pin;
/// the line out is preferred and reached through selector → mixer → DAC.
fn realtek_like() -> Codec {
    let mut c = Codec::duplex();
    c.nodes.retain(|n, _| *n <= 1);
    c.set_node_count(2, 0x20);
    c.add(0x02, widget(0, WCAP_STEREO), vec![], 0, 0);
    c.add(
        0x03,
        widget(0, WCAP_STEREO | WCAP_OUT_AMP | WCAP_AMP_OVRD),
        vec![],
        0,
        0,
    );
    c.add(0x09, widget(1, WCAP_CONN_LIST), vec![0x12], 0, 0); // ADC
    c.add(
        0x0b,
        widget(2, WCAP_CONN_LIST | WCAP_IN_AMP | WCAP_AMP_OVRD),
        vec![0x12, 0x03],
        0,
        0,
    );
    c.add(
        0x0c,
        widget(3, WCAP_CONN_LIST | WCAP_OUT_AMP | WCAP_AMP_OVRD),
        vec![0x02, 0x0b],
        0,
        0,
    );
    c.add(0x12, widget(4, 0), vec![], 0x8 << 20, 1 << 5); // mic in
    c.add(
        0x14,
        widget(4, WCAP_CONN_LIST),
        vec![0x02],
        0x2 << 20,
        PINCAP_OUT | PINCAP_HP_DRV,
    );
    c.add(
        0x15,
        widget(4, WCAP_CONN_LIST),
        vec![0x12, 0x0c],
        0,
        PINCAP_OUT | PINCAP_EAPD,
    );
    // An output pin with no physical connection (port connectivity 01): ignored.
    c.add(
        0x16,
        widget(4, WCAP_CONN_LIST),
        vec![0x02],
        1 << 30,
        PINCAP_OUT,
    );
    c
}

#[test]
fn graph_walk_prefers_line_out_and_goes_through_mixers_and_selectors() {
    let (h, fake) = boot(Some(realtek_like()));
    let mut h = h.unwrap();
    let out = h.probe_output().unwrap().clone();
    assert_eq!(out.path.device, PinDevice::LineOut);
    assert_eq!(out.path.nodes, vec![0x15, 0x0c, 0x02]);
    assert_eq!(out.path.sel, vec![1, 0]);
    // The pin has two connections: the select verb chose the selector.
    assert_eq!(fake.codec(|c| c.conn_sel.get(&0x15).copied()), Some(1));
    assert_eq!(
        fake.codec(|c| c.pinctl.get(&0x15).copied()),
        Some(PINCTL_OUT_EN)
    );
    // Volume on the selector's output amp (the DAC has none).
    assert_eq!(out.volume_amp.map(|v| v.0), Some(0x0c));

    // Without the direct DAC, the walk goes selector → mixer (input 1) → DAC 0x03.
    let mut c = realtek_like();
    c.nodes.get_mut(&0x0c).unwrap().conn = vec![0x12, 0x0b];
    let (h, fake) = boot(Some(c));
    let mut h = h.unwrap();
    let out = h.probe_output().unwrap().clone();
    assert_eq!(out.path.nodes, vec![0x15, 0x0c, 0x0b, 0x03]);
    assert_eq!(out.path.sel, vec![1, 1, 1]);
    // The mixer's input 1 is unmuted at 0 dB.
    assert_eq!(
        fake.codec(|c| c.amps.get(&(0x0b, false, true)).copied()),
        Some((0x4a, false))
    );
    // The DAC has the first output amp from the DAC side.
    assert_eq!(out.volume_amp.map(|v| v.0), Some(0x03));
}

#[test]
fn cyclic_and_malformed_connection_lists_do_not_panic() {
    // Mixer 0x0b ↔ selector 0x0c with no DAC anywhere: no path, no endless walk.
    let mut c = realtek_like();
    c.nodes.remove(&0x02);
    c.nodes.remove(&0x03);
    c.nodes.get_mut(&0x0b).unwrap().conn = vec![0x0c, 0x0b];
    c.nodes.get_mut(&0x0c).unwrap().conn = vec![0x0b, 0x0c];
    c.nodes.get_mut(&0x14).unwrap().conn = vec![0x0b];
    c.nodes.get_mut(&0x16).unwrap().conn = vec![0x0c];
    let (h, _) = boot(Some(c));
    let mut h = h.unwrap();
    assert_eq!(h.probe_output().err(), Some(Error::NoOutputPath));

    // Garbage: a 127-entry list of ranges and out-of-group nodes, a long-form list, a
    // node count running past 127, widgets answering all-ones.
    let mut c = realtek_like();
    c.set_node_count(0x70, 0xff);
    {
        let n = c.nodes.get_mut(&0x15).unwrap();
        n.params.insert(PAR_CONNLIST_LEN, 0x7f);
        n.conn = (0..127)
            .map(|i| if i % 2 == 0 { 0x80 | 0x7f } else { 0x01 })
            .collect();
    }
    for nid in 0x70..=0x7f {
        c.add(nid, u32::MAX, vec![0xffff, 0x8001], u32::MAX, u32::MAX);
        c.nodes
            .get_mut(&nid)
            .unwrap()
            .params
            .insert(PAR_CONNLIST_LEN, 0xff);
    }
    let (h, _) = boot(Some(c));
    let mut h = h.unwrap();
    let r = h.probe_output();
    assert!(matches!(r, Err(Error::NoOutputPath)), "{r:?}");
    let fg = read_function_group(&mut h, 0).unwrap();
    for w in &fg.widgets {
        assert!(w.conn.len() <= MAX_CONN);
        assert!(w.conn.iter().all(|&n| (0x70..=0x7f).contains(&n)));
    }
}

#[test]
fn stream_format_words() {
    let f = |rate, bits, channels| Format {
        rate,
        bits,
        channels,
    };
    assert_eq!(f(44100, 16, 2).encode(), Some(0x4011));
    assert_eq!(f(48000, 16, 2).encode(), Some(0x0011));
    assert_eq!(f(8000, 16, 1).encode(), Some(0x0510));
    assert_eq!(f(11025, 8, 1).encode(), Some(0x4300));
    assert_eq!(f(16000, 24, 2).encode(), Some(0x0231));
    assert_eq!(f(32000, 32, 2).encode(), Some(0x0a41));
    assert_eq!(f(88200, 20, 2).encode(), Some(0x4821));
    assert_eq!(f(96000, 16, 2).encode(), Some(0x0811));
    assert_eq!(f(176400, 16, 2).encode(), Some(0x5811));
    assert_eq!(f(192000, 16, 2).encode(), Some(0x1811));
    assert_eq!(
        f(384000, 16, 2).encode(),
        None,
        "48 kHz × 8 has no encoding"
    );
    assert_eq!(f(44100, 12, 2).encode(), None);
    assert_eq!(f(44100, 16, 0).encode(), None);
    assert_eq!(f(12345, 16, 2).encode(), None);
    for &rate in &RATES[..11] {
        for bits in BITS {
            for ch in [1, 2] {
                let x = f(rate, bits, ch);
                assert_eq!(Format::decode(x.encode().unwrap()), Some(x));
            }
        }
    }
}

#[test]
fn nearest_supported_rate_and_size() {
    let q = PcmCaps(QEMU_PCM);
    assert_eq!(
        q.rates().collect::<Vec<_>>(),
        vec![16000, 22050, 32000, 44100, 48000, 88200, 96000]
    );
    assert_eq!(q.nearest_rate(8000), Some(16000));
    assert_eq!(q.nearest_rate(44000), Some(44100));
    assert_eq!(q.nearest_rate(46050), Some(48000), "a tie goes up");
    assert_eq!(q.nearest_rate(0), Some(16000));
    assert_eq!(q.nearest_rate(192000), Some(96000));
    assert_eq!(q.nearest_bits(8), Some(16));
    assert_eq!(q.nearest_bits(32), Some(16));
    let all = PcmCaps(0x001f_07ff);
    assert_eq!(all.nearest_rate(8000), Some(8000));
    assert_eq!(all.nearest_rate(170000), Some(176400));
    assert_eq!(all.nearest_bits(21), Some(20));
    assert_eq!(
        all.nearest(
            Format {
                rate: 7000,
                bits: 24,
                channels: 9
            },
            2
        ),
        Some(Format {
            rate: 8000,
            bits: 24,
            channels: 2
        })
    );
    assert_eq!(PcmCaps(0).nearest_rate(44100), None);
}

fn open_44k(h: &mut Hda<FakeHal, Fake>) {
    h.probe_output().unwrap();
    let fmt = Format {
        rate: 44100,
        bits: 16,
        channels: 2,
    };
    h.open_stream(fmt, 1024, 4).unwrap();
}

#[test]
fn output_stream_plays_the_ring_in_order_and_interrupts_per_fragment() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    open_44k(&mut h);
    assert_eq!(fake.codec(|c| c.format.get(&2).copied()), Some(0x4011));
    assert_eq!(fake.codec(|c| c.stream_id.get(&2).copied()), Some(0x10));
    assert_eq!(
        h.open_stream(
            Format {
                rate: 8000,
                bits: 16,
                channels: 2
            },
            1024,
            4
        ),
        Err(Error::BadFormat),
        "8 kHz is not in QEMU's PCM caps"
    );
    open_44k(&mut h);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = 0;
    assert_eq!(h.write(&data), 4096, "the ring holds 4 fragments");
    sent += 4096;
    h.start();
    let mut guard = 0;
    while sent < data.len() || h.stream.as_ref().unwrap().queued() > 0 {
        guard += 1;
        assert!(guard < 1000);
        assert_eq!(
            fake.fetch(700),
            700,
            "acknowledged last round: never stalled"
        );
        // The interrupt handler's part: BCIS set after each fragment, cleared by ack.
        let bits = ack(h.regs(), h.descriptors());
        if bits != 0 {
            assert_eq!(bits, 1 << 4);
        }
        h.update();
        if sent < data.len() {
            sent += h.write(&data[sent..]);
        }
    }
    let played = fake.played();
    assert!(played.len() >= data.len());
    assert_eq!(&played[..data.len()], &data[..], "every byte in order");
    assert!(played[data.len()..].iter().all(|&b| b == 0), "then silence");
    let st = h.stream.as_ref().unwrap();
    assert_eq!(st.written, st.played);
    assert_eq!(st.underruns, 1, "the ring ran dry at the end");

    // Draining: running into silence past the data is not an underrun.
    h.write(&[9u8; 100]);
    h.stream.as_mut().unwrap().draining = true;
    fake.fetch(2048);
    ack(h.regs(), h.descriptors());
    h.update();
    let st = h.stream.as_ref().unwrap();
    assert_eq!((st.underruns, st.queued()), (1, 0));
    assert_eq!(&fake.played()[..100], &[9u8; 100][..]);
}

#[test]
fn a_stalled_stream_keeps_the_writer_waiting_without_losing_data() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    open_44k(&mut h);
    h.start();
    assert_eq!(h.write(&[1u8; 5000]), 4096);
    // The controller fetches one fragment, raises BCIS, and nobody acknowledges: it stalls.
    fake.fetch(1024);
    assert_eq!(fake.fetch(1024), 0, "BCIS stops the fetch like QEMU");
    h.update();
    assert_eq!(h.stream.as_ref().unwrap().space(), 1024);
    assert_eq!(h.write(&[2u8; 5000]), 1024);
    assert_eq!(h.write(&[3u8; 10]), 0, "full");
    assert_eq!(ack(h.regs(), h.descriptors()), 1 << 4);
    assert_eq!(ack(h.regs(), h.descriptors()), 0, "acknowledged");
    fake.fetch(4096);
    let p = fake.played();
    assert_eq!(&p[..4096], &[1u8; 4096][..]);
    assert_eq!(&p[4096..5120], &[2u8; 1024][..]);
}

#[test]
fn fault_stop_output_dma_stops_the_running_stream_and_nothing_else() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    assert_eq!(fault_stop_output_dma(h.regs()), 0, "no stream runs yet");
    open_44k(&mut h);
    h.start();
    assert_eq!(h.write(&[5u8; 4096]), 4096);
    assert_eq!(fake.fetch(512), 512, "the stream plays");
    assert_eq!(fault_stop_output_dma(h.regs()), 1);
    assert_eq!(fake.fetch(512), 0, "the DMA engine no longer fetches");
    h.update();
    assert_eq!(
        h.stream.as_ref().unwrap().played,
        512,
        "the position stays put"
    );
    assert_eq!(fault_stop_output_dma(h.regs()), 0, "already stopped");
}

#[test]
fn volume_maps_to_amplifier_steps_and_zero_mutes() {
    let (h, fake) = boot(Some(Codec::duplex()));
    let mut h = h.unwrap();
    h.probe_output().unwrap();
    h.set_volume(50, 100).unwrap();
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, true)).copied()),
        Some((37, false))
    );
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, false)).copied()),
        Some((0x4a, false))
    );
    h.set_volume(0, 0).unwrap();
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, true)).copied()),
        Some((0, true))
    );
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, false)).copied()),
        Some((0, true))
    );
    h.set_volume(255, 255).unwrap();
    assert_eq!(
        fake.codec(|c| c.amps.get(&(2, true, true)).copied()),
        Some((0x4a, false))
    );
}

#[test]
fn sample_conversions() {
    assert_eq!(u8_to_s16(0x80), 0);
    assert_eq!(u8_to_s16(0), -32768);
    assert_eq!(u8_to_s16(0xff), 32512);
    assert_eq!(ulaw_to_s16(0xff), 0);
    assert_eq!(ulaw_to_s16(0x7f), 0);
    assert_eq!(ulaw_to_s16(0x00), -32124);
    assert_eq!(ulaw_to_s16(0x80), 32124);
    for s in [-32000i16, -1000, -10, 0, 10, 1000, 32000] {
        let back = ulaw_to_s16(s16_to_ulaw(s));
        assert!(
            (i32::from(back) - i32::from(s)).abs() <= i32::from(s).abs() / 16 + 8,
            "{s} → {back}"
        );
    }
    // 8-bit mono at 8 kHz → 16-bit stereo at 16 kHz: each frame twice, interpolated.
    let mut prev = [0i16; 2];
    let mut out = [0u8; 64];
    let (used, made) = convert(
        &[0x80, 0xc0, 0x80],
        Encoding::U8,
        1,
        2,
        2,
        &mut prev,
        &mut out,
    );
    assert_eq!((used, made), (3, 3 * 2 * 4));
    let s: Vec<i16> = out[..made]
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(
        s,
        vec![0, 0, 0, 0, 8192, 8192, 16384, 16384, 8192, 8192, 0, 0]
    );
    // Room for one output frame only: one input frame consumed.
    let (used, made) = convert(
        &[1, 0, 2, 0, 3, 0, 4, 0],
        Encoding::S16Le,
        2,
        2,
        1,
        &mut prev,
        &mut out[..5],
    );
    assert_eq!((used, made), (4, 4));
    // Half a frame is left for the next call.
    let (used, _) = convert(&[1, 0, 2], Encoding::S16Le, 2, 2, 1, &mut prev, &mut out);
    assert_eq!(used, 0);
}
