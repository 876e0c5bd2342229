//! NetBSD's audio stack in the rump kernel as AdrOS's sound device (`audio.driver=rump`).
//!
//! * **The controller.** Before `rump_init`, [`assign`] hands the HD Audio controller (PCI
//!   class 04:03) to the rump kernel, whose PCI bus attaches NetBSD's `hdaudio` to it; the
//!   `hdaudio` and `hdafg` modules (started by `rump_init` after autoconfiguration) find the
//!   codec's audio function group and attach `audio0` on top of it, on the same PCI, DMA
//!   and interrupt hypercalls as the USB controllers and wm(4).
//! * **The OSS devices.** After `rump_init`, a thread waits (at most 20 s) for `audio0` by
//!   opening NetBSD's `/dev/sound0` (which keeps its settings across opens, unlike
//!   `/dev/audio0`) and `/dev/mixer0`, probes which rates the device takes at 16-bit
//!   stereo, finds the `outputs.master` mixer control, and installs a [`RumpAudio`] as the
//!   [`Backend`] under AdrOS's shared OSS layer (`crate::sound::oss`): `/dev/dsp`,
//!   `/dev/audio` and `/dev/mixer` are then NetBSD's audio device. The OSS layer converts
//!   and plans rates exactly as for the native driver, so NetBSD always gets 16-bit
//!   signed little-endian frames at a rate it accepted.
//! * **Translation, in one place** (NetBSD's `sys/audioio.h`): a stream format is
//!   `AUDIO_SETINFO`; the position (bytes in the buffer, bytes played, whether it plays) is
//!   `AUDIO_GETBUFINFO`; reset is `AUDIO_FLUSH`; the end of a drain is `AUDIO_DRAIN`;
//!   volume is `AUDIO_MIXER_WRITE` on `outputs.master` (and `outputs.master.mute` at 0).
//!   Writes are `write(2)`s of at most the free space, so NetBSD never blocks a writer
//!   inside the rump kernel: AdrOS waits (interruptibly, with the stall detector watching
//!   the played count) instead.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use adros_hda::format::{BITS, Format, PcmCaps, RATES};

use super::sys;
use crate::errno::{Errno, KResult};
use crate::sched::wait::WaitQueue;
use crate::sound::{Backend, Caps, Status};
use crate::sync::Mutex;

// ---- NetBSD's sys/audioio.h (amd64), by hand ----

/// `struct audio_prinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AudioPrinfo {
    pub sample_rate: u32,
    pub channels: u32,
    pub precision: u32,
    pub encoding: u32,
    pub gain: u32,
    pub port: u32,
    pub seek: u32,
    pub avail_ports: u32,
    pub buffer_size: u32,
    pub _ispare: [u32; 1],
    pub samples: u32,
    pub eof: u32,
    pub pause: u8,
    pub error: u8,
    pub waiting: u8,
    pub balance: u8,
    pub cspare: [u8; 2],
    pub open: u8,
    pub active: u8,
}

/// `struct audio_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AudioInfo {
    pub play: AudioPrinfo,
    pub record: AudioPrinfo,
    pub monitor_gain: u32,
    pub blocksize: u32,
    pub hiwat: u32,
    pub lowat: u32,
    pub _ispare1: u32,
    pub mode: u32,
}
const _: () = assert!(core::mem::size_of::<AudioPrinfo>() == 56);
const _: () = assert!(core::mem::size_of::<AudioInfo>() == 136);

impl AudioInfo {
    /// `AUDIO_INITINFO`: every field all ones ("leave unchanged").
    pub fn init() -> AudioInfo {
        let p = AudioPrinfo {
            sample_rate: !0,
            channels: !0,
            precision: !0,
            encoding: !0,
            gain: !0,
            port: !0,
            seek: !0,
            avail_ports: !0,
            buffer_size: !0,
            _ispare: [!0],
            samples: !0,
            eof: !0,
            pause: !0,
            error: !0,
            waiting: !0,
            balance: !0,
            cspare: [!0; 2],
            open: !0,
            active: !0,
        };
        AudioInfo {
            play: p,
            record: p,
            monitor_gain: !0,
            blocksize: !0,
            hiwat: !0,
            lowat: !0,
            _ispare1: !0,
            mode: !0,
        }
    }
}

/// `struct audio_mixer_name`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MixerName {
    pub name: [u8; 16],
    pub msg_id: i32,
}

