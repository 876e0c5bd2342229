#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
//! Intel High Definition Audio controller and codec driver (QEMU's `intel-hda` with
//! `hda-duplex`/`hda-output`, ICH6-class hardware), written against [`adros_hal`] so the
//! same code runs in the kernel and against the host tests' fake controller and codec.
//!
//! What it does, in order: controller reset (GCTL.CRST low, then high), the command rings
//! (CORB for verbs, RIRB for responses, every verb with a 10 ms deadline: a codec that
//! does not answer is [`Error::NoResponse`], never a hang), codec discovery from STATESTS,
//! the widget graph walk of [`codec`] (audio function group, pins by default
//! configuration, connection lists, DAC → mixer/selector → pin path), then one output
//! stream: a buffer descriptor list of [`Stream::fragments`] equal fragments, each with
//! interrupt-on-completion, a ring the caller fills with [`Hda::write`], position from
//! LPIB ([`Hda::update`]), and volume/mute on the output amplifier.
//!
//! QEMU quirks the code relies on or avoids (from `hw/audio/intel-hda.c`):
//! - RINTCNT resets to 0, and the CORB stops when the response count equals it: RINTCNT
//!   is set to 1 and RIRBSTS cleared after every response (with RINTCTL on, so the count
//!   resets; the controller interrupt itself stays disabled in INTCTL).
//! - A stream stops fetching while its buffer-completion status (BCIS) is set: the
//!   interrupt handler ([`ack`]) clears it at once.
//! - SD.CTL.SRST never reads back 1; the driver does not insist.
//! - The DMA position buffer is indexed per direction, not by descriptor: LPIB is used.

extern crate alloc;

pub mod codec;
pub mod convert;
pub mod format;
pub mod regs;
#[cfg(test)]
mod tests;

use adros_hal::{Dma, Hal, HalError, Mmio, dma_wmb, poll_until};

use codec::{AmpCaps, FunctionGroup, Path, Verbs, WidgetType};
use format::{Format, PcmCaps};
use regs::*;

/// PCI class/subclass of an HD Audio controller (multimedia, audio device).
pub const PCI_CLASS: u8 = 0x04;
pub const PCI_SUBCLASS: u8 = 0x03;

/// How long one verb may take.
pub const VERB_TIMEOUT_US: u64 = 10_000;
/// CORB entries used (the ring is one 4 KiB DMA page: CORB at 0, RIRB at 2 KiB).
const RIRB_OFF: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Dma(HalError),
    /// The register window is too small for the descriptors GCAP announces.
    SmallWindow,
    /// GCTL.CRST did not follow within 100 ms.
    ResetTimeout,
    /// CORBRP did not leave reset.
    CorbReset,
    /// No codec announced itself in STATESTS.
    NoCodec,
    /// A codec did not answer a verb within [`VERB_TIMEOUT_US`].
    NoResponse {
        cad: u8,
        nid: u8,
        verb: u32,
    },
    /// No codec has an audio function group.
    NoAudioFunction,
    /// No DAC → (mixer/selector) → output pin path.
    NoOutputPath,
    /// GCAP announces no output stream descriptor.
    NoOutputStream,
    /// The stream descriptor did not leave reset or stop.
    StreamTimeout,
    /// The format cannot be encoded or the DAC does not support it.
    BadFormat,
    /// No output was configured ([`Hda::probe_output`]) or no stream opened.
    NotReady,
}

impl From<HalError> for Error {
    fn from(e: HalError) -> Self {
        Error::Dma(e)
    }
}

/// The output the graph walk chose.
#[derive(Clone, Debug)]
pub struct Output {
    pub cad: u8,
    pub fg: FunctionGroup,
    pub path: Path,
    pub pcm: PcmCaps,
    /// The node whose output amplifier sets the volume, with its caps (None: no volume).
    pub volume_amp: Option<(u8, AmpCaps)>,
    pub stereo: bool,
}

/// The running output stream.
pub struct Stream<D: Dma> {
    /// Absolute descriptor index (inputs come first).
    pub index: usize,
    pub tag: u8,
    pub format: Format,
    pub fragment: usize,
    pub fragments: usize,
    bdl: D,
    buf: D,
    pub running: bool,
    /// Bytes handed to the ring since the stream was opened.
    pub written: u64,
    /// Bytes the controller has fetched (from LPIB).
    pub played: u64,
    last_lpib: u32,
    /// Times the controller caught up with the writer (silence was played) while more
    /// data was expected.
    pub underruns: u64,
    /// Set by the caller when no more data is coming (a drain): running past the data
    /// into silence is then the plan, not an underrun.
    pub draining: bool,
}

