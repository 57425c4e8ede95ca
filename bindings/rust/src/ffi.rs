//! Raw declarations of `include/kiln.h`, one to one.
//!
//! The contracts are the header's; read it for what each function promises.
//! `size_t` is `usize` and C's `bool` is Rust's `bool` on every target Rust
//! supports.  The #[repr(C)] structs are checked against the C compiler's
//! layout by the test at the bottom (see csrc/abi.c).

#![allow(non_camel_case_types, missing_docs)]

use core::ffi::{c_char, c_void};

/// Opaque first-class heap.
#[repr(C)]
pub struct kiln_heap_t {
    _opaque: [u8; 0],
    _not_send_sync: core::marker::PhantomData<*mut u8>,
}

/// Opaque arena.
#[repr(C)]
pub struct kiln_arena_t {
    _opaque: [u8; 0],
    _not_send_sync: core::marker::PhantomData<*mut u8>,
}

/// Opaque pool.
#[repr(C)]
pub struct kiln_pool_t {
    _opaque: [u8; 0],
    _not_send_sync: core::marker::PhantomData<*mut u8>,
}

pub const KILN_ARENA_DEFAULT: u32 = 0;
pub const KILN_ARENA_THREAD_SAFE: u32 = 1 << 0;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kiln_arena_mark_t {
    pub chunk: *mut c_void,
    pub offset: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct kiln_arena_info_t {
    pub used: usize,
    pub capacity: usize,
    pub high_water: usize,
    pub chunks: usize,
}

pub const KILN_STATS_BINS: usize = 128;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct kiln_stats_t {
    pub allocated: usize,
    pub allocated_peak: usize,
    pub committed: usize,
    pub committed_peak: usize,
    pub mapped: usize,
    pub mapped_peak: usize,
    pub malloc_count: u64,
    pub free_count: u64,
    pub huge_count: u64,
    pub remote_free_count: u64,
    pub invalid_free_count: u64,
    pub segments_abandoned: u64,
    pub segments_reclaimed: u64,
    pub purges: u64,
    pub bin_count: usize,
    pub bin_block_size: [usize; KILN_STATS_BINS],
    pub bin_malloc_count: [u64; KILN_STATS_BINS],
    pub bin_current: [u64; KILN_STATS_BINS],
}

// SAFETY: these are the declarations of include/kiln.h, with size_t as usize,
// bool as bool and pointers as raw pointers; the layout test below keeps the
// structs in step with the header.
unsafe extern "C" {
    pub safe fn kiln_version() -> *const c_char;

    pub fn kiln_malloc(size: usize) -> *mut c_void;
    pub fn kiln_calloc(count: usize, size: usize) -> *mut c_void;
    pub fn kiln_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    pub fn kiln_free(p: *mut c_void);
    pub fn kiln_free_sized(p: *mut c_void, size: usize);
    pub fn kiln_free_aligned_sized(p: *mut c_void, alignment: usize, size: usize);
    pub fn kiln_aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    pub fn kiln_usable_size(p: *const c_void) -> usize;
    /// A table look-up that never dereferences `p`: safe for any value.
    pub safe fn kiln_owns(p: *const c_void) -> bool;

    pub fn kiln_heap_new() -> *mut kiln_heap_t;
    pub fn kiln_heap_destroy(heap: *mut kiln_heap_t);
    pub fn kiln_heap_reset(heap: *mut kiln_heap_t);
    pub fn kiln_heap_malloc(heap: *mut kiln_heap_t, size: usize) -> *mut c_void;
    pub fn kiln_heap_calloc(heap: *mut kiln_heap_t, count: usize, size: usize) -> *mut c_void;
    pub fn kiln_heap_realloc(heap: *mut kiln_heap_t, p: *mut c_void, size: usize) -> *mut c_void;
    pub fn kiln_heap_aligned_alloc(heap: *mut kiln_heap_t, alignment: usize, size: usize) -> *mut c_void;
    pub fn kiln_heap_set_limit(heap: *mut kiln_heap_t, bytes: usize);
    pub fn kiln_heap_allocated(heap: *const kiln_heap_t) -> usize;

    pub fn kiln_arena_new(chunk_size: usize, limit: usize, flags: u32) -> *mut kiln_arena_t;
    pub fn kiln_arena_new_fixed(buffer: *mut c_void, size: usize, flags: u32) -> *mut kiln_arena_t;
    pub fn kiln_arena_alloc(arena: *mut kiln_arena_t, size: usize, alignment: usize) -> *mut c_void;
    pub fn kiln_arena_mark(arena: *mut kiln_arena_t) -> kiln_arena_mark_t;
    pub fn kiln_arena_rewind(arena: *mut kiln_arena_t, mark: kiln_arena_mark_t);
    pub fn kiln_arena_reset(arena: *mut kiln_arena_t);
    pub fn kiln_arena_destroy(arena: *mut kiln_arena_t);
    pub fn kiln_arena_info(arena: *const kiln_arena_t) -> kiln_arena_info_t;

    pub fn kiln_pool_new(block_size: usize, alignment: usize) -> *mut kiln_pool_t;
    pub fn kiln_pool_alloc(pool: *mut kiln_pool_t) -> *mut c_void;
    pub fn kiln_pool_free(pool: *mut kiln_pool_t, p: *mut c_void);
    pub fn kiln_pool_destroy(pool: *mut kiln_pool_t);
    pub fn kiln_pool_trim(pool: *mut kiln_pool_t);
    pub fn kiln_pool_in_use(pool: *const kiln_pool_t) -> usize;
    pub fn kiln_pool_capacity_bytes(pool: *const kiln_pool_t) -> usize;

    pub safe fn kiln_set_limit(bytes: usize);
    pub safe fn kiln_get_limit() -> usize;
    pub fn kiln_stats_get(stats: *mut kiln_stats_t);
    pub safe fn kiln_collect(force: bool);

    /// csrc/abi.c: the C compiler's sizes and offsets, for the test below.
    #[cfg(test)]
    fn kiln_rs_layout(out: *mut *const usize) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Every struct kiln.h shares with Rust has the same size and field
    /// offsets on both sides (same order as csrc/abi.c's table).
    #[test]
    fn layouts_match_the_c_compiler() {
        let rust = [
            size_of::<kiln_stats_t>(),
            offset_of!(kiln_stats_t, allocated),
            offset_of!(kiln_stats_t, committed),
            offset_of!(kiln_stats_t, mapped),
            offset_of!(kiln_stats_t, malloc_count),
            offset_of!(kiln_stats_t, purges),
            offset_of!(kiln_stats_t, bin_count),
            offset_of!(kiln_stats_t, bin_block_size),
            offset_of!(kiln_stats_t, bin_malloc_count),
            offset_of!(kiln_stats_t, bin_current),
            KILN_STATS_BINS,
            size_of::<kiln_arena_mark_t>(),
            size_of::<kiln_arena_info_t>(),
            offset_of!(kiln_arena_info_t, high_water),
            offset_of!(kiln_arena_info_t, chunks),
            KILN_ARENA_THREAD_SAFE as usize,
            size_of::<bool>(),
        ];
        let mut table: *const usize = core::ptr::null();
        // SAFETY: kiln_rs_layout stores a pointer to a static array and
        // returns its length; the array lives for the whole program.
        let c = unsafe {
            let n = kiln_rs_layout(&mut table);
            core::slice::from_raw_parts(table, n)
        };
        assert_eq!(c, &rust[..], "src/ffi.rs has drifted from include/kiln.h");
    }
}
