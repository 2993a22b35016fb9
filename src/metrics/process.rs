//! The process itself, as every Prometheus client library exports it: the standard `process_*`
//! families, read from `/proc/self` at each scrape, and `artemis_build_info`.
//!
//! A scrape reads four small procfs files and lists `/proc/self/fd`: a few syscalls, no disk,
//! so the core that serves `/metrics` does it in place. Where a figure cannot be read (not
//! Linux, a procfs hidden by a sandbox) its family is left out rather than reported as 0.

use std::fmt::Write;

use super::family;

/// Appends the `process_*` families and `artemis_build_info`.
pub(super) fn render(out: &mut String) {
    if let Some(stat) = Stat::read() {
        let figures = [
            (
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
                stat.cpu_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size, in bytes.",
                stat.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size, in bytes.",
                stat.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch, in seconds.",
                stat.start_time_seconds,
            ),
        ];
        for (name, kind, help, value) in figures {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    if let Some(max) = limits.as_deref().and_then(max_fds) {
        family(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        let _ = writeln!(out, "process_max_fds {max}");
    }
    family(
        out,
        "artemis_build_info",
        "gauge",
        "Always 1; the labels say what was built: version, profile and target.",
    );
    let _ = writeln!(
        out,
        "artemis_build_info{{version=\"{}\",profile=\"{}\",arch=\"{}\",os=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
}

/// What `/proc/self/stat` (with the boot time of `/proc/stat`) says of the process.
struct Stat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
}

impl Stat {
    fn read() -> Option<Stat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        Stat::parse(
            &stat,
            &boot,
            sysconf(libc::_SC_CLK_TCK)?,
            sysconf(libc::_SC_PAGESIZE)?,
        )
    }

    /// `stat` as `/proc/self/stat` writes it, `boot` as `/proc/stat`; `ticks` clock ticks a
    /// second, `page` bytes a page.
    fn parse(stat: &str, boot: &str, ticks: u64, page: u64) -> Option<Stat> {
        // The command name, in parentheses, may hold spaces and parentheses itself: the fields
        // are what follows the last `)`, from field 3 (`state`) on.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let boot_time: u64 = boot
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let ticks_f = ticks as f64;
        Some(Stat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks_f,
            start_time_seconds: boot_time as f64 + field(22)? as f64 / ticks_f,
            virtual_bytes: field(23)? as f64,
            resident_bytes: (field(24)? * page) as f64,
        })
    }
}

/// A positive `sysconf` value.
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a system setting; it takes no pointer and touches no memory of ours.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|&v| v > 0)
}

/// The soft limit of open files (the server raises it to the hard one at start), from `limits`
/// as `/proc/self/limits` writes it; `None` when unlimited.
fn max_fds(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_stat_whatever_the_command_name() {
        let stat = "4242 (artemis (core) 0) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 3 0 12000 1048576 2560 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let stat = Stat::parse(stat, boot, 100, 4096).unwrap();
        assert_eq!(stat.cpu_seconds, 3.0);
        assert_eq!(stat.start_time_seconds, 1_700_000_120.0);
        assert_eq!(stat.virtual_bytes, 1_048_576.0);
        assert_eq!(stat.resident_bytes, 2560.0 * 4096.0);
        assert!(Stat::parse("1 (x) S", boot, 100, 4096).is_none());
    }

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             511172               511172               processes\n\
                      Max open files            20000                1048576              files\n";
        assert_eq!(max_fds(limits), Some(20_000));
        assert_eq!(
            max_fds("Max open files  unlimited  unlimited  files\n"),
            None
        );
    }

    #[test]
    fn renders_this_process() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            let line = out.lines().find(|l| l.starts_with(name));
            let value = line.and_then(|l| l[name.len()..].parse::<f64>().ok());
            // CPU time counts in clock ticks: a test process may not have spent one yet.
            let least = if name.starts_with("process_cpu") {
                0.0
            } else {
                1.0
            };
            assert!(value.is_some_and(|v| v >= least), "{name} in\n{out}");
        }
        let version = concat!("artemis_build_info{version=\"", env!("CARGO_PKG_VERSION"));
        assert!(out.contains(version), "{out}");
    }
}