/// `mixer_devinfo_t` (the union kept as bytes: `e`/`s` are 4 + 32 × 24, `v` is 28).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MixerDevinfo {
    pub index: i32,
    pub label: MixerName,
    pub ty: i32,
    pub mixer_class: i32,
    pub next: i32,
    pub prev: i32,
    pub un: [u8; 772],
}
const _: () = assert!(core::mem::size_of::<MixerDevinfo>() == 812);

/// `mixer_ctrl_t`: `un` is `ord`/`mask` (an int) or a `mixer_level_t` (int + 8 levels).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MixerCtrl {
    pub dev: i32,
    pub ty: i32,
    /// `un.ord`, `un.mask` or `un.value.num_channels`.
    pub un_int: i32,
    pub level: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<MixerCtrl>() == 20);

/// NetBSD `sys/ioccom.h`.
const fn ioc(inout: u64, group: u8, num: u8, len: usize) -> u64 {
    inout | (((len as u64) & 0x1fff) << 16) | ((group as u64) << 8) | num as u64
}
const IOC_VOID: u64 = 0x2000_0000;
const IOC_OUT: u64 = 0x4000_0000;
const IOC_INOUT: u64 = 0xc000_0000;
const AI: usize = core::mem::size_of::<AudioInfo>();
pub const AUDIO_GETINFO: u64 = ioc(IOC_OUT, b'A', 21, AI);
pub const AUDIO_SETINFO: u64 = ioc(IOC_INOUT, b'A', 22, AI);
pub const AUDIO_DRAIN: u64 = ioc(IOC_VOID, b'A', 23, 0);
pub const AUDIO_FLUSH: u64 = ioc(IOC_VOID, b'A', 24, 0);
pub const AUDIO_GETBUFINFO: u64 = ioc(IOC_OUT, b'A', 35, AI);
pub const AUDIO_MIXER_READ: u64 = ioc(IOC_INOUT, b'M', 0, core::mem::size_of::<MixerCtrl>());
pub const AUDIO_MIXER_WRITE: u64 = ioc(IOC_INOUT, b'M', 1, core::mem::size_of::<MixerCtrl>());
pub const AUDIO_MIXER_DEVINFO: u64 = ioc(IOC_INOUT, b'M', 2, core::mem::size_of::<MixerDevinfo>());
const _: () = assert!(AUDIO_SETINFO == 0xc088_4116);
const _: () = assert!(AUDIO_MIXER_DEVINFO == 0xc32c_4d02);

pub const AUDIO_ENCODING_SLINEAR_LE: u32 = 6;
pub const AUMODE_PLAY: u32 = 0x01;
pub const AUDIO_MIXER_CLASS: i32 = 0;
pub const AUDIO_MIXER_ENUM: i32 = 1;
pub const AUDIO_MIXER_VALUE: i32 = 3;
/// NetBSD `O_WRONLY`, `O_RDWR`.
const NB_O_WRONLY: c_int = 1;
const NB_O_RDWR: c_int = 2;

fn label(n: &MixerName) -> &str {
    let end = n.name.iter().position(|&b| b == 0).unwrap_or(n.name.len());
    core::str::from_utf8(&n.name[..end]).unwrap_or("?")
}

// ---- ownership and start-up ----

/// Whether `audio.driver=rump` was asked for.
pub fn wanted() -> bool {
    crate::boot::cmdline().param("audio.driver") == Some("rump")
}

/// The controller given to the rump kernel (its slot), if any.
static GIVEN: spin::Mutex<Option<String>> = spin::Mutex::new(None);
/// Where the rump audio device stands, for `/proc/drivers`.
static STATE: spin::Mutex<String> = spin::Mutex::new(String::new());
static DEV: spin::Once<Arc<RumpAudio>> = spin::Once::new();

/// Hands the HD Audio controller to the rump kernel when `audio.driver=rump` (called
/// before `rump_init`).
pub fn assign() {
    if !wanted() {
        return;
    }
    let Some(d) = crate::pci::find_class(adros_hda::PCI_CLASS, adros_hda::PCI_SUBCLASS).next()
    else {
        return;
    };
    match super::pci::give(d, "hdaudio (NetBSD hdaudio, hdafg, audio)") {
        Ok(()) => {
            firmware_handoff(d);
            *GIVEN.lock() = Some(adros_pci::slot_name(d.addr));
            *STATE.lock() = String::from("waiting for audio0");
        }
        Err(o) => log::warn!(
            "sound: {}: owned by the {} stack ({}); not given to rump",
            adros_pci::slot_name(d.addr),
            o.stack,
            o.driver
        ),
    }
}

