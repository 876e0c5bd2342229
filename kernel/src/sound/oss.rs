//! The OSS interface (Linux's `<linux/soundcard.h>` numbers): `/dev/dsp` (14:3, opens at
//! 8 kHz unsigned 8-bit mono, as OSS specifies), `/dev/audio` (14:4, 8 kHz µ-law mono),
//! `/dev/mixer` (14:0, VOLUME and PCM).
//!
//! Formats the codec cannot play are converted here (with `adros_hda::convert`): 8-bit and
//! µ-law samples become 16-bit, mono becomes stereo on a stereo DAC, and a rate the codec
//! lacks but one of its multiples has (8 kHz → 16 kHz on QEMU's codec) is upsampled by
//! that factor with linear interpolation. Any other rate is answered with the nearest the
//! codec supports, as OSS's SNDCTL_DSP_SPEED specifies.
//!
//! A stream that stops moving (2 s without the position advancing while it should run)
//! fails the writer or drainer with EIO and a log line, so nobody hangs on a dead device.
//!
//! This layer is the same for both stacks: it parses every OSS ioctl, converts samples and
//! plans rates, and drives the device through [`Backend`] (the native driver's card, or
//! NetBSD's audio device in the rump kernel, `crate::rump::audio`). A backend only ever
//! sees 16-bit frames at a rate its codec has.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use adros_hda::convert::{Encoding, convert};
use adros_hda::format::Format;

use super::{Backend, Caps, Sound};
use crate::arch::uaccess::{read_val, write_val};
use crate::errno::{Errno, KResult};
use crate::fs::consts::*;
use crate::fs::devfs::{self, DevKind, Device};
use crate::fs::file::File;
use crate::fs::node::{FileSystem, NodeKind};
use crate::fs::sync::WaitQueue;
use crate::sync::Mutex;

pub const SOUND_MAJOR: u32 = 14;
pub const MIXER: u64 = makedev(SOUND_MAJOR, 0);
pub const DSP: u64 = makedev(SOUND_MAJOR, 3);
pub const AUDIO: u64 = makedev(SOUND_MAJOR, 4);

// <linux/soundcard.h>
pub const SNDCTL_DSP_RESET: u32 = 0x5000;
pub const SNDCTL_DSP_SYNC: u32 = 0x5001;
pub const SNDCTL_DSP_SPEED: u32 = 0xc004_5002;
pub const SNDCTL_DSP_STEREO: u32 = 0xc004_5003;
pub const SNDCTL_DSP_GETBLKSIZE: u32 = 0xc004_5004;
pub const SNDCTL_DSP_SETFMT: u32 = 0xc004_5005;
pub const SNDCTL_DSP_CHANNELS: u32 = 0xc004_5006;
pub const SNDCTL_DSP_POST: u32 = 0x5008;
pub const SNDCTL_DSP_SETFRAGMENT: u32 = 0xc004_500a;
pub const SNDCTL_DSP_GETFMTS: u32 = 0x8004_500b;
pub const SNDCTL_DSP_GETOSPACE: u32 = 0x8010_500c;
pub const SNDCTL_DSP_NONBLOCK: u32 = 0x500e;
pub const SNDCTL_DSP_GETCAPS: u32 = 0x8004_500f;
pub const SNDCTL_DSP_GETODELAY: u32 = 0x8004_5017;
pub const SOUND_PCM_READ_RATE: u32 = 0x8004_5002;
pub const SOUND_PCM_READ_CHANNELS: u32 = 0x8004_5006;
pub const SOUND_PCM_READ_BITS: u32 = 0x8004_5005;
pub const OSS_GETVERSION: u32 = 0x8004_4d76;

pub const AFMT_QUERY: i32 = 0;
pub const AFMT_MU_LAW: i32 = 0x01;
pub const AFMT_U8: i32 = 0x08;
pub const AFMT_S16_LE: i32 = 0x10;
pub const AFMT_S8: i32 = 0x40;
const SUPPORTED_FMTS: i32 = AFMT_MU_LAW | AFMT_U8 | AFMT_S16_LE | AFMT_S8;

