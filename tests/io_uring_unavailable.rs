//! Where io_uring is refused, the server says why in one line and exits 1 at once, instead of
//! panicking on every core and waiting out its start timeout.
//!
//! The refusals are made for the child alone, with no change to the host: a seccomp filter
//! (installed under `no_new_privs`, which needs no privilege) makes `io_uring_setup` fail with
//! the errno a container profile or an old kernel gives, and `RLIMIT_MEMLOCK` is lowered below
//! what glommio needs. `kernel.io_uring_disabled` is a host-wide sysctl other tests depend on,
//! so that cause is covered by the unit tests of the errno → message mapping
//! (`src/runtime/uring_probe.rs`), not here.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{artemis, wait_for_exit};

/// How long the refusal may take. The probe takes microseconds and the server's start before it
/// milliseconds; the slack is for a machine loaded by the rest of the suite.
const PROMPTLY: Duration = Duration::from_secs(3);

/// `io_uring_setup` on every Linux architecture of the generic syscall table (x86_64, aarch64,
/// riscv64, ...).
const IO_URING_SETUP: u32 = 425;

/// `artemis server` on a free port, core 0.
fn server() -> Command {
    artemis(&[
        "server",
        "--addr",
        "127.0.0.1:0",
        "--cores",
        "0",
        "--region",
        "SHA",
        "--zone",
        "SHAJQ",
    ])
}

/// `command` with `io_uring_setup` failing with `errno` (everything else allowed).
fn with_io_uring_setup_failing(mut command: Command, errno: i32) -> Command {
    let op = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_if_not = |k: u32, skip: u8| libc::sock_filter {
        jf: skip,
        ..op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k)
    };
    let program = [
        // The syscall number: `seccomp_data.nr`, at offset 0.
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump_if_not(IO_URING_SETUP, 1),
        op(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ),
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure makes only two prctl calls, async-signal-safe,
    // on a filter built before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let filter = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr().cast_mut(),
            };
            let no_new_privs = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let seccomp = libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &filter as *const libc::sock_fprog,
            );
            match (no_new_privs, seccomp) {
                (0, 0) => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    command
}

/// `command` with a soft and hard memlock limit of `bytes`.
fn with_memlock(mut command: Command, bytes: u64) -> Command {
    // SAFETY: between fork and exec the closure makes one setrlimit call, async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            match libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    command
}

/// Runs `command`, which must exit 1 within [`PROMPTLY`] with exactly one line saying io_uring
/// is unavailable, no panic and no backtrace; returns that line.
fn refused(command: Command) -> String {
    let started = Instant::now();
    let mut child = artemis_testkit::spawn_logging(command);
    let status = wait_for_exit(&mut child, PROMPTLY);
    let took = started.elapsed();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "exit within {PROMPTLY:?} (took {took:?}); log:\n{log}"
    );
    assert!(
        !log.contains("panicked") && !log.contains("Romulus"),
        "{log}"
    );
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("io_uring is unavailable"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(!log.contains("serving on"), "{log}");
    said[0].to_string()
}

#[test]
fn a_seccomp_profile_that_blocks_io_uring_is_named_with_its_fix() {
    let line = refused(with_io_uring_setup_failing(server(), libc::EPERM));
    assert!(line.contains("seccomp"), "{line}");
    assert!(line.contains("deploy/seccomp/"), "{line}");
}

#[test]
fn a_kernel_without_io_uring_is_named() {
    let line = refused(with_io_uring_setup_failing(server(), libc::ENOSYS));
    assert!(line.contains("ENOSYS") && line.contains("5.8"), "{line}");
}

#[test]
fn a_ring_without_lockable_memory_names_the_memlock_limit() {
    let line = refused(with_io_uring_setup_failing(server(), libc::ENOMEM));
    assert!(line.contains("ulimit -l"), "{line}");
    assert!(line.contains("LimitMEMLOCK=infinity"), "{line}");
}

#[test]
fn a_memlock_limit_below_glommios_minimum_is_named_with_its_fix() {
    let line = refused(with_memlock(server(), 64 * 1024));
    assert!(
        line.contains("64 KiB") && line.contains("512 KiB"),
        "{line}"
    );
    assert!(line.contains("LimitMEMLOCK=infinity"), "{line}");
}
