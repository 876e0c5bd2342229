//! s14: sound on both stacks — the native Intel HD Audio driver (`drivers/hda`,
//! `kernel/src/sound`) and NetBSD's hdaudio/hdafg/audio in the rump kernel
//! (`audio.driver=rump`, `kernel/src/rump/audio.rs`) — checked by what QEMU plays: the
//! machine has `intel-hda` + `hda-duplex` on a `wav` audiodev, so everything the guest
//! plays lands in a WAV file the test parses. The rump tests skip (counted as skipped)
//! when the kernel has no rump components.
//!
//! One boot per stack plays every signal in turn (the capture concatenates them; each player drains
//! with a tail of silence, so signals are told apart by silent gaps), then runs the ioctl
//! checks and the bad-header cases. The capture is at QEMU's default 44.1 kHz 16-bit
//! stereo; QEMU resamples streams at other rates. The signals are cosines, so the
//! reference is computed analytically at the capture's rate, at the fractional offset
//! that fits best (the resampling delay is a fraction of a sample): no resampling error
//! on our side. Assertions are about content, not timing: normalized correlation ≥ 0.99
//! per channel, left and right not swapped, length within 2 %, no run of silence inside
//! a signal, and levels for the mixer.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use adros_tests::{Boot, banner, rump_linked, skip, test_dir};

const T: &str = "/usr/libexec/adros-tests/t_audio";

/// The stall test's fault: the output DMA stops after this much of a stream (longer than
/// any other stream of the script), and the tone it interrupts.
const STALL_AFTER_MS: u32 = 4000;
const STALL_TONE_MS: u32 = 10000;

/// The guest script: the signals in order (see [`expected`]), then the checks, then the
/// stalled stream (`audio.fault=stall:`).
fn script(stack: &str) -> String {
    let wait = if stack == "rump" {
        // NetBSD's audio0 attaches after rump_init, in a thread: wait for /dev/dsp.
        "for i in $(seq 1 120); do [ -e /dev/dsp ] && break; sleep 0.25; done; "
    } else {
        ""
    };
    let body = [
        format!("{T} tone 44100 2 16 2000 440 660"),
        format!("{T} tone 48000 2 16 2000 440 660"),
        format!("{T} tone 8000 1 8 2000 440 440"),
        format!("{T} ulaw 1000 500"),
        format!("{T} wav /tmp/t.wav 44100 2 16 1000 550 770 && play -t /tmp/t.wav"),
        format!("{T} mixer 50 && {T} tone 44100 2 16 500 440 660"),
        format!("{T} mixer 0 && {T} tone 44100 2 16 500 440 660"),
        format!("{T} mixer 100 && {T} tone 44100 2 16 300 880 990"),
        format!("{T} wav /tmp/long.wav 44100 2 16 500 330 495 long; play /tmp/long.wav; echo play_long=$?"),
        format!(
            "for k in zeroch zerohz nonpcm; do {T} wav /tmp/$k.wav 44100 2 16 100 440 660 $k; play /tmp/$k.wav; echo play_$k=$?; done"
        ),
        "play /nonexistent.wav; echo play_missing=$?".to_string(),
        // The highest rate: QEMU's codec has 96 kHz; NetBSD's audio layer converts any
        // rate up to the OSS layer's 192 kHz limit itself.
        format!("{T} ioctls {}", if stack == "rump" { 192000 } else { 96000 }),
        "grep audio /proc/drivers".to_string(),
        format!("{T} stall {STALL_TONE_MS}; echo stall_rc=$?"),
    ]
    .join("; ");
    format!("{wait}{body}")
}

/// A signal the script plays: duration and the cosine frequency of each side.
struct Signal {
    what: &'static str,
    ms: u32,
    left: f64,
    right: f64,
}

/// The audible signals in capture order (the muted one leaves only silence).
fn expected() -> [Signal; 7] {
    let s = |what, ms, left, right| Signal {
        what,
        ms,
        left,
        right,
    };
    [
        s("44.1 kHz 16-bit stereo", 2000, 440.0, 660.0),
        s("48 kHz 16-bit stereo", 2000, 440.0, 660.0),
        s("8 kHz 8-bit mono", 2000, 440.0, 440.0),
        s("/dev/audio µ-law", 1000, 500.0, 500.0),
        s("play t.wav", 1000, 550.0, 770.0),
        s("volume 50", 500, 440.0, 660.0),
        s("after mute: volume 100", 300, 880.0, 990.0),
    ]
}

