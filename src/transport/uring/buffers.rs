//! The provided-buffer ring: receive buffers handed to the kernel up front, so that one multishot
//! receive per connection can go on delivering data without a buffer of its own.
//!
//! A receive takes the buffer at the ring's head when data arrives and names it in its
//! completion. The reactor copies the bytes out to the connection and gives the buffer back at
//! the tail in the same turn, so buffers are never held between turns: the ring runs dry only if
//! more receives complete in one batch than it has buffers (the reactor then re-arms those
//! receives and counts it, see `ring.rs`).

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

/// Page alignment the kernel requires of a buffer ring's entries.
const PAGE: usize = 4096;

pub(super) struct BufRing {
    /// `count` entries the kernel reads from; the tail lives in the first entry.
    entries: NonNull<BufRingEntry>,
    /// `count` buffers of `size` bytes, one after the other.
    memory: NonNull<u8>,
    count: u16,
    size: usize,
    /// The tail as we advance it; published to the kernel after each give-back.
    tail: u16,
}

impl BufRing {
    /// Allocates `count` buffers of `size` bytes (`count` a power of two, at most 32768) and
    /// registers them as buffer group `group` of the ring behind `submitter`.
    pub(super) fn register(
        submitter: &Submitter,
        group: u16,
        count: u16,
        size: usize,
    ) -> io::Result<Self> {
        assert!(count.is_power_of_two() && size > 0);
        let entries = alloc_zeroed(entries_layout(count))?.cast::<BufRingEntry>();
        let memory = match alloc_zeroed(memory_layout(count, size)) {
            Ok(memory) => memory,
            Err(e) => {
                // SAFETY: allocated just above with this very layout, and never handed out.
                unsafe { alloc::dealloc(entries.as_ptr().cast(), entries_layout(count)) };
                return Err(e);
            }
        };
        let mut ring = BufRing {
            entries,
            memory,
            count,
            size,
            tail: 0,
        };
        // SAFETY: `entries` is a page-aligned, zeroed allocation of `count` entries that lives as
        // long as `ring`, and the ring's owner unregisters the group before dropping it.
        unsafe {
            submitter.register_buf_ring_with_flags(entries.as_ptr() as u64, count, group, 0)?;
        }
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid`, which a completion has just handed over.
    pub(super) fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size);
        // SAFETY: buffer `bid` lies inside `memory`; the kernel wrote `len` bytes into it and
        // does not touch it again until `give_back` returns it to the ring.
        unsafe {
            std::slice::from_raw_parts(self.memory.as_ptr().add(bid as usize * self.size), len)
        }
    }

    /// Returns buffer `bid` to the kernel.
    pub(super) fn give_back(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// Writes the entry for `bid` at our tail without publishing it.
    fn push(&mut self, bid: u16) {
        let index = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `index < count`, and the kernel only reads entries between its head and the
        // published tail, which this one is not yet part of.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        entry.set_addr(self.memory.as_ptr() as u64 + bid as u64 * self.size as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed entry visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field sits inside the first entry of our live allocation; the kernel
        // reads it concurrently, so it is only ever written as an atomic.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both allocations were made in `register` with these layouts. The owner has
        // unregistered the group (`Ring`'s `Drop`), so the kernel no longer reads the entries
        // nor picks the buffers.
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), entries_layout(self.count));
            alloc::dealloc(self.memory.as_ptr(), memory_layout(self.count, self.size));
        }
    }
}

fn entries_layout(count: u16) -> Layout {
    Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), PAGE)
        .expect("a buffer ring's entries fit in memory")
}

fn memory_layout(count: u16, size: usize) -> Layout {
    Layout::from_size_align(count as usize * size, PAGE).expect("receive buffers fit in memory")
}

fn alloc_zeroed(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: both layouts have a non-zero size (`count` and `size` are positive).
    NonNull::new(unsafe { alloc::alloc_zeroed(layout) })
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}
