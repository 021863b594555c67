//! Memory estimates before large allocations: a size inside the accepted ranges can still not
//! fit (a 1024-px DCGAN, a 10^8-wide layer, 10^12 toy points), and an allocation that fails
//! aborts the process with a backtrace. The estimates here are lower bounds of what the work
//! needs, checked against the memory available now (`MemAvailable`, and a cgroup's limit), so a
//! refusal is certain to be right; the message names the knob to lower.

use anyhow::{Result, ensure};

/// Bytes of memory available to this process now, if the system says (Linux: the smaller of
/// `/proc/meminfo`'s MemAvailable and the cgroup v2 limit minus its usage).
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?
        * 1024;
    let cgroup = || -> Option<u64> {
        let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
        let max = max.trim().parse::<u64>().ok()?;
        let used = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(max.saturating_sub(used))
    };
    Some(cgroup().map_or(avail, |c| c.min(avail)))
}

/// `1.5 GiB`, `730 MiB`, … for messages.
pub fn fmt_bytes(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Refuses work that needs at least `bytes` when less is available: "`what`: at least N of
/// memory is needed, and M is available; lower `knob`". Passes when the system does not say
/// what is available.
pub fn ensure_fits(bytes: u128, what: &str, knob: &str) -> Result<()> {
    ensure_fits_in(bytes, available_bytes(), what, knob)
}

/// [`ensure_fits`] against a given amount (tests).
pub fn ensure_fits_in(bytes: u128, available: Option<u64>, what: &str, knob: &str) -> Result<()> {
    if let Some(avail) = available {
        ensure!(
            bytes <= avail as u128,
            "{what}: at least {} of memory is needed, and {} is available; lower {knob}",
            fmt_bytes(bytes),
            fmt_bytes(avail as u128)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_what_cannot_fit() {
        assert!(ensure_fits_in(10, Some(100), "x", "k").is_ok());
        assert!(ensure_fits_in(10, None, "x", "k").is_ok());
        let e = ensure_fits_in(3 << 30, Some(1 << 30), "the networks", "model.g_hidden")
            .expect_err("too big");
        assert_eq!(
            format!("{e:#}"),
            "the networks: at least 3.0 GiB of memory is needed, and 1.0 GiB is available; \
             lower model.g_hidden"
        );
        assert!(available_bytes().is_some_and(|b| b > 0));
        assert_eq!(fmt_bytes(512), "512 bytes");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
    }
}
