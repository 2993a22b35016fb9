//! How the benchmark writes its figures for people: rates, latencies, sizes, ratios.

/// `105.3k/s`.
pub(crate) fn rate(per_second: f64) -> String {
    if per_second >= 1e3 {
        format!("{:.1}k/s", per_second / 1e3)
    } else {
        format!("{per_second:.0}/s")
    }
}

/// `312µs`, `1.02ms`, `-` for no figure.
pub(crate) fn latency(us: Option<f64>) -> String {
    match us {
        None => "-".to_owned(),
        Some(us) if us < 1e3 => format!("{us:.0}µs"),
        Some(us) => format!("{:.2}ms", us / 1e3),
    }
}

/// `85%`.
pub(crate) fn ratio(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

/// `12.3 MB` (decimal units).
pub(crate) fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n => format!("{:.1} kB", n as f64 / 1e3),
    }
}

/// `1k`, `100k`, `1M`, `2500`.
pub(crate) fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_naturally() {
        assert_eq!(rate(105_321.0), "105.3k/s");
        assert_eq!(rate(812.4), "812/s");
        assert_eq!(latency(Some(312.4)), "312µs");
        assert_eq!(latency(Some(1021.0)), "1.02ms");
        assert_eq!(latency(None), "-");
        assert_eq!(ratio(0.853), "85%");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(bytes(1_150_000_000), "1.15 GB");
        assert_eq!(count(1_000_000), "1M");
        assert_eq!(count(100_000), "100k");
        assert_eq!(count(2_500), "2500");
    }
}