impl<D: Dma> Stream<D> {
    pub fn ring_bytes(&self) -> usize {
        self.fragment * self.fragments
    }
    /// Bytes written but not yet fetched by the controller.
    pub fn queued(&self) -> u64 {
        self.written.saturating_sub(self.played)
    }
    /// Room in the ring for new bytes.
    pub fn space(&self) -> usize {
        self.ring_bytes().saturating_sub(self.queued() as usize)
    }
}

pub struct Hda<H: Hal, M: Mmio> {
    hal: H,
    regs: M,
    cmd: H::Dma,
    corb_entries: u16,
    rirb_entries: u16,
    corb_wp: u16,
    rirb_rp: u16,
    pub iss: u8,
    pub oss: u8,
    pub version: (u8, u8),
    /// Codec addresses that announced themselves (STATESTS bits).
    pub codecs: u16,
    pub output: Option<Output>,
    pub stream: Option<Stream<H::Dma>>,
    /// Verbs sent and verbs that timed out.
    pub verbs: u64,
    pub verb_timeouts: u64,
}

/// Ring size encoding of CORBSIZE/RIRBSIZE: the largest size the capability bits allow.
fn ring_size(reg: u8) -> (u8, u16) {
    if reg & 0x40 != 0 {
        (2, 256)
    } else if reg & 0x20 != 0 {
        (1, 16)
    } else {
        (0, 2)
    }
}

/// The interrupt handler's part, usable without the driver's lock: reads INTSTS, clears
/// the status byte of every stream that interrupted (which deasserts the line and lets
/// the controller fetch again), and returns the stream bits (0: not ours).
pub fn ack<M: Mmio>(regs: &M, streams: usize) -> u32 {
    let sts = regs.read32(INTSTS);
    if sts == u32::MAX {
        return 0; // device gone
    }
    let mask = (1u32 << streams.min(30)) - 1;
    let mine = sts & mask;
    for i in 0..streams.min(30) {
        if mine & (1 << i) != 0 {
            regs.write8(sd(i) + SD_STS, SD_STS_ALL);
        }
    }
    mine
}

/// Fault injection (`audio.fault=stall` on the kernel command line): clears RUN on every
/// running output stream descriptor behind the owning driver's back, as a controller whose
/// DMA engine died would look: the position stops, no more buffer-completion interrupts.
/// Works on any driver's controller (ours or NetBSD's in the rump kernel) because it only
/// needs the register window. Returns how many running output streams were stopped.
pub fn fault_stop_output_dma<M: Mmio>(regs: &M) -> usize {
    let gcap = regs.read16(GCAP);
    if gcap == u16::MAX {
        return 0; // device gone
    }
    let iss = usize::from((gcap >> 8) & 0xf);
    let oss = usize::from((gcap >> 12) & 0xf);
    let mut stopped = 0;
    for i in iss..iss + oss {
        if regs.len() < sd(i) + 0x20 {
            break;
        }
        let ctl = regs.read32(sd(i) + SD_CTL) & 0x00ff_ffff;
        if ctl & SD_CTL_RUN != 0 {
            regs.write32(sd(i) + SD_CTL, ctl & !SD_CTL_RUN);
            stopped += 1;
        }
    }
    stopped
}

