//! The `--cores` list: which CPUs get a pinned worker thread, written like `0-3,6`.

/// Parses `0-3,6` into `[0, 1, 2, 3, 6]`, keeping the order given and refusing repeats.
pub(crate) fn parse(list: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in list.split(',').map(str::trim) {
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad core number {s:?} in --cores {list:?}"))
        };
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(format!("bad core range {part:?} in --cores {list:?}"));
        }
        for core in first..=last {
            if cores.contains(&core) {
                return Err(format!("core {core} given twice in --cores {list:?}"));
            }
            cores.push(core);
        }
    }
    Ok(cores)
}

/// Every core this process may run on.
pub(crate) fn available() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse("1").unwrap(), vec![1]);
        assert_eq!(parse("2, 0").unwrap(), vec![2, 0]);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse("").is_err());
        assert!(parse("3-1").is_err());
        assert!(parse("a").is_err());
        assert!(parse("0-2,1").is_err());
    }
}
