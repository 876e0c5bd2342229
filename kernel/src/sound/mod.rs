//! Sound: Intel HD Audio behind OSS devices ([`oss`]: `/dev/dsp`, `/dev/audio`,
//! `/dev/mixer`), driven by one of two stacks chosen with `audio.driver=native|rump` on the
//! kernel command line: the native driver (`adros-hda`, this module's [`Card`]) or NetBSD's
//! `hdaudio`/`hdafg`/`audio` in the rump kernel (`crate::rump::audio`). Both implement
//! [`Backend`]; the OSS layer above it is shared. Without an HD Audio controller on the PCI
//! bus (`cargo xtask run` without `--audio`) there are no sound devices.
//!
//! `audio.fault=stall:MS` (fault injection, for tests): once per boot, after a stream has
//! been given MS ms of sound, the controller's output DMA engine is stopped behind the
//! driver's back (either stack); the writer must get EIO within seconds.
//!
//! One thread (`sound`) services the card: it sleeps on an event the interrupt handler
//! (which only acknowledges the stream's buffer-completion status, so QEMU's controller
//! keeps fetching) notifies, or 20 ms while a stream runs; then it reads the position,
//! stops a drained stream, and wakes writers and pollers. Writers convert and copy into
//! the DMA ring under the card lock and sleep on the card's queue while the ring is full:
//! that is the backpressure that makes `write` block at the playback rate.

pub mod oss;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use adros_hal::Event;
use adros_hda::Hda;
use adros_hda::format::{Format, PcmCaps};

use crate::errno::{Errno, KResult};

use crate::hal::{Bar, KernelEvent, KernelHal};
use crate::sched::wait::WaitQueue;
use crate::sync::Mutex;
use crate::sync::spin::IrqSpinLock;

pub type Controller = Hda<KernelHal, Bar>;

/// What the card lock covers: the driver and the playback bookkeeping.
pub struct Inner {
    pub hda: Controller,
    /// Stop the stream once the controller has fetched this many bytes (set by a drain:
    /// the data's end plus a tail of silence that pushes the last samples through the
    /// codec's own buffer).
    pub stop_at: Option<u64>,
    /// Underruns of closed streams (the open one counts its own).
    pub underruns: u64,
}

impl Inner {
    /// Closes the card's stream, keeping its underrun count.
    pub fn close_stream(&mut self) {
        if let Some(st) = self.hda.stream.as_ref() {
            self.underruns += st.underruns;
        }
        self.hda.close_stream();
        self.stop_at = None;
    }
}

pub struct Card {
    pub inner: Mutex<Inner>,
    event: KernelEvent,
    /// Writers and pollers wait here; woken after every service round.
    pub wq: WaitQueue,
    regs: Bar,
    descriptors: usize,
    pub slot: String,
    pub codec: String,
    pub path: String,
    pub irq: IrqSpinLock<String>,
    pub interrupts: AtomicU64,
    /// Service rounds so far (writers wait for the next one).
    pub rounds: AtomicU64,
}

/// What a device can play: its DAC's PCM capabilities (rates and sample sizes, in HD
/// Audio's supported-PCM encoding) and whether it is stereo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub pcm: PcmCaps,
    pub stereo: bool,
}

/// A playing stream as the OSS layer sees it, in device bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status {
    /// Bytes that can be queued now without blocking.
    pub space: usize,
    /// Bytes queued and not yet played.
    pub queued: u64,
    /// Bytes played (the stall detector watches this move).
    pub played: u64,
    pub written: u64,
    pub running: bool,
    /// The buffer's size.
    pub ring: usize,
}

/// One sound device under the OSS layer ([`oss`]), whichever stack drives it. Every
/// method that may enter the rump kernel is called from a thread that may sleep, never
/// with a spinlock held; [`Backend::poll_status`] is the exception (called from `poll`)
/// and must not block.
pub trait Backend: Send + Sync {
    /// "native" or "rump" (log lines).
    fn name(&self) -> &'static str;
    fn caps(&self) -> Option<Caps>;
    /// The format of the open stream, if any.
    fn stream_format(&self) -> Option<Format>;
    /// (Re)opens the stream for `fmt` (16-bit frames at a rate from [`Backend::caps`]).
    fn open_stream(&self, fmt: Format, fragment: usize, fragments: usize) -> KResult<()>;
    /// Stops and forgets the stream at once (what is queued is dropped).
    fn close_stream(&self);
    /// The stream's position, brought up to date; None without a stream.
    fn status(&self) -> Option<Status>;
    /// The last known status, without blocking (for `poll`).
    fn poll_status(&self) -> Option<Status> {
        self.status()
    }
    /// Queues `data` (which fits in [`Status::space`]); the bytes taken.
    fn queue(&self, data: &[u8]) -> KResult<usize>;
    /// Starts playback of what is queued.
    fn start(&self);
    /// A write after a drain that ended early: play on instead of stopping.
    fn cancel_drain(&self);
    /// Starts playing out what is queued, plus a tail of silence; [`Backend::status`]
    /// then reports `running` until it is done. False: nothing to drain.
    fn begin_drain(&self) -> KResult<bool>;
    /// Output gain per side, 0–100 (0 mutes).
    fn set_volume(&self, left: u8, right: u8) -> KResult<()>;
    /// Waits for the next position update (or ~100 ms); false if a signal is pending.
    fn wait_round(&self) -> bool;
    /// Writers and pollers wait here.
    fn wq(&self) -> &WaitQueue;
    /// Fault injection: stops the controller's output DMA behind the driver's back.
    fn fault_stop_dma(&self) -> usize;
}