impl<H: Hal, M: Mmio> Hda<H, M> {
    /// Resets the controller, starts the command rings and finds the codecs.
    pub fn new(hal: H, regs: M) -> Result<Self, Error> {
        if regs.len() < MIN_WINDOW {
            return Err(Error::SmallWindow);
        }
        let gcap = regs.read16(GCAP);
        let oss = ((gcap >> 12) & 0xf) as u8;
        let iss = ((gcap >> 8) & 0xf) as u8;
        let bss = ((gcap >> 3) & 0x1f) as u8;
        let last = usize::from(iss) + usize::from(oss) + usize::from(bss);
        if regs.len() < sd(last) {
            return Err(Error::SmallWindow);
        }
        let cmd = hal.dma_alloc(4096)?;
        let mut h = Hda {
            hal,
            regs,
            cmd,
            corb_entries: 256,
            rirb_entries: 256,
            corb_wp: 0,
            rirb_rp: 0,
            iss,
            oss,
            version: (0, 0),
            codecs: 0,
            output: None,
            stream: None,
            verbs: 0,
            verb_timeouts: 0,
        };
        h.version = (h.regs.read8(VMAJ), h.regs.read8(VMAJ - 1));
        h.reset()?;
        h.start_rings()?;
        // Codecs announce themselves within 521 µs of reset (HDA 4.3); wait a little more.
        h.hal.delay_us(1000);
        h.codecs = h.regs.read16(STATESTS) & 0x7fff;
        h.regs.write16(STATESTS, 0x7fff);
        if h.codecs == 0 {
            return Err(Error::NoCodec);
        }
        Ok(h)
    }

    pub fn regs(&self) -> &M {
        &self.regs
    }

    /// Stream descriptors in the window (for [`ack`]).
    pub fn descriptors(&self) -> usize {
        usize::from(self.iss) + usize::from(self.oss)
    }

    fn reset(&mut self) -> Result<(), Error> {
        // Stop DMA engines before the reset.
        self.regs.write8(CORBCTL, 0);
        self.regs.write8(RIRBCTL, 0);
        self.regs.write32(INTCTL, 0);
        let r = &self.regs;
        r.write32(GCTL, r.read32(GCTL) & !GCTL_CRST);
        if !poll_until(&self.hal, 100_000, 100, || {
            self.regs.read32(GCTL) & GCTL_CRST == 0
        }) {
            return Err(Error::ResetTimeout);
        }
        self.hal.delay_us(100);
        let r = &self.regs;
        r.write32(GCTL, r.read32(GCTL) | GCTL_CRST);
        if !poll_until(&self.hal, 100_000, 100, || {
            self.regs.read32(GCTL) & GCTL_CRST != 0
        }) {
            return Err(Error::ResetTimeout);
        }
        Ok(())
    }

    fn start_rings(&mut self) -> Result<(), Error> {
        let r = &self.regs;
        let (csel, centries) = ring_size(r.read8(CORBSIZE));
        let (rsel, rentries) = ring_size(r.read8(RIRBSIZE));
        self.corb_entries = centries;
        self.rirb_entries = rentries;
        r.write8(CORBSIZE, (r.read8(CORBSIZE) & !3) | csel);
        r.write8(RIRBSIZE, (r.read8(RIRBSIZE) & !3) | rsel);
        let base = self.cmd.phys();
        r.write32(CORBLBASE, base as u32);
        r.write32(CORBUBASE, (base >> 32) as u32);
        let rb = base + RIRB_OFF as u64;
        r.write32(RIRBLBASE, rb as u32);
        r.write32(RIRBUBASE, (rb >> 32) as u32);
        // CORB read pointer reset: set the bit, (real hardware reads it back as 1), clear.
        r.write16(CORBRP, CORBRP_RST);
        let _ = poll_until(&self.hal, 1000, 10, || {
            self.regs.read16(CORBRP) & CORBRP_RST != 0
        });
        self.regs.write16(CORBRP, 0);
        if !poll_until(&self.hal, 1000, 10, || {
            self.regs.read16(CORBRP) & CORBRP_RST == 0
        }) {
            return Err(Error::CorbReset);
        }
        let r = &self.regs;
        r.write16(CORBWP, 0);
        r.write16(RIRBWP, RIRBWP_RST);
        r.write16(RINTCNT, 1);
        r.write8(RIRBSTS, RIRBSTS_CLEAR);
        r.write8(RIRBCTL, RIRBCTL_DMAEN | RIRBCTL_RINTCTL);
        r.write8(CORBCTL, CORBCTL_RUN);
        self.corb_wp = 0;
        self.rirb_rp = 0;
        Ok(())
    }

