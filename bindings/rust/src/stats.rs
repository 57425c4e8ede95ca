//! Kiln's statistics as plain Rust values.

use core::mem::MaybeUninit;

use crate::ffi;

/// A snapshot of Kiln's statistics, merged over all threads, live and exited
/// (`kiln_stats_get`).  Counters of running threads are read without stopping
/// them, so the fields are each exact but not necessarily simultaneous.
///
/// ```
/// let s = kiln::Stats::get();
/// assert!(s.committed_peak >= s.committed);
/// println!("{s:#?}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks currently allocated (usable sizes).
    pub allocated: usize,
    /// Highest `allocated` seen.
    pub allocated_peak: usize,
    /// Bytes of OS memory Kiln holds committed (readable and writable).
    pub committed: usize,
    /// Highest `committed` seen.
    pub committed_peak: usize,
    /// Bytes of address space Kiln has mapped.
    pub mapped: usize,
    /// Highest `mapped` seen.
    pub mapped_peak: usize,
    /// Allocations served, through every entry point.
    pub malloc_count: u64,
    /// Blocks freed.
    pub free_count: u64,
    /// Allocations served by a dedicated mapping.
    pub huge_count: u64,
    /// Frees by a thread other than the block's owner.
    pub remote_free_count: u64,
    /// Frees of pointers Kiln did not hand out (ignored by Kiln).
    pub invalid_free_count: u64,
    /// Segments given up by exiting threads.
    pub segments_abandoned: u64,
    /// Abandoned segments taken over by another thread.
    pub segments_reclaimed: u64,
    /// Runs of memory handed back to the OS.
    pub purges: u64,
    /// One entry per size class, smallest first.
    pub bins: Vec<BinStats>,
}

/// The statistics of one size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BinStats {
    /// The size of the class's blocks, in bytes.
    pub block_size: usize,
    /// Blocks of this class ever allocated.
    pub malloc_count: u64,
    /// Blocks of this class currently allocated.
    pub current: u64,
}

impl Stats {
    /// Reads the statistics now.
    #[must_use]
    pub fn get() -> Stats {
        let mut raw = MaybeUninit::<ffi::kiln_stats_t>::zeroed();
        // SAFETY: kiln_stats_get writes a whole kiln_stats_t through a valid
        // pointer; the buffer is one, zeroed first so that every bit pattern
        // is initialised even if the C side left bins unwritten.
        let raw = unsafe {
            ffi::kiln_stats_get(raw.as_mut_ptr());
            raw.assume_init()
        };
        // bin_count > KILN_STATS_BINS would be a C bug; do not read past the arrays.
        let bins = (0..raw.bin_count.min(ffi::KILN_STATS_BINS))
            .map(|i| BinStats {
                block_size: raw.bin_block_size[i],
                malloc_count: raw.bin_malloc_count[i],
                current: raw.bin_current[i],
            })
            .collect();
        Stats {
            allocated: raw.allocated,
            allocated_peak: raw.allocated_peak,
            committed: raw.committed,
            committed_peak: raw.committed_peak,
            mapped: raw.mapped,
            mapped_peak: raw.mapped_peak,
            malloc_count: raw.malloc_count,
            free_count: raw.free_count,
            huge_count: raw.huge_count,
            remote_free_count: raw.remote_free_count,
            invalid_free_count: raw.invalid_free_count,
            segments_abandoned: raw.segments_abandoned,
            segments_reclaimed: raw.segments_reclaimed,
            purges: raw.purges,
            bins,
        }
    }
}
