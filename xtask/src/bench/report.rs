//! Statistics, the printed table, target/bench/<suite>.json and target/bench/summary.svg
//! (hand-written SVG: one bar per figure, log scale; no plotting dependency).

use std::process::Command;

use super::{Better, BootResult, Figure, Guest};

/// One guest's samples of one figure.
#[derive(Default)]
pub struct Samples {
    pub values: Vec<f64>,
    /// (run, reason) of each boot that did not produce the figure.
    pub failures: Vec<(u32, String)>,
}

impl Samples {
    pub fn median(&self) -> Option<f64> {
        let mut v = self.values.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }
    pub fn min(&self) -> Option<f64> {
        self.values.iter().copied().reduce(f64::min)
    }
    pub fn max(&self) -> Option<f64> {
        self.values.iter().copied().reduce(f64::max)
    }
}

pub struct Row {
    pub figure: Figure,
    pub adros: Samples,
    pub linux: Samples,
}

impl Row {
    /// AdrOS median / Linux median.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.adros.median()? / self.linux.median()?).filter(|r| r.is_finite())
    }
    /// How many times worse AdrOS is (> 1) or better (< 1), whatever the figure's direction.
    pub fn cost(&self) -> Option<f64> {
        self.ratio().map(|r| {
            if self.figure.better == Better::Lower {
                r
            } else {
                1.0 / r
            }
        })
    }
}

pub fn aggregate(figures: &[Figure], results: &[(Guest, u32, BootResult)]) -> Vec<Row> {
    figures
        .iter()
        .map(|f| {
            let mut row = Row {
                figure: f.clone(),
                adros: Samples::default(),
                linux: Samples::default(),
            };
            for (g, run, r) in results {
                let s = if *g == Guest::AdrOS {
                    &mut row.adros
                } else {
                    &mut row.linux
                };
                match r.values.iter().find(|(n, _)| *n == f.name) {
                    Some((_, v)) => s.values.push(*v),
                    None => {
                        let why = r
                            .failures
                            .iter()
                            .find(|(n, _)| *n == f.name)
                            .map(|(_, w)| w.clone())
                            .unwrap_or_else(|| "no result".into());
                        s.failures.push((*run, why));
                    }
                }
            }
            row
        })
        .collect()
}

/// Machine facts recorded with every result.
pub struct Facts {
    pub date: String,
    pub cpu_model: String,
    pub host_cores: usize,
    pub qemu: String,
    pub smp: u32,
    pub mem_mib: u64,
    pub runs: u32,
    pub linux: Option<String>,
    pub adros_commit: String,
    pub command: String,
}

impl Facts {
    pub fn collect(smp: u32, mem_mib: u64, runs: u32, linux: Option<&str>, command: &str) -> Facts {
        let sh = |c: &mut Command| {
            c.output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Facts {
            date: sh(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])),
            cpu_model,
            host_cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            qemu: sh(Command::new("qemu-system-x86_64").arg("--version"))
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            smp,
            mem_mib,
            runs,
            linux: linux.map(str::to_string),
            adros_commit: sh(Command::new("git").args([
                "-C",
                &crate::util::root().display().to_string(),
                "rev-parse",
                "--short",
                "HEAD",
            ])),
            command: command.to_string(),
        }
    }
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn cell(s: &Samples) -> String {
    match (s.median(), s.min(), s.max()) {
        (Some(m), Some(lo), Some(hi)) => {
            let failed = if s.failures.is_empty() {
                String::new()
            } else {
                format!(" [{} failed]", s.failures.len())
            };
            format!("{} ({}–{}){failed}", num(m), num(lo), num(hi))
        }
        _ => "FAILED".into(),
    }
}

/// The table printed at the end (Markdown, so the README can quote it as is).
pub fn table(rows: &[Row], f: &Facts, peer: bool) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "\n`{}` — {} — {} boots of each guest, {} vCPUs, {} MiB, {} on {} ({} host cores){}\n\n",
        f.command,
        f.date,
        f.runs,
        f.smp,
        f.mem_mib,
        f.qemu,
        f.cpu_model,
        f.host_cores,
        f.linux
            .as_ref()
            .map(|l| format!("; Linux peer: Debian {l}"))
            .unwrap_or_default()
    ));
    t.push_str("| figure | unit | better | AdrOS median (min–max) | Linux median (min–max) | AdrOS/Linux | verdict |\n");
    t.push_str("|---|---|---|---|---|---|---|\n");
    let mut notes = Vec::new();
    for r in rows {
        let better = if r.figure.better == Better::Lower {
            "lower"
        } else {
            "higher"
        };
        let linux = if peer { cell(&r.linux) } else { "—".into() };
        let (ratio, verdict) = match (r.ratio(), r.cost()) {
            (Some(ra), Some(c)) => (
                format!("{ra:.2}"),
                if (0.95..=1.05).contains(&c) {
                    "on par".to_string()
                } else if c > 1.0 {
                    format!("AdrOS {c:.2}× worse")
                } else {
                    format!("AdrOS {:.2}× better", 1.0 / c)
                },
            ),
            _ => ("—".into(), "—".into()),
        };
        t.push_str(&format!(
            "| {} | {} | {better} | {} | {linux} | {ratio} | {verdict} |\n",
            r.figure.name,
            r.figure.unit,
            cell(&r.adros)
        ));
        for (g, s) in [("AdrOS", &r.adros), ("Linux", &r.linux)] {
            if let Some((_, why)) = s.failures.first() {
                notes.push(format!("- {} on {g}: {why}", r.figure.name));
            }
        }
    }
    if !notes.is_empty() {
        t.push_str("\nFailed figures (first reason per guest):\n");
        for n in notes {
            t.push_str(&n);
            t.push('\n');
        }
    }
    t
}

