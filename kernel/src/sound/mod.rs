//! Sound: the native Intel HD Audio driver (`adros-hda`) behind OSS devices ([`oss`]:
//! `/dev/dsp`, `/dev/audio`, `/dev/mixer`), chosen with `audio.driver=native|rump` on the
//! kernel command line.
//!
//! `audio.driver=rump` (NetBSD's hdaudio in the rump kernel) is not built yet: the kernel
//! says so in a log line and leaves the controller alone (no `/dev/dsp`). Without an HD
//! Audio controller on the PCI bus (`cargo xtask run` without `--audio`) there are no sound
//! devices.
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
use core::sync::atomic::{AtomicU64, Ordering};

use adros_hal::Event;
use adros_hda::Hda;

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
    /// OSS volumes (left | right << 8, 0–100 each) for VOLUME and PCM.
    pub volume: u32,
    pub pcm: u32,
    /// Bytes of user data played since boot, streams opened.
    pub bytes: u64,
    pub streams: u64,
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
    /// One open of `/dev/dsp` or `/dev/audio` at a time.
    pub busy: core::sync::atomic::AtomicBool,
}

static CARD: spin::Once<Arc<Card>> = spin::Once::new();
static CHOICE: spin::Once<&'static str> = spin::Once::new();

pub fn card() -> Option<&'static Arc<Card>> {
    CARD.get()
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
            CHOICE.call_once(|| "rump (not available)");
            log::warn!(
                "sound: audio.driver=rump: the rump audio stack (NetBSD hdaudio) is not available in this kernel; HD Audio controller at {slot} left unused"
            );
            return;
        }
        other => log::warn!("sound: audio.driver={other}: unknown (native|rump); using native"),
    }
    match bring_up(d) {
        Ok(c) => {
            CHOICE.call_once(|| "native");
            let c = CARD.call_once(|| c);
            *c.irq.lock() = attach_irq(d);
            oss::register();
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
            volume: 100 | (100 << 8),
            pcm: 100 | (100 << 8),
            bytes: 0,
            streams: 0,
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
        busy: core::sync::atomic::AtomicBool::new(false),
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
            g.volume & 0xff,
            g.pcm & 0xff,
            g.bytes,
            g.streams,
            g.underruns + underruns,
            g.hda.verbs,
            g.hda.verb_timeouts,
        ));
    }
    v
}