struct Capture {
    rate: u32,
    /// Samples per channel, scaled to -1..1.
    ch: Vec<Vec<f64>>,
}

/// A 16-bit PCM WAV as QEMU's wav backend writes it (data size 0 or too large: to the end).
fn parse_wav(b: &[u8]) -> Result<Capture, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(format!("not a WAV file ({} bytes)", b.len()));
    }
    let (mut pos, mut fmt, mut data) = (12usize, None, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let size = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= b.len() {
            let ch = u16::from_le_bytes([b[body + 2], b[body + 3]]);
            let rate = u32::from_le_bytes(b[body + 4..body + 8].try_into().unwrap());
            let bits = u16::from_le_bytes([b[body + 14], b[body + 15]]);
            fmt = Some((ch, rate, bits));
        } else if id == b"data" {
            let end = if size == 0 {
                b.len()
            } else {
                (body + size).min(b.len())
            };
            data = Some(&b[body..end]);
            break;
        }
        pos = body + size + (size & 1);
    }
    let (ch, rate, bits) = fmt.ok_or("no fmt chunk")?;
    let data = data.ok_or("no data chunk")?;
    if bits != 16 || ch == 0 {
        return Err(format!("capture is {ch} ch {bits}-bit: expected 16-bit"));
    }
    let ch = usize::from(ch);
    let mut out = vec![Vec::new(); ch];
    for (i, s) in data.chunks_exact(2).enumerate() {
        out[i % ch].push(f64::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0);
    }
    let n = out.iter().map(Vec::len).min().unwrap_or(0);
    out.iter_mut().for_each(|c| c.truncate(n));
    Ok(Capture { rate, ch: out })
}

/// "Silent" frame: every channel within ±2 LSB.
fn silent(c: &Capture, i: usize) -> bool {
    c.ch.iter().all(|x| x[i].abs() <= 2.0 / 32768.0)
}

/// Non-silent stretches separated by at least `gap` silent frames: (start, end) frames.
fn segments(c: &Capture, gap: usize) -> Vec<(usize, usize)> {
    let n = c.ch[0].len();
    let mut v: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        if silent(c, i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut last = i;
        let mut quiet = 0;
        while i < n && quiet < gap {
            if silent(c, i) {
                quiet += 1;
            } else {
                quiet = 0;
                last = i;
            }
            i += 1;
        }
        v.push((start, last + 1));
    }
    v
}

/// Normalized correlation of channel `x` from frame `at` (fractional start `lag`) with a
/// cosine of `f` Hz over `n` frames.
fn corr(x: &[f64], start: usize, n: usize, lag: f64, f: f64, rate: u32) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    let end = (start + n).min(x.len());
    for (i, &v) in x.iter().enumerate().take(end).skip(start) {
        let y = (2.0 * std::f64::consts::PI * f * (i as f64 - lag) / f64::from(rate)).cos();
        xy += v * y;
        xx += v * v;
        yy += y * y;
    }
    if xx == 0.0 || yy == 0.0 {
        return 0.0;
    }
    xy / (xx * yy).sqrt()
}

/// What one signal looks like in the capture.
#[derive(Debug)]
struct Measured {
    left: f64,
    right: f64,
    /// Left against the right reference (≈1 if swapped, for different frequencies).
    cross: f64,
    length_ratio: f64,
    /// Longest run of silent frames inside the signal.
    longest_gap: usize,
    rms: f64,
}

