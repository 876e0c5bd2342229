//! The kernel logger: `[seconds.micro] CPUn LEVEL message` on the serial console.

use log::{LevelFilter, Log, Metadata, Record};

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::klog::console_write(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::klog::console_write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub fn console_write(args: core::fmt::Arguments<'_>) {
    #[cfg(target_os = "none")]
    crate::arch::serial::write_fmt(args);
    #[cfg(not(target_os = "none"))]
    std::print!("{args}");
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let ns = crate::time::now_ns();
        #[cfg(target_os = "none")]
        let cpu = crate::arch::percpu::cpu_id();
        #[cfg(not(target_os = "none"))]
        let cpu = 0;
        crate::println!(
            "[{:5}.{:06}] CPU{} {:<5} {}",
            ns / 1_000_000_000,
            (ns / 1000) % 1_000_000,
            cpu,
            r.level(),
            r.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// `loglevel=` accepts Linux's 0..7 or a level name.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s {
        "0" | "1" | "2" | "3" | "error" => LevelFilter::Error,
        "4" | "warn" => LevelFilter::Warn,
        "5" | "6" | "info" => LevelFilter::Info,
        "7" | "debug" => LevelFilter::Debug,
        "8" | "trace" => LevelFilter::Trace,
        "off" | "quiet" => LevelFilter::Off,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn levels() {
        assert_eq!(parse_level("7"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("4"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("info"), Some(LevelFilter::Info));
        assert_eq!(parse_level("loud"), None);
    }
}
