//! What /proc says about a process (memory, CPU time), and the open-files limit.

use anyhow::{Context, Result};

/// `VmRSS` and `VmHWM` (peak RSS) in KiB, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn parse_status(status: &str) -> Mem {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// `None` when the process is gone or /proc is unreadable.
pub fn mem(pid: &str) -> Option<Mem> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .map(|s| parse_status(&s))
}

/// User + system CPU time in clock ticks, from `/proc/<pid>/stat` (fields 14 and 15).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Linux reports CPU times in USER_HZ, which the ABI fixes at 100.
pub const TICKS_PER_SEC: f64 = 100.0;

pub fn cpu_ticks(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_cpu_ticks(&s))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
pub fn raise_nofile() -> Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let s = "Name:\tchat-server\nVmPeak:\t  999 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(s),
            Mem {
                rss_kib: 80000,
                hwm_kib: 81234
            }
        );
        assert_eq!(parse_status(""), Mem::default());
    }

    #[test]
    fn parses_stat() {
        let s = "1234 (chat server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200";
        assert_eq!(parse_stat_cpu_ticks(s), Some(300));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id().to_string();
        let m = mem(&me);
        assert!(m.is_some_and(|m| m.rss_kib > 0 && m.hwm_kib >= m.rss_kib));
        assert!(cpu_ticks(&me).is_some());
        assert!(mem("999999999").is_none());
    }
}