    /// Sends one command word and waits for its solicited response from codec `cad`.
    fn command(&mut self, cad: u8, word: u32) -> Result<u32, Error> {
        self.verbs += 1;
        let wp = (self.corb_wp + 1) % self.corb_entries;
        self.cmd.write_u32(usize::from(wp) * 4, word);
        dma_wmb();
        self.corb_wp = wp;
        self.regs.write16(CORBWP, wp);
        let deadline = self.hal.now_ns() + VERB_TIMEOUT_US * 1000;
        loop {
            let hw = self.regs.read16(RIRBWP) % self.rirb_entries;
            while self.rirb_rp != hw {
                self.rirb_rp = (self.rirb_rp + 1) % self.rirb_entries;
                let off = RIRB_OFF + usize::from(self.rirb_rp) * 8;
                let resp = self.cmd.read_u32(off);
                let ex = self.cmd.read_u32(off + 4);
                self.regs.write8(RIRBSTS, RIRBSTS_CLEAR);
                if ex & 0x10 == 0 && (ex & 0xf) as u8 == cad {
                    return Ok(resp);
                }
                // Unsolicited (jack events) or another codec's: not ours, skip.
            }
            if self.hal.now_ns() >= deadline {
                self.verb_timeouts += 1;
                return Err(Error::NoResponse {
                    cad,
                    nid: ((word >> 20) & 0x7f) as u8,
                    verb: (word >> 8) & 0xfff,
                });
            }
            self.hal.delay_us(5);
        }
    }