pub const SOUND_MIXER_VOLUME: u32 = 0;
pub const SOUND_MIXER_PCM: u32 = 4;
pub const SOUND_MIXER_CAPS: u32 = 0xfc;
pub const SOUND_MIXER_STEREODEVS: u32 = 0xfb;
pub const SOUND_MIXER_RECMASK: u32 = 0xfd;
pub const SOUND_MIXER_DEVMASK: u32 = 0xfe;
pub const SOUND_MIXER_RECSRC: u32 = 0xff;
const MIXER_READ: u32 = 0x8004_4d00;
const MIXER_WRITE: u32 = 0xc004_4d00;
const DEVS: i32 = (1 << SOUND_MIXER_VOLUME) | (1 << SOUND_MIXER_PCM);

/// Lowest and highest rates accepted before asking the codec.
const MIN_RATE: u32 = 8000;
const MAX_RATE: u32 = 192_000;
/// Fragments in the DMA ring (each ~20 ms of sound).
pub const FRAGMENTS: usize = 16;
/// A running stream whose position does not move for this long is dead.
const STALL_NS: u64 = 2_000_000_000;

fn encoding_of(afmt: i32) -> Encoding {
    match afmt {
        AFMT_U8 => Encoding::U8,
        AFMT_S8 => Encoding::S8,
        AFMT_MU_LAW => Encoding::MuLaw,
        _ => Encoding::S16Le,
    }
}

fn afmt_of(e: Encoding) -> i32 {
    match e {
        Encoding::U8 => AFMT_U8,
        Encoding::S8 => AFMT_S8,
        Encoding::MuLaw => AFMT_MU_LAW,
        Encoding::S16Le => AFMT_S16_LE,
    }
}

/// What user space asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cfg {
    rate: u32,
    enc: Encoding,
    channels: u8,
}

/// How a [`Cfg`] is played: the device format and the upsampling factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub dev: Format,
    pub factor: usize,
}

impl Plan {
    pub fn fragment(&self) -> usize {
        ((self.dev.bytes_per_second() / 50) as usize)
            .next_multiple_of(128)
            .clamp(512, 32768)
    }
}

/// The rate actually used for `want` and how: the codec's own rate, an integer multiple
/// of it (upsampled here), or the nearest the codec has.
fn plan(caps: Option<Caps>, cfg: Cfg) -> Option<(u32, Plan)> {
    let caps = caps?;
    let pcm = caps.pcm;
    let bits = if pcm.supports_bits(16) {
        16
    } else {
        return None;
    };
    let channels = if caps.stereo { 2 } else { 1 };
    let rate = cfg.rate.clamp(MIN_RATE, MAX_RATE);
    let (user, dev, factor) = if pcm.supports_rate(rate) {
        (rate, rate, 1)
    } else if let Some(k) = (2..=6u32).find(|k| pcm.supports_rate(rate * k)) {
        (rate, rate * k, k as usize)
    } else {
        let n = pcm.nearest_rate(rate)?;
        (n, n, 1)
    };
    Some((
        user,
        Plan {
            dev: Format {
                rate: dev,
                bits,
                channels,
            },
            factor,
        },
    ))
}

/// Per-open state of `/dev/dsp` or `/dev/audio`.
struct Open {
    cfg: Cfg,
    /// A partial frame from the last write.
    carry: Vec<u8>,
    /// The last frame converted (interpolation start).
    prev: [i16; 2],
    /// The plan the device's stream was opened with for this file.
    stream: Option<Plan>,
    /// Device bytes queued since the stream was opened (for `audio.fault=stall:MS`).
    queued_dev: u64,
}

pub struct Dsp {
    dev: Arc<Sound>,
    st: Mutex<Open>,
}

/// The `/dev/dsp` and `/dev/audio` nodes: each open gets its own [`Dsp`].
struct DspNode {
    enc: Encoding,
}

