//! `Kiln` as Rust's global allocator, and the process-wide controls.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::CStr;
use core::ptr;

use crate::ffi;
use crate::stats::Stats;

/// Every block Kiln hands out is aligned to at least 16 bytes (kiln.h: a block
/// *fits* when its address is a multiple of the requested alignment "and
/// always of 16"), so layouts up to this alignment need no aligned entry point.
const MIN_ALIGN: usize = 16;

/// The Kiln allocator.
///
/// Make it Rust's global allocator with one line:
///
/// ```
/// use kiln::Kiln;
///
/// #[global_allocator]
/// static GLOBAL: Kiln = Kiln;
///
/// fn main() {
///     let v: Vec<u64> = (0..1000).collect();
///     assert!(Kiln::owns(v.as_ptr().cast()));
/// }
/// ```
///
/// Layouts aligned to 16 bytes or less go to `kiln_malloc`, `kiln_calloc`
/// and `kiln_realloc`; larger alignments to `kiln_aligned_alloc`.  Blocks are
/// freed with the sized frees (`kiln_free_sized`, `kiln_free_aligned_sized`),
/// so Kiln's checking mode (`KILN_CHECK=1`) also verifies that every
/// deallocation names the layout the block was allocated with.
///
/// Failure is reported as Rust expects, by a null pointer: the standard
/// collections then call [`std::alloc::handle_alloc_error`], and the `try_`
/// methods (`Vec::try_reserve`, ...) return an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kiln;

impl Kiln {
    /// Hands free memory back to the OS now.  `force` also reclaims memory
    /// abandoned by exited threads and empties the segment caches.
    pub fn collect(force: bool) {
        ffi::kiln_collect(force);
    }

    /// Sets the process-wide budget, in bytes of memory Kiln has committed from
    /// the OS (0 removes it).  Past the budget allocations fail (return null);
    /// freeing memory makes room again.  Same as `KILN_LIMIT=512M` in the
    /// environment.
    pub fn set_limit(bytes: usize) {
        ffi::kiln_set_limit(bytes);
    }

    /// The current process-wide budget in bytes (0: none).
    #[must_use]
    pub fn limit() -> usize {
        ffi::kiln_get_limit()
    }

    /// The version of the Kiln C library linked in, e.g. `"0.1.0"`.
    ///
    /// ```
    /// assert_eq!(kiln::Kiln::version(), "0.1.0");
    /// ```
    #[must_use]
    pub fn version() -> &'static str {
        let p = ffi::kiln_version();
        // SAFETY: kiln_version returns a pointer to a NUL-terminated string
        // constant with static storage duration (kiln.h: "0.1.0").
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str().unwrap_or("?")
    }

    /// Statistics merged over all threads: see [`Stats`].
    #[must_use]
    pub fn stats() -> Stats {
        Stats::get()
    }

    /// Whether `ptr` is a block Kiln currently has allocated or points into
    /// memory Kiln manages.  Never dereferences `ptr`, so any value is fine.
    #[must_use]
    pub fn owns(ptr: *const u8) -> bool {
        ffi::kiln_owns(ptr.cast())
    }

    /// The usable size of a block: at least the size it was allocated with;
    /// every byte of it may be read and written.  0 for null and for pointers
    /// Kiln did not hand out.
    ///
    /// # Safety
    ///
    /// `ptr` is null or a block Kiln currently has allocated (not one already
    /// freed: Kiln may read its metadata).
    #[must_use]
    pub unsafe fn usable_size(ptr: *const u8) -> usize {
        // SAFETY: the caller upholds kiln_usable_size's precondition, stated
        // above; the function only reads Kiln's own metadata.
        unsafe { ffi::kiln_usable_size(ptr.cast()) }
    }
}

// SAFETY: GlobalAlloc's contract is met by Kiln's (kiln.h):
// - a non-null result *fits* the layout: at least layout.size() bytes, aligned
//   to layout.align() (kiln_malloc & co. give 16, which covers every align
//   <= MIN_ALIGN; kiln_aligned_alloc gives any power of two, and Layout's
//   alignment is always a power of two);
// - failure returns null (never aborts, never unwinds: the C code cannot
//   unwind into Rust), and a failed realloc leaves the block allocated;
// - Kiln is thread-safe, as a global allocator must be, and does not call
//   back into Rust's global allocator (its memory comes from the OS).
unsafe impl GlobalAlloc for Kiln {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: kiln_malloc accepts any size (0 gives a unique block,
            // oversized requests give null); 16-byte alignment covers layout.
            unsafe { ffi::kiln_malloc(layout.size()).cast() }
        } else {
            // SAFETY: layout.align() is a power of two, which is all
            // kiln_aligned_alloc requires; the size need not be a multiple of it.
            unsafe { ffi::kiln_aligned_alloc(layout.align(), layout.size()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: as in alloc; kiln_calloc zeroes the block (1 * size
            // cannot overflow).
            unsafe { ffi::kiln_calloc(1, layout.size()).cast() }
        } else {
            // SAFETY: this is our own alloc, called with the caller's layout.
            let p = unsafe { self.alloc(layout) };
            if !p.is_null() {
                // SAFETY: p is a fresh block of at least layout.size() writable bytes.
                unsafe { ptr::write_bytes(p, 0, layout.size()) };
            }
            p
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: GlobalAlloc::dealloc's caller guarantees ptr is currently
            // allocated by this allocator with `layout`, hence (see alloc and
            // realloc) by kiln_malloc/kiln_calloc/kiln_realloc with exactly
            // layout.size() bytes, as free_sized requires.
            unsafe { ffi::kiln_free_sized(ptr.cast(), layout.size()) }
        } else {
            // SAFETY: as above; over-aligned blocks always come from
            // kiln_aligned_alloc(layout.align(), layout.size()) (realloc never
            // resizes them in place), as free_aligned_sized requires.
            unsafe { ffi::kiln_free_aligned_sized(ptr.cast(), layout.align(), layout.size()) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN && new_size != 0 {
            // SAFETY: ptr is currently allocated with `layout` (caller), so by
            // kiln_malloc/calloc/realloc; new_size != 0, so kiln_realloc
            // resizes rather than frees; on failure it returns null and leaves
            // ptr allocated, as GlobalAlloc::realloc requires.
            return unsafe { ffi::kiln_realloc(ptr.cast(), new_size).cast() };
        }
        // Over-aligned (kiln_realloc only promises 16-byte alignment), or
        // new_size == 0 (which Rust never asks for, but kiln_realloc would
        // answer by freeing): allocate, copy, free.
        // SAFETY: GlobalAlloc::realloc's caller guarantees that new_size,
        // rounded up to layout.align(), does not overflow isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: our own alloc; robust for a zero size (see alloc).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: ptr has layout.size() readable bytes, new has new_size
            // writable bytes, and two blocks both currently allocated do not
            // overlap.  Then ptr is freed with the layout it was allocated with.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
