//! A bell: an eventfd that a glommio task waits on and that anything (the kernel, another thread)
//! may ring. The waiting task keeps one glommio read of the eventfd pending, which io_uring
//! completes only once the eventfd is signalled, so a parked core waits on it for free: nothing
//! polls, and no timer wakes the core to look.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use glommio::io::BufferedFile;

/// The waiting end, owned by one core's task.
pub(crate) struct Bell {
    file: BufferedFile,
}

/// A ringing end: a second descriptor of the same eventfd, which may go to another thread.
pub(crate) struct Ringer(OwnedFd);

impl Bell {
    pub(crate) fn new() -> io::Result<Bell> {
        // SAFETY: a plain system call with no pointers. Blocking (no EFD_NONBLOCK): io_uring
        // then completes a read of it only once it is signalled.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the call just returned this descriptor, which nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the descriptor is owned by nothing else; the file takes it.
        let file = unsafe { BufferedFile::from_raw_fd(fd.into_raw_fd()) };
        Ok(Bell { file })
    }

    /// A new ringer of this bell.
    pub(crate) fn ringer(&self) -> io::Result<Ringer> {
        // SAFETY: the file keeps the descriptor open while it is borrowed to be duplicated.
        let fd = unsafe { BorrowedFd::borrow_raw(self.raw_fd()) };
        fd.try_clone_to_owned().map(Ringer)
    }

    /// The eventfd, for the kernel to signal (an io_uring ring's completions, say).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Resolves once the bell rang since the last wait; several rings count as one.
    pub(crate) async fn wait(&self) -> io::Result<()> {
        self.file
            .read_at(0, 8)
            .await
            .map(drop)
            .map_err(io::Error::from)
    }
}

impl Ringer {
    /// Rings the bell; its waiter wakes, whatever thread this is.
    pub(crate) fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to a descriptor this owns. An eventfd
        // refuses a write only when its counter would overflow, and then it is signalled already.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}