/// The sound device the OSS nodes serve, with the OSS-level state both stacks share.
pub struct Sound {
    pub backend: Arc<dyn Backend>,
    /// One open of `/dev/dsp` or `/dev/audio` at a time.
    pub busy: core::sync::atomic::AtomicBool,
    /// OSS volumes (left | right << 8, 0–100 each) for VOLUME and PCM.
    pub volume: AtomicU32,
    pub pcm: AtomicU32,
    /// Serialises mixer writes (volume and pcm are combined into one gain).
    pub mixer_lock: Mutex<()>,
    /// Bytes of user data played since boot, streams opened.
    pub bytes: AtomicU64,
    pub streams: AtomicU64,
    /// `audio.fault=stall:MS`, and whether it has fired.
    pub fault_stall_ms: Option<u32>,
    pub fault_fired: core::sync::atomic::AtomicBool,
}

static CARD: spin::Once<Arc<Card>> = spin::Once::new();
static SOUND: spin::Once<Arc<Sound>> = spin::Once::new();
static CHOICE: spin::Once<&'static str> = spin::Once::new();

pub fn card() -> Option<&'static Arc<Card>> {
    CARD.get()
}

/// The device behind the OSS nodes (either stack).
pub fn sound() -> Option<&'static Arc<Sound>> {
    SOUND.get()
}

/// `audio.fault=` from the command line: `stall:MS` (MS ≥ 1), else None (with a log line
/// for anything else).
fn fault_stall_ms() -> Option<u32> {
    let v = crate::boot::cmdline().param("audio.fault")?;
    match v.strip_prefix("stall:").and_then(|m| m.parse::<u32>().ok()) {
        Some(ms) if ms > 0 => {
            log::warn!(
                "sound: fault injection armed: audio.fault=stall:{ms} (the output DMA stops after {ms} ms of a stream)"
            );
            Some(ms)
        }
        _ => {
            log::warn!("sound: audio.fault={v}: unknown (stall:MS); ignored");
            None
        }
    }
}

/// Serves the OSS nodes from `backend` (once per boot) and records the stack's name for
/// `/proc/drivers`.
pub fn install(backend: Arc<dyn Backend>, choice: &'static str) {
    CHOICE.call_once(|| choice);
    SOUND.call_once(|| {
        Arc::new(Sound {
            backend,
            busy: core::sync::atomic::AtomicBool::new(false),
            volume: AtomicU32::new(100 | (100 << 8)),
            pcm: AtomicU32::new(100 | (100 << 8)),
            mixer_lock: Mutex::new(()),
            bytes: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            fault_stall_ms: fault_stall_ms(),
            fault_fired: core::sync::atomic::AtomicBool::new(false),
        })
    });
    oss::register();
}

impl Card {
    /// Wakes the `sound` thread.
    pub fn kick(&self) {
        self.event.notify();
    }
}

/// Finds an HD Audio controller and brings it up. Call once the scheduler, PCI and the
/// interrupt controllers are up.
pub fn init() {
    let cmd = crate::boot::cmdline();
    let want = cmd.param("audio.driver").unwrap_or("native");
    let Some(d) = crate::pci::find_class(adros_hda::PCI_CLASS, adros_hda::PCI_SUBCLASS).next()
    else {
        log::info!("sound: no HD Audio controller (class 04:03) on the PCI bus: no sound");
        return;
    };
    let slot = adros_pci::slot_name(d.addr);
    match want {
        "native" => {}
        "rump" => {
            if crate::rump::audio::assigned() {
                // Given to the rump kernel before rump_init; `rump::audio` serves the
                // OSS nodes once NetBSD's audio0 has attached.
                CHOICE.call_once(|| "rump");
                return;
            }
            CHOICE.call_once(|| "rump (not available)");
            log::warn!(
                "sound: audio.driver=rump: the rump audio stack (NetBSD hdaudio) is not available in this kernel ({}); HD Audio controller at {slot} left unused",
                crate::rump::audio::why_not()
            );
            return;
        }
        other => log::warn!("sound: audio.driver={other}: unknown (native|rump); using native"),
    }
    match bring_up(d) {
        Ok(c) => {
            let c = CARD.call_once(|| c);
            *c.irq.lock() = attach_irq(d);
            install(c.clone(), "native");
            let card = c.clone();
            crate::sched::spawn("sound", move || run(&card));
        }
        Err(e) => log::warn!("sound: HD Audio at {slot}: not brought up: {e}"),
    }
}