    /// Walks every codec's graph and configures the first output path found: power,
    /// connection selects, pin control, EAPD, amplifiers at 0 dB unmuted, volume at 100.
    pub fn probe_output(&mut self) -> Result<&Output, Error> {
        let mut last = Error::NoAudioFunction;
        for cad in 0..15u8 {
            if self.codecs & (1 << cad) == 0 {
                continue;
            }
            let fg = match codec::read_function_group(self, cad) {
                Ok(fg) => fg,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let Some(path) = fg.find_output_path() else {
                last = Error::NoOutputPath;
                continue;
            };
            let out = self.configure_path(cad, fg, path)?;
            self.output = Some(out);
            self.set_volume(100, 100)?;
            return self.output.as_ref().ok_or(Error::NotReady);
        }
        Err(last)
    }

    fn configure_path(&mut self, cad: u8, fg: FunctionGroup, path: Path) -> Result<Output, Error> {
        let mut volume_amp = None;
        // From the DAC towards the pin: the first output amplifier with steps sets volume.
        for &nid in path.nodes.iter().rev() {
            if let Some(w) = fg.widget(nid)
                && w.caps & codec::WCAP_OUT_AMP != 0
                && AmpCaps(w.amp_out).steps() > 0
            {
                volume_amp = Some((nid, AmpCaps(w.amp_out)));
                break;
            }
        }
        for (i, &nid) in path.nodes.iter().enumerate() {
            let Some(w) = fg.widget(nid) else { continue };
            let _ = self.verb(cad, nid, codec::SET_POWER_STATE, 0);
            if let Some(&s) = path.sel.get(i) {
                match w.kind {
                    WidgetType::Pin | WidgetType::Selector if w.conn.len() > 1 => {
                        self.verb(cad, nid, codec::SET_CONNECT_SEL, u32::from(s))?;
                    }
                    WidgetType::Mixer if w.caps & codec::WCAP_IN_AMP != 0 => {
                        let a = AmpCaps(w.amp_in);
                        self.verb(
                            cad,
                            nid,
                            codec::SET_AMP_GAIN_MUTE,
                            codec::AMP_SET_INPUT
                                | codec::AMP_SET_LEFT
                                | codec::AMP_SET_RIGHT
                                | (u32::from(s) << codec::AMP_SET_INDEX_SHIFT)
                                | a.offset(),
                        )?;
                    }
                    _ => {}
                }
            }
            if w.caps & codec::WCAP_OUT_AMP != 0 && volume_amp.map(|v| v.0) != Some(nid) {
                let a = AmpCaps(w.amp_out);
                self.verb(
                    cad,
                    nid,
                    codec::SET_AMP_GAIN_MUTE,
                    codec::AMP_SET_OUTPUT | codec::AMP_SET_LEFT | codec::AMP_SET_RIGHT | a.offset(),
                )?;
            }
        }
        let pin = fg.widget(path.pin()).cloned();
        if let Some(p) = pin {
            let mut ctl = codec::PINCTL_OUT_EN;
            if path.device == codec::PinDevice::Headphone && p.pin_caps & codec::PINCAP_HP_DRV != 0
            {
                ctl |= codec::PINCTL_HP_EN;
            }
            self.verb(cad, p.nid, codec::SET_PIN_WIDGET_CONTROL, ctl)?;
            if p.pin_caps & codec::PINCAP_EAPD != 0 {
                self.verb(cad, p.nid, codec::SET_EAPD_BTLENABLE, 0x02)?;
            }
        }
        let pcm = fg.dac_pcm(path.dac());
        let stereo = fg
            .widget(path.dac())
            .is_some_and(|w| w.caps & codec::WCAP_STEREO != 0);
        Ok(Output {
            cad,
            fg,
            path,
            pcm,
            volume_amp,
            stereo,
        })
    }

    /// Sets the output volume, 0–100 per side (OSS scale): linear in amplifier steps, 0
    /// mutes. Without an amplifier on the path this does nothing.
    pub fn set_volume(&mut self, left: u8, right: u8) -> Result<(), Error> {
        let out = self.output.as_ref().ok_or(Error::NotReady)?;
        let cad = out.cad;
        let Some((nid, caps)) = out.volume_amp else {
            return Ok(());
        };
        for (v, side) in [(left, codec::AMP_SET_LEFT), (right, codec::AMP_SET_RIGHT)] {
            let v = u32::from(v.min(100));
            let gain = v * caps.steps() / 100;
            let mute = if v == 0 && caps.can_mute() {
                codec::AMP_MUTE
            } else {
                0
            };
            self.verb(
                cad,
                nid,
                codec::SET_AMP_GAIN_MUTE,
                codec::AMP_SET_OUTPUT | side | mute | gain,
            )?;
        }
        Ok(())
    }

    /// Sets up the first output stream descriptor for `fmt` with `fragments` buffers of
    /// `fragment` bytes (each a multiple of 128) and points the DAC at it. Does not start.
    pub fn open_stream(
        &mut self,
        fmt: Format,
        fragment: usize,
        fragments: usize,
    ) -> Result<(), Error> {
        let out = self.output.as_ref().ok_or(Error::NotReady)?;
        if self.oss == 0 {
            return Err(Error::NoOutputStream);
        }
        if !out.pcm.supports_rate(fmt.rate) || !out.pcm.supports_bits(fmt.bits) {
            return Err(Error::BadFormat);
        }
        let word = fmt.encode().ok_or(Error::BadFormat)?;
        let (cad, dac) = (out.cad, out.path.dac());
        self.close_stream();
        let fragment = fragment.next_multiple_of(128).max(128);
        let fragments = fragments.clamp(2, 256);
        let index = usize::from(self.iss);
        let base = sd(index);
        // Descriptor reset: SRST set, (hardware reads 1; QEMU clears it at once), cleared.
        self.regs.write32(base + SD_CTL, SD_CTL_SRST);
        let _ = poll_until(&self.hal, 1000, 10, || {
            self.regs.read32(base + SD_CTL) & SD_CTL_SRST != 0
        });
        self.regs.write32(base + SD_CTL, 0);
        if !poll_until(&self.hal, 1000, 10, || {
            self.regs.read32(base + SD_CTL) & (SD_CTL_SRST | SD_CTL_RUN) == 0
        }) {
            return Err(Error::StreamTimeout);
        }
        self.regs.write8(base + SD_STS, SD_STS_ALL);
        let mut bdl = self.hal.dma_alloc(fragments * 16)?;
        let buf = self.hal.dma_alloc(fragment * fragments)?;
        for i in 0..fragments {
            let o = i * 16;
            bdl.write_u64(o, buf.phys() + (i * fragment) as u64);
            bdl.write_u32(o + 8, fragment as u32);
            bdl.write_u32(o + 12, 1); // IOC
        }
        dma_wmb();
        let tag = 1u8;
        let r = &self.regs;
        r.write32(base + SD_BDPL, bdl.phys() as u32);
        r.write32(base + SD_BDPU, (bdl.phys() >> 32) as u32);
        r.write32(base + SD_CBL, (fragment * fragments) as u32);
        r.write16(base + SD_LVI, (fragments - 1) as u16);
        r.write16(base + SD_FMT, word);
        r.write32(
            base + SD_CTL,
            (u32::from(tag) << SD_CTL_STRM_SHIFT) | SD_CTL_IOCE | SD_CTL_FEIE | SD_CTL_DEIE,
        );
        self.verb(cad, dac, codec::SET_STREAM_FORMAT, u32::from(word))?;
        self.verb(cad, dac, codec::SET_CHANNEL_STREAMID, u32::from(tag) << 4)?;
        let r = &self.regs;
        r.write32(INTCTL, r.read32(INTCTL) | INTCTL_GIE | (1 << index));
        self.stream = Some(Stream {
            index,
            tag,
            format: fmt,
            fragment,
            fragments,
            bdl,
            buf,
            running: false,
            written: 0,
            played: 0,
            last_lpib: 0,
            underruns: 0,
            draining: false,
        });
        Ok(())
    }

    /// Stops and forgets the stream (the DAC is detached from it).
    pub fn close_stream(&mut self) {
        if self.stream.is_some() {
            self.stop();
            if let Some(st) = self.stream.take() {
                let r = &self.regs;
                r.write32(INTCTL, r.read32(INTCTL) & !(1 << st.index));
                r.write32(sd(st.index) + SD_CTL, 0);
                if let Some(out) = &self.output {
                    let (cad, dac) = (out.cad, out.path.dac());
                    let _ = self.verb(cad, dac, codec::SET_CHANNEL_STREAMID, 0);
                }
                drop(st.bdl);
            }
        }
    }

    /// Starts DMA (a no-op when running).
    pub fn start(&mut self) {
        if let Some(st) = &mut self.stream
            && !st.running
        {
            let base = sd(st.index);
            let ctl = self.regs.read32(base + SD_CTL) & 0x00ff_ffff;
            self.regs.write32(base + SD_CTL, ctl | SD_CTL_RUN);
            st.running = true;
        }
    }

    /// Stops DMA and waits (1 ms at most) for the engine to report it.
    pub fn stop(&mut self) {
        if let Some(st) = &mut self.stream
            && st.running
        {
            let base = sd(st.index);
            let ctl = self.regs.read32(base + SD_CTL) & 0x00ff_ffff;
            self.regs.write32(base + SD_CTL, ctl & !SD_CTL_RUN);
            st.running = false;
            let regs = &self.regs;
            let _ = poll_until(&self.hal, 1000, 10, || {
                regs.read32(base + SD_CTL) & SD_CTL_RUN == 0
            });
            regs.write8(base + SD_STS, SD_STS_ALL);
        }
    }

    /// Reads LPIB and advances `played`; the fetched part of the ring is zeroed, so a
    /// writer that falls behind makes the controller play silence, not stale sound (an
    /// underrun, counted). Returns the bytes newly played.
    pub fn update(&mut self) -> u64 {
        let Some(st) = &mut self.stream else { return 0 };
        if !st.running {
            return 0;
        }
        let ring = st.ring_bytes() as u32;
        let lpib = self.regs.read32(sd(st.index) + SD_LPIB);
        if lpib > ring {
            return 0; // nonsense from the device: ignore this reading
        }
        let lpib = lpib % ring;
        let delta = u64::from((lpib + ring - st.last_lpib) % ring);
        if delta == 0 {
            return 0;
        }
        let from = st.played;
        st.played += delta;
        st.last_lpib = lpib;
        // Zero what was fetched.
        let zeros = [0u8; 256];
        let mut p = from;
        while p < st.played {
            let off = (p % u64::from(ring)) as usize;
            let n = (st.played - p)
                .min((ring as usize - off) as u64)
                .min(zeros.len() as u64) as usize;
            st.buf.write(off, &zeros[..n]);
            p += n as u64;
        }
        if st.played > st.written {
            if !st.draining {
                st.underruns += 1;
            }
            st.written = st.played;
        }
        delta
    }

    /// Copies as much of `data` (already in the stream's format) into the ring as fits;
    /// returns the bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let Some(st) = &mut self.stream else { return 0 };
        let ring = st.ring_bytes();
        let n = data.len().min(st.space());
        let mut done = 0;
        while done < n {
            let off = ((st.written + done as u64) % ring as u64) as usize;
            let k = (n - done).min(ring - off);
            st.buf.write(off, &data[done..done + k]);
            done += k;
        }
        dma_wmb();
        st.written += n as u64;
        n
    }
}

impl<H: Hal, M: Mmio> Verbs for Hda<H, M> {
    fn verb(&mut self, cad: u8, nid: u8, verb: u32, payload: u32) -> Result<u32, Error> {
        self.command(cad, codec::command(cad, nid, verb, payload))
    }
}
