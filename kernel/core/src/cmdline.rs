//! The Linux-like kernel command line: `console=`, `loglevel=`, `init=`, `nosmp`,
//! `maxcpus=`, `drivers=`, `subsys.param=`; every word the kernel does not know is passed
//! on to init (as Linux does).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cmdline {
    pub raw: String,
    pub console: Option<String>,
    pub loglevel: Option<String>,
    pub init: Option<String>,
    pub nosmp: bool,
    pub maxcpus: Option<usize>,
    pub drivers: Option<String>,
    /// Dotted per-subsystem options (`fs.ext2=native`) and `ktest`-style switches.
    pub params: Vec<(String, String)>,
    /// Words for init: unknown `key=value` go to its environment, bare words to its argv.
    pub init_args: Vec<String>,
    pub init_env: Vec<String>,
}

impl Cmdline {
    pub fn parse(s: &str) -> Self {
        let mut c = Cmdline {
            raw: s.to_string(),
            ..Default::default()
        };
        let mut after_dashes = false;
        for w in split_words(s) {
            if after_dashes {
                c.init_args.push(w);
                continue;
            }
            if w == "--" {
                after_dashes = true;
                continue;
            }
            let (k, v) = match w.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (w.as_str(), None),
            };
            match (k, v) {
                ("console", Some(v)) => c.console = Some(v.to_string()),
                ("loglevel", Some(v)) => c.loglevel = Some(v.to_string()),
                ("init", Some(v)) => c.init = Some(v.to_string()),
                ("nosmp", None) => c.nosmp = true,
                ("maxcpus", Some(v)) => c.maxcpus = v.parse().ok(),
                ("drivers", Some(v)) => c.drivers = Some(v.to_string()),
                ("quiet", None) => c.loglevel = Some("4".to_string()),
                (k, Some(v)) if k.contains('.') => c.params.push((k.to_string(), v.to_string())),
                (_, Some(_)) => c.init_env.push(w.clone()),
                (_, None) => c.init_args.push(w.clone()),
            }
        }
        c
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A number option (`rump.ncpu=1`), else `default`; a value that does not parse or lies
    /// outside `range` is logged and ignored.
    pub fn number<T>(&self, key: &str, default: T, range: core::ops::RangeInclusive<T>) -> T
    where
        T: core::str::FromStr + PartialOrd + core::fmt::Display + Copy,
    {
        let Some(v) = self.param(key) else {
            return default;
        };
        match v.parse::<T>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                log::warn!(
                    "cmdline: ignoring {key}={v} (want {}..={}); using {default}",
                    range.start(),
                    range.end()
                );
                default
            }
        }
    }
}

/// Splits on whitespace, honouring double quotes (`init="/bin/sh -x"`).
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(core::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_words() {
        let c = Cmdline::parse(
            r#"console=ttyS0 loglevel=7 init="/bin/sh -l" nosmp maxcpus=2 drivers=native fs.ext2=rump single FOO=bar"#,
        );
        assert_eq!(c.console.as_deref(), Some("ttyS0"));
        assert_eq!(c.loglevel.as_deref(), Some("7"));
        assert_eq!(c.init.as_deref(), Some("/bin/sh -l"));
        assert!(c.nosmp);
        assert_eq!(c.maxcpus, Some(2));
        assert_eq!(c.drivers.as_deref(), Some("native"));
        assert_eq!(c.param("fs.ext2"), Some("rump"));
        assert_eq!(c.init_args, ["single"]);
        assert_eq!(c.init_env, ["FOO=bar"]);
    }

    #[test]
    fn numbers_in_range_else_the_default() {
        let c = Cmdline::parse("rump.ncpu=1 rump.bio_threads=99 ext2.writeback=soon");
        assert_eq!(c.number("rump.ncpu", 2u32, 1..=2), 1);
        assert_eq!(c.number("rump.bio_threads", 4usize, 1..=16), 4);
        assert_eq!(c.number("ext2.writeback", 30u64, 1..=86_400), 30);
        assert_eq!(c.number("absent", 7u64, 0..=10), 7);
    }

    #[test]
    fn double_dash_passes_rest_to_init() {
        let c = Cmdline::parse("loglevel=3 -- nosmp x=y");
        assert!(!c.nosmp);
        assert_eq!(c.init_args, ["nosmp", "x=y"]);
    }

    #[test]
    fn empty() {
        assert_eq!(
            Cmdline::parse("   "),
            Cmdline {
                raw: "   ".into(),
                ..Default::default()
            }
        );
    }
}