/// Leaves the controller out of reset, as PC firmware does before an OS starts.
/// NetBSD's `hdaudio_reset` clears STATESTS and enters reset only when GCTL.CRST is set;
/// QEMU's controller comes out of machine reset *in* reset (CRST 0) and announces its
/// codecs in STATESTS only when reset is entered, so without this NetBSD finds "no
/// codecs", fails to attach, and its failure path (`pci_intr_disestablish`, unimplemented
/// in rump's PCI glue) panics the whole rump kernel.
fn firmware_handoff(d: &'static crate::pci::PciDevice) {
    use adros_hal::Mmio;
    use adros_hda::regs::{GCTL, GCTL_CRST};
    crate::pci::enable_memory(d);
    let regs = match crate::pci::map_bar_regs(d, 0) {
        Ok(r) => crate::hal::Bar(r),
        Err(e) => {
            log::warn!("sound: rump: HD Audio BAR0: {e:?}");
            return;
        }
    };
    *REGS.lock() = Some(regs);
    let g = regs.read32(GCTL);
    if g == u32::MAX || g & GCTL_CRST != 0 {
        return;
    }
    regs.write32(GCTL, g | GCTL_CRST);
    let t0 = crate::time::now_ns();
    while regs.read32(GCTL) & GCTL_CRST == 0 {
        if crate::time::now_ns() - t0 > 100_000_000 {
            log::warn!("sound: rump: the HD Audio controller stays in reset (GCTL {g:#x})");
            return;
        }
        core::hint::spin_loop();
    }
}

/// The register window of the controller given to the rump kernel (for the quirk below and
/// fault injection).
static REGS: spin::Mutex<Option<crate::hal::Bar>> = spin::Mutex::new(None);

/// QEMU's `intel-hda` (7.2) stops processing the command ring while its response count
/// equals RINTCNT — including RINTCNT 0, its value after every controller reset, where
/// real hardware means 256. Linux and our driver program it; NetBSD's `hdaudio` (2016)
/// never does, so every verb times out ("RIRB timeout") and no codec attaches. NetBSD
/// allocates its CORB and RIRB with `rumpcomp_pci_dmalloc` right after it has reset the
/// controller and before its first verb: this hook, called from that hypercall, sets
/// RINTCNT to 255 then (a response interrupt still comes for every verb, when the ring is
/// empty). Cheap and idempotent: later allocations find it set.
pub fn quirk_before_dma() {
    use adros_hal::Mmio;
    use adros_hda::regs::{GCTL, GCTL_CRST, RINTCNT};
    let Some(regs) = *REGS.lock() else {
        return;
    };
    if regs.read32(GCTL) & GCTL_CRST != 0 && regs.read16(RINTCNT) & 0xff == 0 {
        regs.write16(RINTCNT, 0xff);
        QUIRKS.fetch_add(1, Ordering::Relaxed);
    }
}
static QUIRKS: AtomicU64 = AtomicU64::new(0);

/// Whether the controller went to the rump kernel.
pub fn assigned() -> bool {
    GIVEN.lock().is_some()
}

/// Why the rump stack cannot serve audio (when [`assigned`] is false).
pub fn why_not() -> &'static str {
    if !super::LINKED {
        "NetBSD components not linked"
    } else if !super::started() {
        "the rump kernel is off (rump=off)"
    } else {
        "the controller could not be given to it"
    }
}

