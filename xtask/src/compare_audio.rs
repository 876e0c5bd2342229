//! `cargo xtask compare audio`: the same WAV played on AdrOS's two sound stacks — the
//! native HD Audio driver and NetBSD's hdaudio/hdafg/audio in the rump kernel
//! (`audio.driver=rump`) — each boot captured through QEMU's `wav` audiodev.
//!
//! The guest makes the WAV with `t_audio wav` (cosines, 440 Hz left and 660 Hz right, the
//! same as `tests/tests/s14_audio.rs`) and plays it with `play -t`, reading `/proc/uptime`
//! and `/proc/stat` around it. Per stack: the capture's normalized correlation with the
//! analytic signal (per channel, at the best fractional offset), its length against the
//! source, the time to the first sample (from `play`'s first write() until
//! SNDCTL_DSP_GETODELAY shows a sample played, polled each millisecond), the silence at
//! the capture's start (QEMU opens the voice when the stream starts), underruns (runs of ≥ 3 silent frames inside the signal), the wall
//! time of `play` and the CPU time (all CPUs, busy ticks of `/proc/stat`) it cost.

use std::fmt::Write as _;
use std::time::Duration;

use crate::build;
use crate::compare::CompareArgs;
use crate::qemu::{self, Machine};
use crate::util::{Result, spinner, target_dir};

const RATE: u32 = 44100;
const LEFT_HZ: f64 = 440.0;
const RIGHT_HZ: f64 = 660.0;

struct Capture {
    rate: u32,
    ch: Vec<Vec<f64>>,
}