impl Device for DspNode {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn open(self: Arc<Self>, flags: u32) -> KResult<Arc<dyn Device>> {
        let dev = super::sound().ok_or(Errno::ENODEV)?.clone();
        if flags & O_ACCMODE != O_WRONLY && flags & O_ACCMODE != O_RDWR {
            // Recording is not offered (the codec's ADC is not driven).
            return Err(Errno::EINVAL);
        }
        if dev.busy.swap(true, Ordering::AcqRel) {
            return Err(Errno::EBUSY);
        }
        Ok(Arc::new(Dsp {
            dev,
            st: Mutex::new(Open {
                cfg: Cfg {
                    rate: 8000,
                    enc: self.enc,
                    channels: 1,
                },
                carry: Vec::new(),
                prev: [0; 2],
                stream: None,
                queued_dev: 0,
            }),
        }))
    }
}

impl Dsp {
    fn be(&self) -> &dyn Backend {
        &*self.dev.backend
    }

    /// Opens (or reopens) the device's stream for this file's format.
    fn ensure_stream(&self, o: &mut Open) -> KResult<Plan> {
        let (_, p) = plan(self.be().caps(), o.cfg).ok_or(Errno::EIO)?;
        let same = o.stream == Some(p) && self.be().stream_format() == Some(p.dev);
        if !same {
            self.be()
                .open_stream(p.dev, p.fragment(), FRAGMENTS)
                .inspect_err(|e| {
                    log::warn!("sound: cannot open a {:?} stream: {e:?}", p.dev);
                })?;
            self.dev.streams.fetch_add(1, Ordering::Relaxed);
            o.stream = Some(p);
            o.prev = [0; 2];
            o.queued_dev = 0;
        }
        Ok(p)
    }

    /// Plays what is queued to the end (plus a tail of silence through the codec's own
    /// buffer) and stops the stream. EIO if it stalls, ERESTARTSYS on a signal.
    fn drain(&self, o: &mut Open) -> KResult<()> {
        o.carry.clear();
        if !self.be().begin_drain()? {
            return Ok(());
        }
        let mut last = (u64::MAX, crate::time::now_ns());
        loop {
            match self.be().status() {
                Some(s) if s.running => {
                    let now = crate::time::now_ns();
                    if s.played != last.0 {
                        last = (s.played, now);
                    } else if now - last.1 > STALL_NS {
                        log::warn!(
                            "sound: {} stream stalled at byte {} of {} while draining",
                            self.be().name(),
                            s.played,
                            s.written
                        );
                        return Err(Errno::EIO);
                    }
                }
                _ => return Ok(()),
            }
            if !self.be().wait_round() {
                return Err(Errno::ERESTARTSYS);
            }
        }
    }

    fn reset(&self, o: &mut Open) {
        o.carry.clear();
        self.be().close_stream();
        o.stream = None;
    }

    /// A format change: play out the old format first, then the next write reopens.
    fn reconfigure(&self, o: &mut Open, cfg: Cfg) -> KResult<()> {
        if cfg != o.cfg {
            if o.stream.is_some() {
                self.drain(o)?;
            }
            o.cfg = cfg;
            o.stream = None;
        }
        Ok(())
    }

    /// Bytes of user data per device byte (as a ratio num/den).
    fn user_per_dev(o: &Open, p: &Plan) -> (usize, usize) {
        (
            o.cfg.enc.bytes() * usize::from(o.cfg.channels),
            p.dev.frame_bytes() * p.factor,
        )
    }

    /// `audio.fault=stall:MS`: once per boot, after a stream has been given MS ms of sound,
    /// the controller's output DMA is stopped behind the driver's back.
    fn maybe_inject_stall(&self, o: &Open, p: &Plan) {
        let Some(ms) = self.dev.fault_stall_ms else {
            return;
        };
        if o.queued_dev * 1000 < u64::from(ms) * p.dev.bytes_per_second()
            || self.dev.fault_fired.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let n = self.be().fault_stop_dma();
        log::warn!(
            "sound: audio.fault=stall:{ms}: stopped {n} running output DMA engine(s) of the {} stack's controller behind its back",
            self.be().name()
        );
    }
}