/// After `rump_init`: waits for `audio0` in a thread and serves the OSS devices from it.
pub fn start() {
    if !assigned() {
        return;
    }
    crate::sched::thread::spawn("rump-audio", || {
        let t0 = crate::time::now_ns();
        match attach(t0) {
            Ok(dev) => {
                let ms = (crate::time::now_ns() - t0) / 1_000_000;
                let dev = DEV.call_once(|| dev).clone();
                let (block, ring) = {
                    let s = dev.st.lock();
                    (s.blocksize, s.ring)
                };
                *STATE.lock() = alloc::format!("audio0 attached after {ms} ms");
                log::info!(
                    "sound: rump: NetBSD audio0 serves /dev/dsp, /dev/audio, /dev/mixer ({} ms after rump_init; rates {} Hz, block {} bytes, buffer {} bytes, mixer {})",
                    ms,
                    dev.caps
                        .pcm
                        .rates()
                        .map(|r| alloc::format!("{r}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    block,
                    ring,
                    dev.mixer_desc
                );
                crate::sound::install(dev.clone(), "rump");
                service(&dev);
            }
            Err(e) => {
                log::warn!("sound: rump: no NetBSD audio device: {e}");
                *STATE.lock() = alloc::format!("no audio0: {e}");
            }
        }
    });
}

/// `/proc/drivers` lines for the rump audio stack.
pub fn report() -> Vec<String> {
    let Some(slot) = GIVEN.lock().clone() else {
        return Vec::new();
    };
    let mut line = alloc::format!(
        "audio rump {slot} driver=\"hdaudio\" state=\"{}\" rintcnt_quirks={}",
        STATE.lock(),
        QUIRKS.load(Ordering::Relaxed)
    );
    if let Some(d) = DEV.get() {
        let s = d.st.lock();
        line.push_str(&alloc::format!(
            " stream={} running={} bytes={}",
            s.format.map_or(String::from("none"), |f| alloc::format!(
                "{}Hz/{}bit/{}ch",
                f.rate,
                f.bits,
                f.channels
            )),
            s.last.running,
            d.bytes.load(Ordering::Relaxed),
        ));
    }
    alloc::vec![line]
}

/// Opens NetBSD's devices (waiting for `audio0` to attach), probes rates and the mixer.
fn attach(t0: u64) -> Result<Arc<RumpAudio>, String> {
    super::ready().map_err(|e| alloc::format!("rump kernel not ready: {e:?}"))?;
    // hdaudio finds its codecs and hdafg attaches audio0 as modules after autoconf; the
    // device node exists from the start but answers ENXIO until then.
    let fd = loop {
        match sys::openat(sys::AT_FDCWD, "/dev/sound0", NB_O_WRONLY, 0) {
            Ok(fd) => break fd,
            Err(e) if crate::time::now_ns() - t0 > 20_000_000_000 => {
                return Err(alloc::format!("/dev/sound0 still fails after 20 s: {e:?}"));
            }
            Err(_) => crate::sched::sleep_ms(50),
        }
    };
    log::debug!("sound: rump: /dev/sound0 open (fd {fd})");
    let mixer = sys::openat(sys::AT_FDCWD, "/dev/mixer0", NB_O_RDWR, 0)
        .map_err(|e| alloc::format!("/dev/mixer0: {e:?}"))?;
    // Rates NetBSD takes as they are at 16-bit stereo.
    let mut mask = 0u32;
    let mut stereo = false;
    for (i, &r) in RATES.iter().enumerate() {
        for ch in [2u32, 1] {
            log::debug!("sound: rump: probing {r} Hz {ch} ch");
            if setinfo(fd, r, ch).is_ok()
                && let Ok(ai) = getinfo(fd, AUDIO_GETINFO)
                && ai.play.sample_rate == r
                && ai.play.channels == ch
                && ai.play.precision == 16
            {
                mask |= 1 << i;
                stereo |= ch == 2;
                break;
            }
        }
    }
    let bit16 = BITS.iter().position(|&b| b == 16).unwrap_or(1);
    let caps = Caps {
        pcm: PcmCaps(mask | (1 << (16 + bit16))),
        stereo,
    };
    if mask == 0 {
        let _ = sys::close(fd);
        let _ = sys::close(mixer);
        return Err(String::from(
            "audio0 takes no rate at 16-bit signed little-endian",
        ));
    }
    let (master, mute, mixer_desc) = find_master(mixer);
    let ai = getinfo(fd, AUDIO_GETBUFINFO).map_err(|e| alloc::format!("GETBUFINFO: {e:?}"));
    // Streams open their own descriptor (NetBSD's close is what halts the output).
    let _ = sys::close(fd);
    let ai = ai?;
    Ok(Arc::new(RumpAudio {
        mixer,
        master,
        mute,
        mixer_desc,
        caps,
        st: Mutex::new(State {
            fd: None,
            format: None,
            blocksize: ai.blocksize as usize,
            ring: ring_of(&ai),
            base_samples: 0,
            written: 0,
            drain_tail: None,
            pending: Vec::new(),
            started: false,
            last: Status::default(),
        }),
        cache: spin::Mutex::new(None),
        wq: WaitQueue::new(),
        rounds: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        open: AtomicBool::new(false),
    }))
}

/// NetBSD's high-water mark in bytes (a write beyond it blocks in the rump kernel).
fn ring_of(ai: &AudioInfo) -> usize {
    (ai.hiwat as usize * ai.blocksize as usize).max(ai.blocksize as usize)
}

/// Stops a stream's output and closes its descriptor. AUDIO_FLUSH first empties the
/// buffer (and restarts the output of a stream that was playing, so a controller whose
/// DMA engine stopped is programmed afresh), so NetBSD's close — which drains what is
/// buffered, then halts the output — has nothing of ours to wait for.
fn stop_fd(fd: c_int) {
    if let Err(e) = sys::ioctl(fd, AUDIO_FLUSH, &mut 0u32) {
        log::warn!("sound: rump: AUDIO_FLUSH: {e:?}");
    }
    if let Err(e) = sys::close(fd) {
        log::warn!("sound: rump: close: {e:?}");
    }
}

fn setinfo(fd: c_int, rate: u32, channels: u32) -> KResult<()> {
    let mut ai = AudioInfo::init();
    ai.play.sample_rate = rate;
    ai.play.channels = channels;
    ai.play.precision = 16;
    ai.play.encoding = AUDIO_ENCODING_SLINEAR_LE;
    ai.mode = AUMODE_PLAY;
    sys::ioctl(fd, AUDIO_SETINFO, &mut ai)
}

fn getinfo(fd: c_int, cmd: u64) -> KResult<AudioInfo> {
    let mut ai = AudioInfo::init();
    sys::ioctl(fd, cmd, &mut ai)?;
    Ok(ai)
}

/// `outputs.master` (value) and `outputs.master.mute` (enum) among the mixer's devices,
/// and a description for the log.
fn find_master(mixer: c_int) -> (Option<i32>, Option<i32>, String) {
    let mut devs = Vec::new();
    for index in 0..128 {
        // SAFETY: MixerDevinfo is plain integers and byte arrays: all-zero is valid.
        let mut di: MixerDevinfo = unsafe { core::mem::zeroed() };
        di.index = index;
        if sys::ioctl(mixer, AUDIO_MIXER_DEVINFO, &mut di).is_err() {
            break;
        }
        devs.push(di);
    }
    let outputs = devs
        .iter()
        .find(|d| d.ty == AUDIO_MIXER_CLASS && label(&d.label) == "outputs")
        .map(|d| d.index);
    let find = |name: &str, ty: i32| {
        devs.iter()
            .find(|d| d.ty == ty && label(&d.label) == name && Some(d.mixer_class) == outputs)
            .map(|d| d.index)
    };
    let master = find("master", AUDIO_MIXER_VALUE);
    let mute = find("master.mute", AUDIO_MIXER_ENUM);
    let desc = alloc::format!(
        "{} controls, outputs.master {}, outputs.master.mute {}",
        devs.len(),
        master.map_or(String::from("missing"), |i| alloc::format!("#{i}")),
        mute.map_or(String::from("missing"), |i| alloc::format!("#{i}")),
    );
    (master, mute, desc)
}

// ---- the backend ----

struct State {
    /// The stream's NetBSD descriptor (rump process 1) of `/dev/sound0`.
    fd: Option<c_int>,
    format: Option<Format>,
    blocksize: usize,
    /// NetBSD's high-water mark: a write beyond it would block in the rump kernel.
    ring: usize,
    /// `play.samples` when the stream was (re)opened.
    base_samples: u32,
    /// Bytes queued since then (tail of silence included).
    written: u64,
    /// Draining: bytes of silence still to queue.
    drain_tail: Option<usize>,
    /// Until the OSS layer starts the stream (half the buffer queued, or a drain), data
    /// waits here: NetBSD starts playing as soon as one block is written, and a writer
    /// slower than that at first underruns at once.
    pending: Vec<u8>,
    started: bool,
    last: Status,
}

/// NetBSD's `audio0` in the rump kernel as the OSS layer's device.
pub struct RumpAudio {
    /// NetBSD descriptor (rump process 1) of `/dev/mixer0`.
    mixer: c_int,
    master: Option<i32>,
    mute: Option<i32>,
    mixer_desc: String,
    caps: Caps,
    st: Mutex<State>,
    /// The last status, for `poll` (which must not enter the rump kernel).
    cache: spin::Mutex<Option<Status>>,
    wq: WaitQueue,
    rounds: AtomicU64,
    bytes: AtomicU64,
    /// A stream is open (the service thread polls only then).
    open: AtomicBool,
}

impl RumpAudio {
    /// GETBUFINFO into a [`Status`]; while draining, queues the tail of silence and ends
    /// the drain once everything was played (AUDIO_DRAIN, then AUDIO_FLUSH to stop).
    fn refresh(&self, s: &mut State) -> Option<Status> {
        s.format?;
        let fd = s.fd?;
        let ai = match getinfo(fd, AUDIO_GETBUFINFO) {
            Ok(ai) => ai,
            Err(e) => {
                log::warn!("sound: rump: AUDIO_GETBUFINFO: {e:?}");
                return None;
            }
        };
        // `samples` is what the DMA has taken of the user's bytes (NetBSD's `stamp`
        // minus the silence it inserted itself on underruns).
        let played = u64::from(ai.play.samples.wrapping_sub(s.base_samples));
        let seek = ai.play.seek as usize;
        let pending = s.pending.len() as u64;
        let mut st = Status {
            space: s.ring.saturating_sub(seek + s.pending.len()),
            queued: (s.written + pending).saturating_sub(played),
            played,
            written: s.written + pending,
            running: s.started && ai.play.active != 0,
            ring: s.ring,
        };
        if let Some(left) = s.drain_tail {
            let frame = s.format.map_or(4, |f| f.frame_bytes());
            let n = left.min(st.space) / frame * frame;
            if n > 0 {
                let zeros = alloc::vec![0u8; n];
                match sys::pwrite(fd, &zeros, 0) {
                    Ok(k) => {
                        s.written += k as u64;
                        s.drain_tail = Some(left - k);
                    }
                    Err(e) => {
                        log::warn!("sound: rump: write of the drain's tail: {e:?}");
                        s.drain_tail = Some(0);
                    }
                }
                st.written = s.written;
                st.queued = s.written.saturating_sub(played);
            }
            // NetBSD counts the silence block it queues behind the last data at once, so
            // `samples` stops one block short of everything written: done when the data
            // and all but one block of the tail of silence went through the DMA.
            if s.drain_tail == Some(0) && played + s.blocksize as u64 >= s.written {
                // AUDIO_DRAIN then waits for that last block; close halts the output.
                if let Err(e) = sys::ioctl(fd, AUDIO_DRAIN, &mut 0u32) {
                    log::warn!("sound: rump: AUDIO_DRAIN: {e:?}");
                }
                if let Err(e) = sys::close(fd) {
                    log::warn!("sound: rump: close: {e:?}");
                }
                s.fd = None;
                s.format = None;
                s.drain_tail = None;
                self.open.store(false, Ordering::Release);
                st.running = false;
                st.queued = 0;
            } else {
                st.running = true;
            }
        }
        s.last = st;
        *self.cache.lock() = Some(st);
        Some(st)
    }

    fn mixer_write(&self, dev: i32, ty: i32, int: i32, levels: [u8; 2]) -> KResult<()> {
        let mut c = MixerCtrl {
            dev,
            ty,
            un_int: int,
            level: [levels[0], levels[1], 0, 0, 0, 0, 0, 0],
        };
        sys::ioctl(self.mixer, AUDIO_MIXER_WRITE, &mut c)
    }
}

type Job = alloc::boxed::Box<dyn FnOnce() + Send>;
static JOBS: spin::Mutex<alloc::collections::VecDeque<Job>> =
    spin::Mutex::new(alloc::collections::VecDeque::new());
static JOBQ: WaitQueue = WaitQueue::new();
/// The worker's thread id.
static WORKER: AtomicU64 = AtomicU64::new(u64::MAX);

/// Runs `f` on the `rump-audio` thread and returns its result.
fn on_worker<R: Send + 'static>(f: impl FnOnce(&RumpAudio) -> R + Send + 'static) -> R {
    let dev = DEV
        .get()
        .expect("the rump audio device serves before it is called");
    if crate::sched::thread::current().id == WORKER.load(Ordering::Acquire) {
        return f(dev);
    }
    let slot: Arc<(spin::Mutex<Option<R>>, WaitQueue)> =
        Arc::new((spin::Mutex::new(None), WaitQueue::new()));
    let back = slot.clone();
    JOBS.lock().push_back(alloc::boxed::Box::new(move || {
        let d = DEV.get().expect("set before jobs run");
        *back.0.lock() = Some(f(d));
        back.1.wake_all();
    }));
    JOBQ.wake_all();
    loop {
        slot.1.wait_until(|| slot.0.lock().is_some(), None);
        if let Some(r) = slot.0.lock().take() {
            return r;
        }
    }
}

/// The `rump-audio` thread, once `audio0` serves: runs every call into NetBSD for the OSS
/// layer, and refreshes the position every 20 ms while a stream is open (for pollers),
/// waking waiters after each round.
fn service(dev: &Arc<RumpAudio>) -> ! {
    WORKER.store(crate::sched::thread::current().id, Ordering::Release);
    let mut next = 0u64;
    loop {
        while let Some(job) = JOBS.lock().pop_front() {
            job();
        }
        let now = crate::time::now_ns();
        let open = dev.open.load(Ordering::Acquire);
        if open && now >= next {
            {
                let mut s = dev.st.lock();
                dev.refresh(&mut s);
            }
            dev.rounds.fetch_add(1, Ordering::AcqRel);
            dev.wq.wake_all();
            next = now + 20_000_000;
        }
        let until = if open { next } else { now + 200_000_000 };
        JOBQ.wait_until(|| !JOBS.lock().is_empty(), Some(until));
    }
}

/// The NetBSD side of each operation, run on the `rump-audio` worker thread.
impl RumpAudio {
    fn w_open_stream(&self, fmt: Format, _fragment: usize, _fragments: usize) -> KResult<()> {
        let mut s = self.st.lock();
        if let Some(fd) = s.fd.take() {
            stop_fd(fd);
        }
        s.format = None;
        if fmt.bits != 16 {
            return Err(Errno::EINVAL);
        }
        let fd = sys::openat(sys::AT_FDCWD, "/dev/sound0", NB_O_WRONLY, 0).inspect_err(|e| {
            log::warn!("sound: rump: open /dev/sound0: {e:?}");
        })?;
        let set = setinfo(fd, fmt.rate, u32::from(fmt.channels))
            .inspect_err(|e| log::warn!("sound: rump: AUDIO_SETINFO {fmt:?}: {e:?}"))
            .and_then(|()| getinfo(fd, AUDIO_GETBUFINFO));
        let ai = match set {
            Ok(ai)
                if ai.play.sample_rate == fmt.rate
                    && ai.play.channels == u32::from(fmt.channels) =>
            {
                ai
            }
            Ok(ai) => {
                log::warn!(
                    "sound: rump: asked NetBSD for {fmt:?}, it set {} Hz {} ch",
                    ai.play.sample_rate,
                    ai.play.channels
                );
                let _ = sys::close(fd);
                return Err(Errno::EIO);
            }
            Err(e) => {
                let _ = sys::close(fd);
                return Err(e);
            }
        };
        s.fd = Some(fd);
        s.blocksize = ai.blocksize as usize;
        s.ring = ring_of(&ai);
        s.base_samples = ai.play.samples;
        s.written = 0;
        s.format = Some(fmt);
        s.drain_tail = None;
        s.pending.clear();
        s.started = false;
        self.open.store(true, Ordering::Release);
        Ok(())
    }

    fn w_close_stream(&self) {
        let mut s = self.st.lock();
        if let Some(fd) = s.fd.take() {
            stop_fd(fd);
        }
        s.format = None;
        s.drain_tail = None;
        s.pending.clear();
        s.started = false;
        self.open.store(false, Ordering::Release);
        *self.cache.lock() = None;
    }

    fn w_status(&self) -> Option<Status> {
        let mut s = self.st.lock();
        self.refresh(&mut s)
    }

    fn w_queue(&self, data: &[u8]) -> KResult<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut s = self.st.lock();
        let fd = s.fd.ok_or(Errno::EIO)?;
        if !s.started {
            s.pending.extend_from_slice(data);
            self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            return Ok(data.len());
        }
        let n = sys::pwrite(fd, data, 0)?;
        s.written += n as u64;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Hands what waited to NetBSD, which then starts playing.
    fn w_start(&self) {
        let mut s = self.st.lock();
        if s.started {
            return;
        }
        s.started = true;
        let Some(fd) = s.fd else {
            return;
        };
        let data = core::mem::take(&mut s.pending);
        if data.is_empty() {
            return;
        }
        match sys::pwrite(fd, &data, 0) {
            Ok(n) => s.written += n as u64,
            Err(e) => log::warn!("sound: rump: write: {e:?}"),
        }
    }

    fn w_begin_drain(&self) -> KResult<bool> {
        self.w_start();
        let mut s = self.st.lock();
        let (Some(fmt), Some(_)) = (s.format, s.fd) else {
            return Ok(false);
        };
        let st = self.refresh(&mut s);
        if st.is_none_or(|st| st.queued == 0 && !st.running) {
            return Ok(false);
        }
        // Silence to the end of the last block, then a whole buffer of it (at least
        // ~100 ms) and two more blocks: that pushes the last samples through the codec's
        // own buffer, and whatever the DMA engine still fetches between NetBSD's drain
        // and its halt is our silence, not stale sound from an earlier lap of the ring.
        let b = s.blocksize.max(fmt.frame_bytes());
        let pad = (b - (s.written as usize % b)) % b;
        let tail = ((fmt.bytes_per_second() / 10) as usize)
            .max(s.ring)
            .next_multiple_of(b)
            + 2 * b;
        s.drain_tail = Some(pad + tail);
        Ok(true)
    }

    fn w_set_volume(&self, left: u8, right: u8) -> KResult<()> {
        let Some(master) = self.master else {
            log::warn!("sound: rump: NetBSD's mixer has no outputs.master");
            return Err(Errno::EIO);
        };
        let lv = |v: u8| (u32::from(v.min(100)) * 255 / 100) as u8;
        self.mixer_write(master, AUDIO_MIXER_VALUE, 2, [lv(left), lv(right)])?;
        if let Some(mute) = self.mute {
            let on = i32::from(left == 0 && right == 0);
            self.mixer_write(mute, AUDIO_MIXER_ENUM, on, [0, 0])?;
        }
        Ok(())
    }
}

/// Every call into NetBSD runs on the `rump-audio` worker thread (its own rump lwp in the
/// process that holds the descriptors), whichever AdrOS thread asked.
impl Backend for RumpAudio {
    fn name(&self) -> &'static str {
        "rump"
    }

    fn caps(&self) -> Option<Caps> {
        Some(self.caps)
    }

    fn stream_format(&self) -> Option<Format> {
        self.st.lock().format
    }

    fn open_stream(&self, fmt: Format, fragment: usize, fragments: usize) -> KResult<()> {
        on_worker(move |d| d.w_open_stream(fmt, fragment, fragments))
    }

    fn close_stream(&self) {
        on_worker(|d| d.w_close_stream())
    }

    fn status(&self) -> Option<Status> {
        on_worker(|d| d.w_status())
    }

    fn poll_status(&self) -> Option<Status> {
        *self.cache.lock()
    }

    fn queue(&self, data: &[u8]) -> KResult<usize> {
        let v = data.to_vec();
        on_worker(move |d| d.w_queue(&v))
    }

    fn start(&self) {
        on_worker(|d| d.w_start());
    }

    fn cancel_drain(&self) {
        self.st.lock().drain_tail = None;
    }

    fn begin_drain(&self) -> KResult<bool> {
        on_worker(|d| d.w_begin_drain())
    }

    fn set_volume(&self, left: u8, right: u8) -> KResult<()> {
        on_worker(move |d| d.w_set_volume(left, right))
    }

    fn wait_round(&self) -> bool {
        let seen = self.rounds.load(Ordering::Acquire);
        let mut intr = false;
        self.wq.wait_until(
            || {
                self.rounds.load(Ordering::Acquire) != seen || {
                    intr = crate::fs::interrupted();
                    intr
                }
            },
            Some(crate::time::now_ns() + 20_000_000),
        );
        !intr
    }

    fn wq(&self) -> &WaitQueue {
        &self.wq
    }

    fn fault_stop_dma(&self) -> usize {
        // The register window of the controller NetBSD drives, mapped by us too.
        REGS.lock()
            .map_or(0, |r| adros_hda::fault_stop_output_dma(&r))
    }
}