fn bring_up(d: &'static crate::pci::PciDevice) -> Result<Arc<Card>, String> {
    crate::pci::claim(
        d.addr,
        crate::pci::Owner {
            stack: "native",
            driver: "hda",
        },
    )
    .map_err(|o| format!("owned by the {} stack ({})", o.stack, o.driver))?;
    crate::pci::enable_memory(d);
    crate::pci::enable_bus_master(d);
    let regs = Bar(crate::pci::map_bar_regs(d, 0).map_err(|e| format!("BAR0: {e:?}"))?);
    let mut hda = Hda::new(KernelHal, regs).map_err(|e| format!("controller: {e:?}"))?;
    let out = hda
        .probe_output()
        .map_err(|e| format!("codec: {e:?}"))?
        .clone();
    let slot = adros_pci::slot_name(d.addr);
    let codec = format!("{:08x}", out.fg.vendor);
    let path = out
        .path
        .nodes
        .iter()
        .map(|n| format!("{n:#x}"))
        .collect::<Vec<_>>()
        .join("<-");
    let rates: Vec<String> = out.pcm.rates().map(|r| format!("{r}")).collect();
    let bits: Vec<String> = out.pcm.bits().map(|b| format!("{b}")).collect();
    log::info!(
        "sound: HD Audio {}.{} at {slot}: {} input / {} output streams, codecs {:#x}; codec {codec} at {}: {:?} pin {path} (pin<-…<-DAC), rates {} Hz, {} bit, volume on {}",
        hda.version.0,
        hda.version.1,
        hda.iss,
        hda.oss,
        hda.codecs,
        out.cad,
        out.path.device,
        rates.join(","),
        bits.join(","),
        out.volume_amp
            .map_or(String::from("none"), |(n, a)| format!(
                "node {n:#x} ({} steps)",
                a.steps()
            ))
    );
    let descriptors = hda.descriptors();
    Ok(Arc::new(Card {
        inner: Mutex::new(Inner {
            hda,
            stop_at: None,
            underruns: 0,
        }),
        event: KernelEvent::default(),
        wq: WaitQueue::new(),
        regs,
        descriptors,
        slot,
        codec,
        path: format!("{:?}:{path}", out.path.device),
        irq: IrqSpinLock::new(String::from("polled")),
        interrupts: AtomicU64::new(0),
        rounds: AtomicU64::new(0),
    }))
}

fn attach_irq(d: &'static crate::pci::PciDevice) -> String {
    let Some(gsi) = crate::pci::irq(d) else {
        return String::from("polled (no routed INTx)");
    };
    match crate::irq::attach(gsi, "hda", alloc::boxed::Box::new(irq_handler)) {
        Ok(()) => format!("gsi {gsi} (shared line)"),
        Err(e) => format!("polled (GSI {gsi}: {e:?})"),
    }
}

/// Hard-interrupt handler: acknowledges the streams' status (QEMU's controller stops
/// fetching while it is set) and wakes the thread.
fn irq_handler() {
    if let Some(c) = CARD.get()
        && adros_hda::ack(&c.regs, c.descriptors) != 0
    {
        c.interrupts.fetch_add(1, Ordering::Relaxed);
        c.event.notify();
    }
}

/// One service round under the card lock: position, drained-stream stop. True while a
/// stream runs.
pub fn service(inner: &mut Inner) -> bool {
    inner.hda.update();
    let Some(st) = inner.hda.stream.as_ref() else {
        return false;
    };
    if st.running
        && let Some(end) = inner.stop_at
        && st.played >= end
    {
        inner.hda.stop();
        inner.stop_at = None;
    }
    inner.hda.stream.as_ref().is_some_and(|s| s.running)
}

/// The `sound` thread.
fn run(card: &Arc<Card>) -> ! {
    loop {
        let running = service(&mut card.inner.lock());
        card.rounds.fetch_add(1, Ordering::AcqRel);
        card.wq.wake_all();
        let wait_ns = if running { 20_000_000 } else { 1_000_000_000 };
        card.event.wait(Some(crate::time::now_ns() + wait_ns));
    }
}