fn esc(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn jnum(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v}"))
        .unwrap_or_else(|| "null".into())
}

fn jsamples(s: &Samples) -> String {
    format!(
        "{{\"samples\": [{}], \"median\": {}, \"min\": {}, \"max\": {}, \"failures\": [{}]}}",
        s.values
            .iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        jnum(s.median()),
        jnum(s.min()),
        jnum(s.max()),
        s.failures
            .iter()
            .map(|(run, why)| format!("{{\"run\": {run}, \"reason\": \"{}\"}}", esc(why)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// target/bench/<suite>.json.
pub fn json(suite: &str, rows: &[&Row], f: &Facts) -> String {
    let mut j = String::from("{\n");
    j.push_str(&format!("  \"suite\": \"{}\",\n", esc(suite)));
    j.push_str(&format!("  \"command\": \"{}\",\n", esc(&f.command)));
    j.push_str(&format!(
        "  \"machine\": {{\"date\": \"{}\", \"cpu_model\": \"{}\", \"host_cores\": {}, \"qemu\": \"{}\", \"accel\": \"tcg,thread=multi\", \"machine\": \"q35\", \"cpu\": \"max\", \"vcpus\": {}, \"mem_mib\": {}, \"runs\": {}, \"adros_commit\": \"{}\", \"linux_peer\": {}}},\n",
        esc(&f.date),
        esc(&f.cpu_model),
        f.host_cores,
        esc(&f.qemu),
        f.smp,
        f.mem_mib,
        f.runs,
        esc(&f.adros_commit),
        f.linux.as_ref().map(|l| format!("\"{}\"", esc(l))).unwrap_or_else(|| "null".into())
    ));
    j.push_str("  \"figures\": [\n");
    for (i, r) in rows.iter().enumerate() {
        j.push_str(&format!(
            "    {{\"name\": \"{}\", \"what\": \"{}\", \"unit\": \"{}\", \"better\": \"{}\", \"adros\": {}, \"linux\": {}, \"ratio_adros_over_linux\": {}}}{}\n",
            esc(&r.figure.name),
            esc(&r.figure.what),
            esc(r.figure.unit),
            if r.figure.better == Better::Lower { "lower" } else { "higher" },
            jsamples(&r.adros),
            jsamples(&r.linux),
            jnum(r.ratio()),
            if i + 1 < rows.len() { "," } else { "" }
        ));
    }
    j.push_str("  ]\n}\n");
    j
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// target/bench/summary.svg: per figure, how many times worse (right, red) or better (left,
/// green) AdrOS is than Linux, on a log scale.
pub fn svg(rows: &[Row], f: &Facts) -> String {
    let (w, label_w, top, bar_h, gap) = (900.0_f64, 260.0_f64, 70.0_f64, 22.0_f64, 8.0_f64);
    let plot_w = w - label_w - 120.0;
    let max_log = rows
        .iter()
        .filter_map(|r| r.cost())
        .map(|c| c.log10().abs())
        .fold(1.0_f64, f64::max)
        .ceil();
    let x_of = |c: f64| label_w + plot_w / 2.0 + (c.log10() / max_log) * (plot_w / 2.0);
    let h = top + rows.len() as f64 * (bar_h + gap) + 60.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">AdrOS vs Linux on the same QEMU (TCG, q35, {} vCPUs): medians of {} boots each</text>\n\
         <text x=\"10\" y=\"40\" fill=\"#555\">{} — {} — bars: times AdrOS is worse (right) or better (left) than Linux, log scale</text>\n",
        f.smp,
        f.runs,
        xml(&f.command),
        xml(&f.date)
    );
    // Grid: powers of ten.
    let mut k = -max_log;
    while k <= max_log {
        let x = x_of(10f64.powf(k));
        let lbl = if k >= 0.0 {
            format!("{}×", 10f64.powf(k))
        } else {
            format!("1/{}", 10f64.powf(-k))
        };
        s.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"{}\"/>\n<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{lbl}</text>\n",
            top - 8.0,
            h - 45.0,
            if k == 0.0 { "#000" } else { "#ddd" },
            h - 30.0
        ));
        k += 1.0;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} ({})</text>\n",
            label_w - 8.0,
            y + bar_h * 0.7,
            xml(&r.figure.name),
            xml(r.figure.unit)
        ));
        match r.cost() {
            Some(c) => {
                let (x0, x1) = (x_of(1.0), x_of(c));
                let (xa, xb) = if x1 < x0 { (x1, x0) } else { (x0, x1) };
                let color = if c > 1.0 { "#d9534f" } else { "#5cb85c" };
                let text = if c >= 1.0 {
                    format!("{c:.2}× worse")
                } else {
                    format!("{:.2}× better", 1.0 / c)
                };
                s.push_str(&format!(
                    "<rect x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar_h}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{text}</text>\n",
                    (xb - xa).max(1.0),
                    xb.max(x0) + 6.0,
                    y + bar_h * 0.7
                ));
            }
            None => s.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a00\">failed (see the JSON)</text>\n",
                x_of(1.0) + 6.0,
                y + bar_h * 0.7
            )),
        }
    }
    s.push_str("</svg>\n");
    s
}
