//! The standard `process_*` metrics (the names every Prometheus client
//! library exports), read from `/proc/self` at each scrape. Elsewhere than
//! Linux they are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux reports CPU times in USER_HZ, which is 100 on every architecture
/// user space can see (the kernel's own HZ is hidden behind it).
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of `/proc/self`.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    cpu_seconds: f64,
    start_time_seconds: Option<f64>,
    threads: Option<f64>,
    virtual_bytes: Option<f64>,
    resident_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

fn read() -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut r = parse_stat(&stat)?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_btime(&s));
    r.start_time_seconds = r.start_time_seconds.zip(boot).map(|(ticks, b)| b + ticks);
    r.resident_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_kib(&s, "VmRSS:"));
    r.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    r.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| parse_max_open_files(&s));
    Some(r)
}

/// `/proc/self/stat`: fields after the parenthesised command name.
fn parse_stat(stat: &str) -> Option<Reading> {
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3 of the man page, so index = field - 3.
    let num = |field: usize| f.get(field - 3).and_then(|v| v.parse::<f64>().ok());
    Some(Reading {
        cpu_seconds: (num(14)? + num(15)?) / USER_HZ,
        threads: num(20),
        start_time_seconds: num(22).map(|t| t / USER_HZ),
        virtual_bytes: num(23),
        ..Reading::default()
    })
}

fn parse_btime(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn parse_kib(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: f64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024.0)
}

fn parse_max_open_files(limits: &str) -> Option<f64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    let Some(v) = value else { return Ok(()) };
    let g = ConstGauge::new(v);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(r) = read() else { return Ok(()) };
        let cpu = ConstCounter::new(r.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            r.resident_bytes,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            r.virtual_bytes,
        )?;
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors.",
            r.open_fds,
        )?;
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            r.max_fds,
        )?;
        gauge(
            e,
            "process_threads",
            "Number of OS threads in the process.",
            r.threads,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            r.start_time_seconds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_parsed() {
        let stat = "1234 (trace bridge) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 7 0 4200 123456789 3000 18446744073709551615";
        let r = parse_stat(stat).unwrap();
        assert_eq!(r.cpu_seconds, 3.0);
        assert_eq!(r.threads, Some(7.0));
        assert_eq!(r.start_time_seconds, Some(42.0));
        assert_eq!(r.virtual_bytes, Some(123456789.0));
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
        assert_eq!(
            parse_kib("Name: x\nVmRSS:\t  2048 kB\n", "VmRSS:"),
            Some(2_097_152.0)
        );
        assert_eq!(
            parse_max_open_files(
                "Limit Soft Hard Units\nMax open files            1024                 524288               files\n"
            ),
            Some(1024.0)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let r = read().unwrap();
        assert!(r.resident_bytes.unwrap() > 0.0 && r.open_fds.unwrap() > 0.0);
        assert!(r.start_time_seconds.unwrap() > 1_600_000_000.0);
    }
}