impl Drop for Dsp {
    fn drop(&mut self) {
        let mut o = self.st.lock();
        // close(2) waits for the last sample (OSS); a stall or signal ends the wait.
        if let Err(e) = self.drain(&mut o) {
            log::info!("sound: close: drain ended early: {e:?}");
        }
        self.be().close_stream();
        drop(o);
        self.dev.busy.store(false, Ordering::Release);
    }
}

impl Device for Dsp {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EINVAL)
    }

    fn write(&self, file: &File, buf: &[u8], _: u64) -> KResult<usize> {
        let mut o = self.st.lock();
        let in_frame = o.cfg.enc.bytes() * usize::from(o.cfg.channels);
        let old_carry = o.carry.len();
        if old_carry + buf.len() < in_frame {
            o.carry.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let mut input = core::mem::take(&mut o.carry);
        input.extend_from_slice(buf);
        let mut pos = 0;
        let mut last = (u64::MAX, crate::time::now_ns());
        loop {
            let p = self.ensure_stream(&mut o)?;
            let be = self.be();
            be.cancel_drain();
            let st = be.status().ok_or(Errno::EIO)?;
            let out_frame = p.dev.frame_bytes() * p.factor;
            let frames = (st.space / out_frame).min((input.len() - pos) / in_frame);
            let mut made = 0;
            if frames > 0 {
                let mut tmp = alloc::vec![0u8; frames * out_frame];
                let mut prev = o.prev;
                let (used, n) = convert(
                    &input[pos..pos + frames * in_frame],
                    o.cfg.enc,
                    usize::from(o.cfg.channels),
                    usize::from(p.dev.channels),
                    p.factor,
                    &mut prev,
                    &mut tmp,
                );
                let taken = be.queue(&tmp[..n])?;
                if taken != n {
                    log::warn!(
                        "sound: the {} stack took {taken} of {n} bytes that fitted: write fails",
                        be.name()
                    );
                    return Err(Errno::EIO);
                }
                o.prev = prev;
                made = n;
                o.queued_dev += n as u64;
                pos += used;
                self.dev.bytes.fetch_add(used as u64, Ordering::Relaxed);
                self.maybe_inject_stall(&o, &p);
            }
            let queued = st.queued as usize + made;
            if !st.running && queued >= st.ring / 2 {
                be.start();
            } else if st.running {
                let now = crate::time::now_ns();
                if st.played != last.0 {
                    last = (st.played, now);
                } else if now - last.1 > STALL_NS {
                    log::warn!(
                        "sound: {} stream stalled at byte {}: write fails",
                        be.name(),
                        st.played
                    );
                    return Err(Errno::EIO);
                }
            }
            if input.len() - pos < in_frame {
                o.carry = input[pos..].to_vec();
                return Ok(buf.len());
            }
            let done = pos.saturating_sub(old_carry);
            if file.flags() & O_NONBLOCK != 0 {
                if pos == 0 {
                    o.carry = input[..old_carry].to_vec();
                    return Err(Errno::EAGAIN);
                }
                return Ok(done);
            }
            if !be.wait_round() {
                if pos == 0 {
                    o.carry = input[..old_carry].to_vec();
                    return Err(Errno::ERESTARTSYS);
                }
                return Ok(done);
            }
        }
    }

    fn poll(&self, _: &File, events: u32) -> u32 {
        let Some(o) = self.st.try_lock() else {
            return 0; // a writer holds it: it is blocked on a full ring
        };
        let ready = match (o.stream, self.be().poll_status()) {
            (Some(p), Some(s)) => s.space >= p.fragment().min(s.ring / 2),
            _ => true,
        };
        if ready {
            events & (POLLOUT | POLLWRNORM)
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(self.be().wq())
    }

    fn ioctl(&self, _: &File, cmd: u32, arg: u64) -> KResult<u64> {
        if let Some(r) = mixer_ioctl(&self.dev, cmd, arg) {
            return r;
        }
        let mut o = self.st.lock();
        let int = |v: i32| -> KResult<u64> {
            write_val(arg, &v)?;
            Ok(0)
        };
        match cmd {
            SNDCTL_DSP_RESET => {
                self.reset(&mut o);
                Ok(0)
            }
            SNDCTL_DSP_SYNC => {
                self.drain(&mut o)?;
                Ok(0)
            }
            SNDCTL_DSP_POST => {
                self.be().start();
                Ok(0)
            }
            SNDCTL_DSP_SPEED => {
                let want: i32 = read_val(arg)?;
                if want <= 0 {
                    return Err(Errno::EINVAL);
                }
                let cfg = Cfg {
                    rate: want as u32,
                    ..o.cfg
                };
                let (got, _) = plan(self.be().caps(), cfg).ok_or(Errno::EIO)?;
                self.reconfigure(&mut o, Cfg { rate: got, ..cfg })?;
                int(got as i32)
            }
            SOUND_PCM_READ_RATE => int(o.cfg.rate as i32),
            SNDCTL_DSP_SETFMT => {
                let want: i32 = read_val(arg)?;
                if want != AFMT_QUERY {
                    // One format bit we have, else the nearest: 16-bit signed.
                    let enc = if want & SUPPORTED_FMTS == want && want.count_ones() == 1 {
                        encoding_of(want)
                    } else {
                        Encoding::S16Le
                    };
                    let cfg = Cfg { enc, ..o.cfg };
                    self.reconfigure(&mut o, cfg)?;
                }
                int(afmt_of(o.cfg.enc))
            }
            SOUND_PCM_READ_BITS => int(o.cfg.enc.bytes() as i32 * 8),
            SNDCTL_DSP_GETFMTS => int(SUPPORTED_FMTS),
            SNDCTL_DSP_CHANNELS => {
                let want: i32 = read_val(arg)?;
                if want < 0 {
                    return Err(Errno::EINVAL);
                }
                let ch = if want >= 2 { 2 } else { 1 };
                let cfg = Cfg {
                    channels: ch,
                    ..o.cfg
                };
                self.reconfigure(&mut o, cfg)?;
                int(i32::from(ch))
            }
            SOUND_PCM_READ_CHANNELS => int(i32::from(o.cfg.channels)),
            SNDCTL_DSP_STEREO => {
                let want: i32 = read_val(arg)?;
                let ch = if want != 0 { 2 } else { 1 };
                let cfg = Cfg {
                    channels: ch,
                    ..o.cfg
                };
                self.reconfigure(&mut o, cfg)?;
                int(i32::from(ch - 1))
            }
            SNDCTL_DSP_GETBLKSIZE | SNDCTL_DSP_GETOSPACE | SNDCTL_DSP_GETODELAY => {
                let (_, p) = plan(self.be().caps(), o.cfg).ok_or(Errno::EIO)?;
                let (num, den) = Self::user_per_dev(&o, &p);
                let to_user = |dev: usize| dev / den * num;
                let frag = to_user(p.fragment());
                let (space, queued) = match (o.stream, self.be().status()) {
                    (Some(_), Some(s)) => (s.space, s.queued as usize),
                    _ => (p.fragment() * FRAGMENTS, 0),
                };
                match cmd {
                    SNDCTL_DSP_GETBLKSIZE => int(frag as i32),
                    SNDCTL_DSP_GETODELAY => int((to_user(queued) + o.carry.len()) as i32),
                    _ => {
                        let free = to_user(space);
                        let info: [i32; 4] = [
                            (free / frag.max(1)) as i32,
                            FRAGMENTS as i32,
                            frag as i32,
                            free as i32,
                        ];
                        write_val(arg, &info)?;
                        Ok(0)
                    }
                }
            }
            SNDCTL_DSP_SETFRAGMENT => Ok(0), // the ring is sized by the driver
            SNDCTL_DSP_NONBLOCK => Ok(0),
            SNDCTL_DSP_GETCAPS => int(1), // revision 1, no trigger, no mmap
            OSS_GETVERSION => int(0x030000),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        Ok(self)
    }
}

/// `SOUND_MIXER_*` ioctls (on `/dev/mixer` and, as OSS allows, on `/dev/dsp`). None: not
/// a mixer ioctl.
fn mixer_ioctl(dev: &Sound, cmd: u32, arg: u64) -> Option<KResult<u64>> {
    let which = cmd & 0xff;
    let int = |v: i32| -> KResult<u64> {
        write_val(arg, &v)?;
        Ok(0)
    };
    if cmd & !0xff == MIXER_READ {
        return Some(match which {
            SOUND_MIXER_VOLUME => int(dev.volume.load(Ordering::Relaxed) as i32),
            SOUND_MIXER_PCM => int(dev.pcm.load(Ordering::Relaxed) as i32),
            SOUND_MIXER_DEVMASK | SOUND_MIXER_STEREODEVS => int(DEVS),
            SOUND_MIXER_RECMASK | SOUND_MIXER_RECSRC | SOUND_MIXER_CAPS => int(0),
            _ => Err(Errno::EINVAL),
        });
    }
    if cmd & !0xff == MIXER_WRITE {
        if which != SOUND_MIXER_VOLUME && which != SOUND_MIXER_PCM {
            return Some(Err(Errno::EINVAL));
        }
        return Some((|| {
            let v: i32 = read_val(arg)?;
            // Each side clamped to 0–100 (OSS answers with what it set).
            let side = |s: i32| (s & 0xff).min(100) as u32;
            let packed = side(v) | (side(v >> 8) << 8);
            let _g = dev.mixer_lock.lock();
            if which == SOUND_MIXER_VOLUME {
                dev.volume.store(packed, Ordering::Relaxed);
            } else {
                dev.pcm.store(packed, Ordering::Relaxed);
            }
            let (vol, pcm) = (
                dev.volume.load(Ordering::Relaxed),
                dev.pcm.load(Ordering::Relaxed),
            );
            let eff = |sh: u32| ((vol >> sh) & 0xff) * ((pcm >> sh) & 0xff) / 100;
            let (l, r) = (eff(0) as u8, eff(8) as u8);
            dev.backend.set_volume(l, r).inspect_err(|e| {
                log::warn!("sound: volume: {e:?}");
            })?;
            int(packed as i32)
        })());
    }
    None
}

/// `/dev/mixer`.
struct MixerDev;

impl Device for MixerDev {
    fn read(&self, _: &File, _: &mut [u8], _: u64) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _: &File, _: &[u8], _: u64) -> KResult<usize> {
        Err(Errno::EINVAL)
    }
    fn ioctl(&self, _: &File, cmd: u32, arg: u64) -> KResult<u64> {
        let dev = super::sound().ok_or(Errno::ENODEV)?;
        mixer_ioctl(dev, cmd, arg).unwrap_or(Err(Errno::EINVAL))
    }
    fn open(self: Arc<Self>, _flags: u32) -> KResult<Arc<dyn Device>> {
        Ok(self)
    }
}

/// Registers the three devices and creates their nodes in `/dev`.
pub fn register() {
    devfs::register_device(DevKind::Char, DSP, Arc::new(DspNode { enc: Encoding::U8 }));
    devfs::register_device(
        DevKind::Char,
        AUDIO,
        Arc::new(DspNode {
            enc: Encoding::MuLaw,
        }),
    );
    devfs::register_device(DevKind::Char, MIXER, Arc::new(MixerDev));
    let root = devfs::devfs().root();
    for (name, rdev) in [("dsp", DSP), ("audio", AUDIO), ("mixer", MIXER)] {
        let _ = root.unlink(name, false);
        if let Err(e) = root.create(name, NodeKind::CharDev(rdev), 0o666, 0, 0) {
            log::warn!("sound: cannot create /dev/{name}: {e:?}");
        }
    }
}
