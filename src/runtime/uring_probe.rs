//! Whether this process may use io_uring at all, asked once before any executor starts.
//!
//! glommio needs io_uring whatever the transport: where it is refused (Docker's and
//! containerd's default seccomp profiles, `kernel.io_uring_disabled`, a memlock limit below
//! glommio's minimum, an old kernel) each executor thread panics with a kernel-age joke and a
//! backtrace, and the main thread waits out the start timeout. A ring of two entries, set up and
//! dropped here, finds the same refusal in microseconds, and [`Unavailable`] says in one line
//! why and what fixes it.

use std::fmt;
use std::io;

use io_uring::{IoUring, Probe};

/// The memlock limit below which glommio refuses to create an executor (its reactor's
/// `MIN_MEMLOCK_LIMIT`).
const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;

/// The sysctl that turns io_uring off (Linux 6.6+): 1 for processes outside
/// `kernel.io_uring_group`, 2 for all.
const DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Why io_uring cannot be used here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// `io_uring_setup` failed with `errno`; `disabled` is `kernel.io_uring_disabled` when the
    /// kernel has it.
    Setup { errno: i32, disabled: Option<u32> },
    /// The ring works but cannot be probed for its operations: a kernel before 5.6.
    NoProbe,
    /// The soft memlock limit, in bytes, is below glommio's minimum.
    Memlock { limit: u64 },
}

/// Sets up and drops a ring, probes its operations, and checks the memlock limit glommio
/// needs.
pub(crate) fn check() -> Result<(), Unavailable> {
    let ring = IoUring::new(2).map_err(|e| Unavailable::Setup {
        errno: e.raw_os_error().unwrap_or(0),
        disabled: disabled_sysctl(),
    })?;
    if ring.submitter().register_probe(&mut Probe::new()).is_err() {
        return Err(Unavailable::NoProbe);
    }
    match memlock_limit() {
        Some(limit) if limit < GLOMMIO_MIN_MEMLOCK => Err(Unavailable::Memlock { limit }),
        _ => Ok(()),
    }
}

/// `kernel.io_uring_disabled`, when the kernel has it.
fn disabled_sysctl() -> Option<u32> {
    std::fs::read_to_string(DISABLED_SYSCTL)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The soft `RLIMIT_MEMLOCK`, in bytes.
fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    read.then_some(limit.rlim_cur)
}

const MEMLOCK_FIX: &str = "raise the memlock limit (ulimit -l / LimitMEMLOCK=infinity)";

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("io_uring is unavailable: ")?;
        match *self {
            Unavailable::Setup {
                errno: libc::EPERM,
                disabled: Some(n @ 1..),
            } => write!(
                f,
                "kernel.io_uring_disabled={n} refuses it to this process: set it to 0 \
                 (sysctl kernel.io_uring_disabled=0){}",
                if n == 1 {
                    ", or run the server in kernel.io_uring_group"
                } else {
                    ""
                }
            ),
            Unavailable::Setup {
                errno: libc::EPERM, ..
            } => f.write_str(
                "io_uring_setup was refused (EPERM): a seccomp profile blocks io_uring (Docker's \
                 and containerd's default profiles do): run with the profile in deploy/seccomp/",
            ),
            Unavailable::Setup {
                errno: libc::ENOMEM,
                ..
            } => write!(
                f,
                "io_uring_setup could not lock its memory (ENOMEM): {MEMLOCK_FIX}"
            ),
            Unavailable::Setup {
                errno: libc::ENOSYS,
                ..
            } => f.write_str(
                "the kernel has no io_uring_setup (ENOSYS): it is older than 5.1, built without \
                 CONFIG_IO_URING, or a sandbox hides it; the server needs Linux 5.8 or later",
            ),
            Unavailable::Setup { errno, .. } => write!(
                f,
                "io_uring_setup failed: {}",
                io::Error::from_raw_os_error(errno)
            ),
            Unavailable::NoProbe => f.write_str(
                "the kernel's io_uring cannot be probed for its operations (it is older than \
                 5.6): the server needs Linux 5.8 or later",
            ),
            Unavailable::Memlock { limit } => write!(
                f,
                "the memlock limit is {} KiB and glommio needs at least {} KiB: {MEMLOCK_FIX}",
                limit / 1024,
                GLOMMIO_MIN_MEMLOCK / 1024
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(errno: i32, disabled: Option<u32>) -> String {
        Unavailable::Setup { errno, disabled }.to_string()
    }

    #[test]
    fn each_cause_names_its_fix_in_one_line() {
        let sysctl = setup(libc::EPERM, Some(2));
        assert!(sysctl.contains("kernel.io_uring_disabled=2"), "{sysctl}");
        assert!(
            sysctl.contains("sysctl kernel.io_uring_disabled=0"),
            "{sysctl}"
        );
        assert!(!sysctl.contains("io_uring_group"), "{sysctl}");
        let group = setup(libc::EPERM, Some(1));
        assert!(group.contains("=1") && group.contains("kernel.io_uring_group"));
        for (errno, disabled) in [(libc::EPERM, Some(0)), (libc::EPERM, None)] {
            let seccomp = setup(errno, disabled);
            assert!(seccomp.contains("seccomp"), "{seccomp}");
            assert!(seccomp.contains("deploy/seccomp/"), "{seccomp}");
        }
        let memory = setup(libc::ENOMEM, Some(0));
        assert!(memory.contains("ENOMEM") && memory.contains("LimitMEMLOCK=infinity"));
        let old = setup(libc::ENOSYS, None);
        assert!(old.contains("ENOSYS") && old.contains("5.8"), "{old}");
        let other = setup(libc::EINVAL, None);
        assert!(
            other.contains("io_uring_setup failed: Invalid argument"),
            "{other}"
        );
        assert!(Unavailable::NoProbe.to_string().contains("5.8"));
        let memlock = Unavailable::Memlock { limit: 64 * 1024 }.to_string();
        assert!(
            memlock.contains("64 KiB") && memlock.contains("512 KiB"),
            "{memlock}"
        );
        assert!(memlock.contains("ulimit -l"), "{memlock}");
        for line in [sysctl, group, memory, old, other, memlock] {
            assert!(line.starts_with("io_uring is unavailable: "), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn this_machine_has_io_uring() {
        assert_eq!(check(), Ok(()));
    }
}
