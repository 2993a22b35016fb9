//! File descriptors for many connections: ten thousand idle attackers need ten thousand
//! sockets, beyond the soft `RLIMIT_NOFILE` of many shells (1024). The run raises its own soft
//! limit as far as it needs (up to the hard limit) instead of asking for `ulimit -n`.

use crate::error::Error;

/// Descriptors a process needs besides its connections (stdio, epoll, timers, threads).
const SPARE: u64 = 64;

/// Makes sure this process may open `connections` sockets, raising the soft limit if needed.
pub(crate) fn ensure(connections: u64) -> Result<(), Error> {
    let needed = connections + SPARE;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(Error::Setup(std::io::Error::last_os_error()));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(Error::Argument(format!(
            "{connections} connections need {needed} file descriptors; the hard limit is {} \
             (raise it: ulimit -Hn, or LimitNOFILE)",
            limit.rlim_max
        )));
    }
    limit.rlim_cur = needed;
    // SAFETY: `limit` is a valid rlimit, its soft value within the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(Error::Setup(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_few_connections_fit_and_the_impossible_is_refused() {
        super::ensure(10).unwrap();
        let err = super::ensure(u64::MAX / 2).unwrap_err();
        assert!(err.to_string().contains("hard limit"), "{err}");
    }
}
