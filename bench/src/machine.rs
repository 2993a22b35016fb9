//! The machine the benchmark runs on: how many cores are online and how loaded it is. The
//! machine may be shared, so the load average goes into the results beside every figure.

use serde::Serialize;

/// The 1, 5 and 15 minute load averages of `/proc/loadavg` (zeros where it cannot be read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct LoadAverage(pub [f64; 3]);

impl LoadAverage {
    pub(crate) fn now() -> LoadAverage {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| LoadAverage::parse(&text))
            .unwrap_or_default()
    }

    fn parse(text: &str) -> Option<LoadAverage> {
        let mut fields = text.split_whitespace().map(|f| f.parse().ok());
        Some(LoadAverage([
            fields.next()??,
            fields.next()??,
            fields.next()??,
        ]))
    }
}

impl std::fmt::Display for LoadAverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [one, five, fifteen] = self.0;
        write!(f, "{one:.2} {five:.2} {fifteen:.2}")
    }
}

/// Cores online on this machine.
pub(crate) fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_loadavg() {
        let load = LoadAverage::parse("0.30 1.84 1.61 2/345 6789\n").unwrap();
        assert_eq!(load, LoadAverage([0.30, 1.84, 1.61]));
        assert_eq!(load.to_string(), "0.30 1.84 1.61");
        assert_eq!(LoadAverage::parse("x"), None);
    }
}