fn measure(c: &Capture, seg: (usize, usize), s: &Signal) -> Measured {
    let (start, end) = seg;
    let want = (u64::from(s.ms) * u64::from(c.rate) / 1000) as usize;
    let right_ch = c.ch.len().min(2) - 1;
    // The fractional offset of the signal's first sample: coarse search on its beginning.
    let probe = 2048.min(end - start);
    let mut best = (f64::MIN, start as f64);
    let mut lag = start as f64 - 4.0;
    while lag <= start as f64 + 4.0 {
        let q = corr(&c.ch[0], start, probe, lag, s.left, c.rate)
            + corr(&c.ch[right_ch], start, probe, lag, s.right, c.rate);
        if q > best.0 {
            best = (q, lag);
        }
        lag += 0.02;
    }
    let lag = best.1;
    let n = want.min(end - start);
    let (mut gap, mut run) = (0, 0);
    for i in start..end {
        if silent(c, i) {
            run += 1;
            gap = gap.max(run);
        } else {
            run = 0;
        }
    }
    let rms =
        (c.ch[0][start..end].iter().map(|v| v * v).sum::<f64>() / (end - start) as f64).sqrt();
    Measured {
        left: corr(&c.ch[0], start, n, lag, s.left, c.rate),
        right: corr(&c.ch[right_ch], start, n, lag, s.right, c.rate),
        cross: corr(&c.ch[0], start, n, lag, s.right, c.rate),
        length_ratio: (end - start) as f64 / want as f64,
        longest_gap: gap,
        rms,
    }
}

struct Run {
    out: String,
    status: i32,
    capture: Result<Capture, String>,
}