/// `/proc/drivers` lines.
pub fn report() -> Vec<String> {
    let mut v = alloc::vec![format!(
        "audio.driver={}",
        CHOICE.get().copied().unwrap_or("none")
    )];
    if let Some(c) = card() {
        let s = sound();
        let load = |f: fn(&Sound) -> u64| s.map_or(0, |s| f(s));
        let g = c.inner.lock();
        let (fmt, running, underruns) =
            g.hda
                .stream
                .as_ref()
                .map_or((String::from("none"), false, 0), |s| {
                    (
                        format!(
                            "{}Hz/{}bit/{}ch",
                            s.format.rate, s.format.bits, s.format.channels
                        ),
                        s.running,
                        s.underruns,
                    )
                });
        v.push(format!(
            "audio hda {} codec={} path={} irq=\"{}\" interrupts={} stream={} running={} volume={} pcm={} bytes={} streams={} underruns={} verbs={} verb_timeouts={}",
            c.slot,
            c.codec,
            c.path,
            c.irq.lock().clone(),
            c.interrupts.load(Ordering::Relaxed),
            fmt,
            running,
            load(|s| u64::from(s.volume.load(Ordering::Relaxed) & 0xff)),
            load(|s| u64::from(s.pcm.load(Ordering::Relaxed) & 0xff)),
            load(|s| s.bytes.load(Ordering::Relaxed)),
            load(|s| s.streams.load(Ordering::Relaxed)),
            g.underruns + underruns,
            g.hda.verbs,
            g.hda.verb_timeouts,
        ));
    }
    v.extend(crate::rump::audio::report());
    v
}

/// The native driver as a [`Backend`].
impl Backend for Card {
    fn name(&self) -> &'static str {
        "native"
    }

    fn caps(&self) -> Option<Caps> {
        let g = self.inner.lock();
        let out = g.hda.output.as_ref()?;
        Some(Caps {
            pcm: out.pcm,
            stereo: out.stereo,
        })
    }

    fn stream_format(&self) -> Option<Format> {
        self.inner.lock().hda.stream.as_ref().map(|s| s.format)
    }

    fn open_stream(&self, fmt: Format, fragment: usize, fragments: usize) -> KResult<()> {
        let mut g = self.inner.lock();
        g.close_stream();
        g.hda.open_stream(fmt, fragment, fragments).map_err(|e| {
            log::warn!("sound: native: cannot open a {fmt:?} stream: {e:?}");
            Errno::EIO
        })?;
        g.stop_at = None;
        Ok(())
    }

    fn close_stream(&self) {
        self.inner.lock().close_stream();
    }

    fn status(&self) -> Option<Status> {
        let mut g = self.inner.lock();
        service(&mut g);
        let st = g.hda.stream.as_ref()?;
        Some(Status {
            space: st.space(),
            queued: st.queued(),
            played: st.played,
            written: st.written,
            running: st.running,
            ring: st.ring_bytes(),
        })
    }

    fn poll_status(&self) -> Option<Status> {
        let g = self.inner.lock();
        let st = g.hda.stream.as_ref()?;
        Some(Status {
            space: st.space(),
            queued: st.queued(),
            played: st.played,
            written: st.written,
            running: st.running,
            ring: st.ring_bytes(),
        })
    }

    fn queue(&self, data: &[u8]) -> KResult<usize> {
        Ok(self.inner.lock().hda.write(data))
    }

    fn start(&self) {
        self.inner.lock().hda.start();
        self.kick();
    }

    fn cancel_drain(&self) {
        let mut g = self.inner.lock();
        g.stop_at = None;
        if let Some(st) = g.hda.stream.as_mut() {
            st.draining = false;
        }
    }

    fn begin_drain(&self) -> KResult<bool> {
        {
            let mut g = self.inner.lock();
            let Some(st) = g.hda.stream.as_ref() else {
                return Ok(false);
            };
            if st.queued() == 0 && !st.running {
                return Ok(false);
            }
            let tail = (2 * st.fragment).max((st.format.bytes_per_second() / 10) as usize);
            let end = st.written + tail as u64;
            g.stop_at = Some(end);
            if let Some(st) = g.hda.stream.as_mut() {
                st.draining = true;
            }
            g.hda.start();
        }
        self.kick();
        Ok(true)
    }

    fn set_volume(&self, left: u8, right: u8) -> KResult<()> {
        self.inner.lock().hda.set_volume(left, right).map_err(|e| {
            log::warn!("sound: native volume: {e:?}");
            Errno::EIO
        })
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
            Some(crate::time::now_ns() + 100_000_000),
        );
        !intr
    }

    fn wq(&self) -> &WaitQueue {
        &self.wq
    }

    fn fault_stop_dma(&self) -> usize {
        adros_hda::fault_stop_output_dma(&self.regs)
    }
}