fn parse_wav(b: &[u8]) -> Result<Capture> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(format!("not a WAV file ({} bytes)", b.len()));
    }
    let (mut pos, mut fmt, mut data) = (12usize, None, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let size = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= b.len() {
            let ch = u16::from_le_bytes([b[body + 2], b[body + 3]]);
            let rate = u32::from_le_bytes([b[body + 4], b[body + 5], b[body + 6], b[body + 7]]);
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

fn silent(c: &Capture, i: usize) -> bool {
    c.ch.iter().all(|x| x[i].abs() <= 2.0 / 32768.0)
}

fn corr(x: &[f64], start: usize, n: usize, lag: f64, f: f64, rate: u32) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (i, &v) in x
        .iter()
        .enumerate()
        .take((start + n).min(x.len()))
        .skip(start)
    {
        let y = (2.0 * std::f64::consts::PI * f * (i as f64 - lag) / f64::from(rate)).cos();
        xy += v * y;
        xx += v * v;
        yy += y * y;
    }
    if xx == 0.0 || yy == 0.0 {
        0.0
    } else {
        xy / (xx * yy).sqrt()
    }
}

#[derive(Default, Clone)]
struct Figures {
    corr_left: f64,
    corr_right: f64,
    length_ratio: f64,
    /// From `play -t`: its first write() to SNDCTL_DSP_GETODELAY showing a sample played.
    first_sample_ms: f64,
    /// Silence at the capture's start (QEMU opens the voice when the stream starts).
    leading_silence_ms: f64,
    underruns: usize,
    play_wall_ms: f64,
    play_cpu_ms: f64,
}

fn analyse(c: &Capture, ms: u32) -> Result<Figures> {
    let n = c.ch[0].len();
    let first = (0..n)
        .find(|&i| !silent(c, i))
        .ok_or("the capture is silent")?;
    let last = (0..n).rev().find(|&i| !silent(c, i)).unwrap_or(first) + 1;
    let want = (u64::from(ms) * u64::from(c.rate) / 1000) as usize;
    let right = c.ch.len().min(2) - 1;
    let probe = 2048.min(last - first);
    let mut best = (f64::MIN, first as f64);
    let mut lag = first as f64 - 4.0;
    while lag <= first as f64 + 4.0 {
        let q = corr(&c.ch[0], first, probe, lag, LEFT_HZ, c.rate)
            + corr(&c.ch[right], first, probe, lag, RIGHT_HZ, c.rate);
        if q > best.0 {
            best = (q, lag);
        }
        lag += 0.02;
    }
    let (mut underruns, mut run) = (0, 0);
    for i in first..last {
        if silent(c, i) {
            run += 1;
            if run == 3 {
                underruns += 1;
            }
        } else {
            run = 0;
        }
    }
    let len = want.min(last - first);
    Ok(Figures {
        corr_left: corr(&c.ch[0], first, len, best.1, LEFT_HZ, c.rate),
        corr_right: corr(&c.ch[right], first, len, best.1, RIGHT_HZ, c.rate),
        length_ratio: (last - first) as f64 / want as f64,
        first_sample_ms: f64::NAN,
        leading_silence_ms: first as f64 * 1000.0 / f64::from(c.rate),
        underruns,
        ..Figures::default()
    })
}

/// busy and idle ticks (1/100 s) of the `cpu` line of `/proc/stat`.
fn cpu_line(l: &str) -> Option<(f64, f64)> {
    let f: Vec<f64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    Some((*f.first()?, *f.get(3)?))
}

pub fn compare(a: &CompareArgs) -> Result<i32> {
    if a.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let ms = 3000u32;
    crate::deps::ensure(true)?;
    let built = build::build(&a.build)?;
    let stacks: Vec<&str> = if built.rump_linked {
        vec!["native", "rump"]
    } else {
        eprintln!(
            "xtask compare: the kernel was built without NetBSD's rump components (no NetBSD source): only the native stack is measured"
        );
        vec!["native"]
    };
    let dir = target_dir().join("bench/compare-audio");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let t = "/usr/libexec/adros-tests/t_audio";
    let cmd = format!(
        "for i in $(seq 1 120); do [ -e /dev/dsp ] && break; sleep 0.25; done; \
         {t} wav /tmp/s.wav {RATE} 2 16 {ms} {LEFT_HZ} {RIGHT_HZ} >/dev/null; \
         u0=$(cat /proc/uptime); s0=$(head -1 /proc/stat); play -t /tmp/s.wav 2>/tmp/play.err >/dev/null; \
         echo PLAY_RC $?; u1=$(cat /proc/uptime); s1=$(head -1 /proc/stat); cat /tmp/play.err; \
         echo UP0 $u0; echo UP1 $u1; echo STAT0 $s0; echo STAT1 $s1"
    );
    let hex: String = cmd.bytes().map(|b| format!("{b:02x}")).collect();
    let mut results: Vec<(&str, Figures)> = Vec::new();
    for run in 1..=a.runs {
        for &stack in &stacks {
            let label = format!("run {run}/{}: {stack}", a.runs);
            let wav = dir.join(format!("{stack}-{run}.wav"));
            let _ = std::fs::remove_file(&wav);
            let iso = dir.join("compare.iso");
            build::make_iso(
                &built.kernel,
                &built.symbols,
                &format!(
                    "{} loglevel=3 audio.driver={stack} adros.exec={hex}",
                    build::DEFAULT_CMDLINE
                ),
                &iso,
            )?;
            let mut m = Machine::new(&iso);
            m.smp = a.smp;
            m.audio = Some(format!("wav:{}", wav.display()));
            let pb = spinner(format!("{label}: booting"));
            let out = qemu::run_headless(
                &m,
                Duration::from_secs(600),
                |_| {},
                Some(&|s: &str| {
                    s.contains("@@ADROS-EXEC-EXIT ")
                        && s.rsplit("@@ADROS-EXEC-EXIT ")
                            .next()
                            .is_some_and(|t| t.contains("@@"))
                }),
            );
            pb.finish_and_clear();
            let out = out?;
            let serial = out.serial.replace('\r', "");
            let _ = std::fs::write(dir.join(format!("{stack}-{run}.log")), &serial);
            let find = |k: &str| {
                serial
                    .lines()
                    .find(|l| l.starts_with(k))
                    .map(|l| l[k.len()..].trim().to_string())
            };
            if find("PLAY_RC ").as_deref() != Some("0") {
                return Err(format!(
                    "{label}: play failed (serial log in {})",
                    dir.display()
                ));
            }
            let up = |k: &str| -> Option<f64> { find(k)?.split_whitespace().next()?.parse().ok() };
            let bytes = std::fs::read(&wav).map_err(|e| format!("{}: {e}", wav.display()))?;
            let mut f = analyse(&parse_wav(&bytes)?, ms).map_err(|e| format!("{label}: {e}"))?;
            f.first_sample_ms = serial
                .split("play: first sample played ")
                .nth(1)
                .and_then(|t| t.split(" ms").next())
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    format!(
                        "{label}: play -t reported no first sample (serial log in {})",
                        dir.display()
                    )
                })?;
            if let (Some(u0), Some(u1)) = (up("UP0 "), up("UP1 ")) {
                f.play_wall_ms = (u1 - u0) * 1000.0;
            }
            if let (Some((b0, _)), Some((b1, _))) = (
                find("STAT0 ").as_deref().and_then(cpu_line),
                find("STAT1 ").as_deref().and_then(cpu_line),
            ) {
                f.play_cpu_ms = (b1 - b0) * 10.0;
            }
            eprintln!(
                "xtask compare: {label}: corr {:.6}/{:.6}, length {:.4}, first sample {:.1} ms, leading silence {:.0} ms, {} underruns, play {:.0} ms wall, {:.0} ms CPU",
                f.corr_left,
                f.corr_right,
                f.length_ratio,
                f.first_sample_ms,
                f.leading_silence_ms,
                f.underruns,
                f.play_wall_ms,
                f.play_cpu_ms
            );
            results.push((stack, f));
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n`play` of a {:.1} s 44.1 kHz 16-bit stereo WAV (440/660 Hz), captured by QEMU's wav audiodev; {} runs per stack, -smp {} (median)\n",
        f64::from(ms) / 1000.0,
        a.runs,
        a.smp
    );
    let _ = writeln!(t, "| figure | native | rump (NetBSD hdaudio) |");
    let _ = writeln!(t, "|---|---|---|");
    type Get = fn(&Figures) -> f64;
    let rows: [(&str, Get, usize); 8] = [
        ("correlation, left", |f| f.corr_left, 6),
        ("correlation, right", |f| f.corr_right, 6),
        ("length / source", |f| f.length_ratio, 4),
        (
            "time to first sample (ms, first write → GETODELAY shows it played)",
            |f| f.first_sample_ms,
            1,
        ),
        (
            "leading silence in the capture (ms)",
            |f| f.leading_silence_ms,
            0,
        ),
        ("underruns (gaps ≥ 3 frames)", |f| f.underruns as f64, 0),
        ("play wall time (ms)", |f| f.play_wall_ms, 0),
        ("CPU time during play (ms, all CPUs)", |f| f.play_cpu_ms, 0),
    ];
    for (name, get, prec) in rows {
        let cell = |s: &str| {
            let mut v: Vec<f64> = results
                .iter()
                .filter(|(st, _)| *st == s)
                .map(|(_, f)| get(f))
                .collect();
            if v.is_empty() {
                return "—".to_string();
            }
            v.sort_by(f64::total_cmp);
            format!("{:.*}", prec, v[v.len() / 2])
        };
        let _ = writeln!(t, "| {name} | {} | {} |", cell("native"), cell("rump"));
    }
    println!("{t}");
    eprintln!(
        "xtask compare: captures and serial logs in {}",
        dir.display()
    );
    Ok(0)
}