/// The one boot per stack ("native" or "rump"), shared by the tests of this file.
fn run(stack: &'static str) -> &'static Run {
    static NATIVE: OnceLock<Run> = OnceLock::new();
    static RUMP: OnceLock<Run> = OnceLock::new();
    // The two boots never run at once: two TCG guests on a small host starve the rump
    // stack's interrupt and worker threads into underruns (see docs/audio.md).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let cell = if stack == "rump" { &RUMP } else { &NATIVE };
    cell.get_or_init(|| {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = test_dir().join("audio");
        std::fs::create_dir_all(&dir).expect("creating the capture directory");
        let (name, wav): (&str, PathBuf) = if stack == "rump" {
            ("s14_audio_rump", dir.join("s14_capture_rump.wav"))
        } else {
            ("s14_audio", dir.join("s14_capture.wav"))
        };
        let _ = std::fs::remove_file(&wav);
        let hex: String = script(stack).bytes().map(|b| format!("{b:02x}")).collect();
        let t = Boot::new(name)
            .audio(&format!("wav:{}", wav.display()))
            .args(&format!(
                "loglevel=4 audio.driver={stack} audio.fault=stall:{STALL_AFTER_MS} adros.exec={hex}"
            ))
            .timeout(Duration::from_secs(400))
            .run();
        if let Some(report) = banner::crash_report(t.serial()) {
            t.fail(&format!("the kernel crashed:\n{report}"));
        }
        let (out, status) = t.exec_result();
        let capture = std::fs::read(&wav)
            .map_err(|e| format!("{}: {e}", wav.display()))
            .and_then(|b| parse_wav(&b));
        Run {
            out,
            status,
            capture,
        }
    })
}

fn capture(stack: &'static str) -> &'static Capture {
    let r = run(stack);
    match &r.capture {
        Ok(c) => c,
        Err(e) => panic!("no capture: {e}\nguest output:\n{}", r.out),
    }
}

/// The stalled tone's frequencies (`t_audio stall`).
const STALL_HZ: (f64, f64) = (1000.0, 1500.0);

/// Whether the segment starts like the stalled tone (1000/1500 Hz).
fn is_stall_tone(c: &Capture, seg: (usize, usize)) -> bool {
    let n = 2048.min(seg.1 - seg.0);
    let right = c.ch.len().min(2) - 1;
    (0..200).any(|k| {
        let lag = seg.0 as f64 - 2.0 + f64::from(k) * 0.02;
        corr(&c.ch[0], seg.0, n, lag, STALL_HZ.0, c.rate) > 0.9
            && corr(&c.ch[right], seg.0, n, lag, STALL_HZ.1, c.rate) > 0.9
    })
}

/// The signals' segments; fails unless there are exactly as many as signals played before
/// the stalled tone (those of [`expected`] and the truncated long.wav), then the stalled
/// tone, as one segment (if it had gaps before its DMA stopped, the pieces are joined: its
/// test only looks at how long it played).
fn located(stack: &'static str) -> Vec<(usize, usize)> {
    let c = capture(stack);
    // 20 ms of silence separates signals (each drain plays ≥ 100 ms of it, of which QEMU
    // keeps at least half when the stream stops); a gap inside a signal fails its test.
    let segs = segments(c, c.rate as usize / 50);
    let n = expected().len() + 1;
    let mut v: Vec<(usize, usize)> = segs.iter().take(n).copied().collect();
    let rest = &segs[n.min(segs.len())..];
    let ok = v.len() == n
        && rest.first().is_some_and(|&s| is_stall_tone(c, s))
        && v.iter().all(|&s| !is_stall_tone(c, s));
    assert!(
        ok,
        "signals found in the capture (frames at {} Hz): {segs:?}; expected {n} signals, then the stalled tone\nguest output:\n{}",
        c.rate,
        run(stack).out
    );
    v.push((rest[0].0, rest[rest.len() - 1].1));
    v
}

fn check_signal(stack: &'static str, i: usize) -> Measured {
    let c = capture(stack);
    let seg = located(stack)[i];
    let s = &expected()[i];
    let m = measure(c, seg, s);
    eprintln!(
        "{stack}: {}: {m:?} (frames {seg:?} at {} Hz)",
        s.what, c.rate
    );
    assert!(m.left >= 0.99, "{}: left correlation {:.4}", s.what, m.left);
    assert!(
        m.right >= 0.99,
        "{}: right correlation {:.4}",
        s.what,
        m.right
    );
    if s.left != s.right {
        assert!(
            m.cross.abs() < 0.5,
            "{}: left matches the right channel's signal ({:.3}): swapped",
            s.what,
            m.cross
        );
    }
    assert!(
        (0.98..=1.02).contains(&m.length_ratio),
        "{}: length {:.4} of the expected",
        s.what,
        m.length_ratio
    );
    assert!(
        m.longest_gap < 3,
        "{}: a gap of {} silent frames inside",
        s.what,
        m.longest_gap
    );
    m
}

/// The rump stack's tests skip (and say so) without NetBSD's components.
fn rump_skipped(test: &str) -> bool {
    if rump_linked() {
        return false;
    }
    skip(
        test,
        "the kernel has no NetBSD rump components (build with NetBSD sources)",
    );
    true
}

fn script_ran_and_checks_passed(stack: &'static str) {
    let r = run(stack);
    assert!(
        r.out.contains("SUMMARY: audio") && !r.out.contains("FAIL:"),
        "ioctl checks:\n{}",
        r.out
    );
    assert!(
        r.out.contains(&format!("audio.driver={stack}\n")),
        "{}",
        r.out
    );
    let line = if stack == "rump" {
        "audio rump "
    } else {
        "audio hda "
    };
    assert!(r.out.contains(line), "{}", r.out);
    let _ = r.status;
}

fn plays_a_wav_file(stack: &'static str) {
    check_signal(stack, 4);
    let out = &run(stack).out;
    assert!(
        out.contains("play: /tmp/t.wav: 44100 Hz, 16-bit, 2 channel(s)"),
        "{out}"
    );
    // `play -t` writes without blocking (poll for room) and watches SNDCTL_DSP_GETODELAY
    // until the device has played a first sample; the capture above shows the writes whole.
    let first = out
        .split("play: first sample played ")
        .nth(1)
        .and_then(|t| t.split(" ms").next())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let first = first.unwrap_or_else(|| panic!("play -t reported no first sample: {out}"));
    assert!(first >= 0.0, "{out}");
    eprintln!("{stack}: play -t: first sample played {first:.1} ms after the first write");
}

fn volume_50_lowers_and_0_mutes(stack: &'static str) {
    let full = check_signal(stack, 0);
    let half = check_signal(stack, 5);
    let ratio = half.rms / full.rms;
    eprintln!("{stack}: volume 50 / volume 100 level: {ratio:.3}");
    assert!(
        (0.3..0.7).contains(&ratio),
        "volume 50 level ratio {ratio:.3}"
    );
    // The muted 0.5 s tone left only silence between the volume-50 signal and the next.
    let c = capture(stack);
    let segs = located(stack);
    let silence = (segs[6].0 - segs[5].1) as f64 / f64::from(c.rate);
    eprintln!("{stack}: silence where the muted tone played: {silence:.3} s");
    assert!(
        silence >= 0.45,
        "only {silence:.3} s of silence where a muted 0.5 s tone played"
    );
    check_signal(stack, 6);
}

fn lying_wav_headers(stack: &'static str) {
    let r = run(stack);
    let out = &r.out;
    assert!(out.contains("play_long=0"), "{out}");
    assert!(out.contains("warning: data chunk says"), "{out}");
    for k in ["zeroch", "zerohz", "nonpcm"] {
        assert!(out.contains(&format!("play_{k}=2")), "{k}: {out}");
    }
    assert!(
        out.contains("zero channels") && out.contains("sample rate 0 Hz"),
        "{out}"
    );
    assert!(out.contains("is not PCM"), "{out}");
    assert!(out.contains("play_missing=1"), "{out}");
    // The truncated file played its 0.5 s: the signal after those of expected().
    let c = capture(stack);
    let segs = located(stack);
    let m = measure(
        c,
        segs[expected().len()],
        &Signal {
            what: "long.wav",
            ms: 500,
            left: 330.0,
            right: 495.0,
        },
    );
    eprintln!("{stack}: lying long.wav: {m:?}");
    assert!(m.left >= 0.99 && m.right >= 0.99, "{m:?}");
    assert!((0.98..=1.02).contains(&m.length_ratio), "{m:?}");
}

/// `audio.fault=stall:4000`: the controller's output DMA stops under a 10 s tone after
/// 4 s; the writer gets EIO within seconds (not a hang) and close returns.
fn stalled_stream_gives_eio(stack: &'static str) {
    let r = run(stack);
    let out = &r.out;
    let line = out
        .lines()
        .find(|l| l.starts_with("stall: "))
        .unwrap_or_else(|| panic!("no stall line:\n{out}"));
    eprintln!("{stack}: {line}");
    let num = |key: &str| -> f64 {
        line.split(key)
            .nth(1)
            .and_then(|s| s.split([' ', ',']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    assert_eq!(num("errno="), 5.0, "the write must fail with EIO: {line}");
    assert!(out.contains("stall_rc=0"), "{out}");
    let waited = num("waited_ms=");
    let closed = num("close_ms=");
    assert!(
        waited < 10_000.0,
        "the writer waited {waited} ms for EIO: {line}"
    );
    assert!(closed < 10_000.0, "close took {closed} ms: {line}");
    let c = capture(stack);
    let segs = located(stack);
    let stalled = segs[expected().len() + 1];
    let played = (stalled.1 - stalled.0) as f64 / f64::from(c.rate);
    eprintln!("{stack}: the stalled tone played {played:.2} s before the DMA stopped");
    assert!(
        played < f64::from(STALL_TONE_MS) / 1000.0 * 0.8,
        "the stalled tone played {played:.2} s: the fault did not stop the DMA"
    );
}

#[test]
fn s14_audio_the_guest_script_ran_and_its_checks_passed() {
    script_ran_and_checks_passed("native");
}

#[test]
fn s14_audio_44k_stereo_16bit_comes_back_with_correlation_099() {
    check_signal("native", 0);
}

#[test]
fn s14_audio_48k_stereo_16bit_comes_back_with_correlation_099() {
    check_signal("native", 1);
}

#[test]
fn s14_audio_8k_mono_8bit_comes_back_with_correlation_099() {
    check_signal("native", 2);
}

#[test]
fn s14_audio_dev_audio_ulaw_comes_back_with_correlation_099() {
    check_signal("native", 3);
}

#[test]
fn s14_audio_play_plays_a_wav_file() {
    plays_a_wav_file("native");
}

#[test]
fn s14_audio_volume_50_lowers_the_level_and_0_mutes() {
    volume_50_lowers_and_0_mutes("native");
}

#[test]
fn s14_audio_lying_wav_headers_give_errors_or_play_what_is_there() {
    lying_wav_headers("native");
}

#[test]
fn s14_audio_a_stalled_stream_gives_the_writer_eio_within_seconds() {
    stalled_stream_gives_eio("native");
}

#[test]
fn s14_audio_rump_the_guest_script_ran_and_its_checks_passed() {
    if rump_skipped("s14_audio_rump_the_guest_script_ran_and_its_checks_passed") {
        return;
    }
    script_ran_and_checks_passed("rump");
    let out = &run("rump").out;
    assert!(
        out.contains("stack=rump driver=\"hdaudio"),
        "/proc/drivers does not show the controller owned by the rump stack: {out}"
    );
}

#[test]
fn s14_audio_rump_44k_stereo_16bit_comes_back_with_correlation_099() {
    if rump_skipped("s14_audio_rump_44k_stereo_16bit_comes_back_with_correlation_099") {
        return;
    }
    check_signal("rump", 0);
}

#[test]
fn s14_audio_rump_48k_stereo_16bit_comes_back_with_correlation_099() {
    if rump_skipped("s14_audio_rump_48k_stereo_16bit_comes_back_with_correlation_099") {
        return;
    }
    check_signal("rump", 1);
}

#[test]
fn s14_audio_rump_8k_mono_8bit_comes_back_with_correlation_099() {
    if rump_skipped("s14_audio_rump_8k_mono_8bit_comes_back_with_correlation_099") {
        return;
    }
    check_signal("rump", 2);
}

#[test]
fn s14_audio_rump_dev_audio_ulaw_comes_back_with_correlation_099() {
    if rump_skipped("s14_audio_rump_dev_audio_ulaw_comes_back_with_correlation_099") {
        return;
    }
    check_signal("rump", 3);
}

#[test]
fn s14_audio_rump_play_plays_a_wav_file() {
    if rump_skipped("s14_audio_rump_play_plays_a_wav_file") {
        return;
    }
    plays_a_wav_file("rump");
}

#[test]
fn s14_audio_rump_volume_50_lowers_the_level_and_0_mutes() {
    if rump_skipped("s14_audio_rump_volume_50_lowers_the_level_and_0_mutes") {
        return;
    }
    volume_50_lowers_and_0_mutes("rump");
}

#[test]
fn s14_audio_rump_lying_wav_headers_give_errors_or_play_what_is_there() {
    if rump_skipped("s14_audio_rump_lying_wav_headers_give_errors_or_play_what_is_there") {
        return;
    }
    lying_wav_headers("rump");
}

#[test]
fn s14_audio_rump_a_stalled_stream_gives_the_writer_eio_within_seconds() {
    if rump_skipped("s14_audio_rump_a_stalled_stream_gives_the_writer_eio_within_seconds") {
        return;
    }
    stalled_stream_gives_eio("rump");
}

/// Without the rump components, `audio.driver=rump` says so and leaves the controller
/// alone (with them, the s14_audio_rump_* tests cover the stack).
#[test]
fn s14_audio_driver_rump_without_rump_is_reported_unavailable_and_leaves_the_controller_alone() {
    if rump_linked() {
        skip(
            "s14_audio_driver_rump_without_rump_is_reported_unavailable_and_leaves_the_controller_alone",
            "the kernel has the rump components: audio.driver=rump works (s14_audio_rump_*)",
        );
        return;
    }
    let wav = test_dir().join("audio").join("s14_rump.wav");
    std::fs::create_dir_all(wav.parent().unwrap()).unwrap();
    let cmd = "grep -E 'audio|hda' /proc/drivers; ls /dev/dsp; echo dsp=$?";
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Boot::new("s14_audio_rump")
        .audio(&format!("wav:{}", wav.display()))
        .args(&format!("loglevel=4 audio.driver=rump adros.exec={hex}"))
        .timeout(Duration::from_secs(240))
        .run();
    if let Some(report) = banner::crash_report(t.serial()) {
        t.fail(&format!("the kernel crashed:\n{report}"));
    }
    let (out, _) = t.exec_result();
    assert!(out.contains("audio.driver=rump (not available)"), "{out}");
    assert!(
        !out.contains("driver=\"hda\""),
        "the controller was claimed: {out}"
    );
    assert!(out.contains("dsp=1"), "/dev/dsp exists: {out}");
    assert!(
        t.serial()
            .contains("the rump audio stack (NetBSD hdaudio) is not available"),
        "no log line saying so"
    );
}
