//! A safe linear (bump) arena over `kiln_arena_*`.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ops::Deref;
use core::ptr::{self, NonNull};

use crate::AllocError;
use crate::ffi;

/// A linear arena: allocation bumps a pointer, and memory is released all at
/// once — by [`reset`](Arena::reset), by dropping a [`Checkpoint`], or by
/// dropping the arena.
///
/// Allocations borrow the arena, so none can outlive it, and the arena cannot
/// be reset while one is alive.  Values placed in the arena are **never
/// dropped** (their memory is reclaimed wholesale): use it for plain data, or
/// accept that destructors do not run.
///
/// `Arena<'static>` grows in chunks from the OS ([`Arena::new`],
/// [`Arena::with_limit`]); `Arena<'buf>` works inside a buffer borrowed for
/// `'buf` ([`Arena::new_fixed`]) and never asks the OS for memory.
///
/// An arena belongs to one thread at a time: it is [`Send`] but not [`Sync`].
///
/// ```
/// use kiln::Arena;
///
/// let arena = Arena::new();
/// let point = arena.alloc((1.0f64, 2.0f64));
/// let name = arena.alloc_str("kiln");
/// let data = arena.alloc_slice_copy(&[1u32, 2, 3]);
/// point.0 += 1.0;
/// data[0] = 7;
/// assert_eq!((*point, &*name, &*data), ((2.0, 2.0), "kiln", &[7, 2, 3][..]));
/// ```
///
/// A reference cannot outlive its arena:
///
/// ```compile_fail,E0597
/// let escaped: &mut u32;
/// {
///     let arena = kiln::Arena::new();
///     escaped = arena.alloc(5u32);
/// } // `arena` dropped here while still borrowed
/// *escaped += 1;
/// ```
///
/// Nor can the arena be reset while a reference into it is alive:
///
/// ```compile_fail,E0502
/// let mut arena = kiln::Arena::new();
/// let x = arena.alloc(5u32);
/// arena.reset(); // cannot borrow `arena` as mutable: `x` borrows it
/// *x += 1;
/// ```
pub struct Arena<'buf> {
    raw: NonNull<ffi::kiln_arena_t>,
    /// The borrowed buffer of a fixed arena ('static for a growing one).
    _buffer: PhantomData<&'buf mut [MaybeUninit<u8>]>,
}

// SAFETY: kiln.h: an arena without KILN_ARENA_THREAD_SAFE "belongs to one
// thread at a time" — any thread, so moving it is fine.  It stays !Sync (from
// the raw pointer): `alloc` takes &self, and two threads bumping a
// non-thread-safe arena at once would race.  Values left in the arena are never
// touched again once their borrows end, so moving the arena moves no T.
unsafe impl Send for Arena<'_> {}

/// Sizes and usage of an arena (`kiln_arena_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaInfo {
    /// Bytes handed out since creation, reset or rewind, alignment padding included.
    pub used: usize,
    /// Bytes of buffer or chunks currently held.
    pub capacity: usize,
    /// Largest `used` ever seen.
    pub high_water: usize,
    /// Chunks currently held (1 for a fixed arena).
    pub chunks: usize,
}

impl Arena<'static> {
    /// A growing arena with Kiln's default chunk size (64 KiB) and no limit.
    /// It takes its first chunk on its first allocation.
    ///
    /// # Panics
    ///
    /// If Kiln cannot allocate the arena itself (out of memory).
    #[must_use]
    pub fn new() -> Self {
        Self::with_limit(0, 0).expect("kiln: cannot create an arena")
    }

    /// A growing arena that takes chunks of `chunk_size` bytes (0: the default,
    /// 64 KiB; chunks grow to fit large requests) up to `limit` bytes of chunks
    /// in all (0: no limit).  Past the limit, allocation fails.
    pub fn with_limit(chunk_size: usize, limit: usize) -> Result<Self, AllocError> {
        // SAFETY: kiln_arena_new accepts any sizes; it returns a new arena
        // owned by the caller, or null.
        let raw = unsafe { ffi::kiln_arena_new(chunk_size, limit, ffi::KILN_ARENA_DEFAULT) };
        Ok(Arena {
            raw: NonNull::new(raw).ok_or(AllocError)?,
            _buffer: PhantomData,
        })
    }
}

impl Default for Arena<'static> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'buf> Arena<'buf> {
    /// An arena working inside `buffer` only (some of which Kiln may use for
    /// the arena's own header).  Fails if the buffer is too small to hold even
    /// that.
    ///
    /// ```
    /// use std::mem::MaybeUninit;
    ///
    /// let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
    /// let arena = kiln::Arena::new_fixed(&mut buffer).unwrap();
    /// assert_eq!(*arena.alloc(41u8) + 1, 42);
    /// assert!(arena.try_alloc_slice_copy(&[0u8; 8192]).is_err()); // full: no OS memory
    /// ```
    pub fn new_fixed(buffer: &'buf mut [MaybeUninit<u8>]) -> Result<Self, AllocError> {
        // SAFETY: the buffer is valid for writes of buffer.len() bytes and is
        // exclusively borrowed for 'buf, which the arena (and through it every
        // allocation) cannot outlive; kiln_arena_new_fixed never frees it.
        let raw =
            unsafe { ffi::kiln_arena_new_fixed(buffer.as_mut_ptr().cast(), buffer.len(), ffi::KILN_ARENA_DEFAULT) };
        Ok(Arena {
            raw: NonNull::new(raw).ok_or(AllocError)?,
            _buffer: PhantomData,
        })
    }

    /// Uninitialised memory for `layout`, valid until the arena is reset,
    /// rewound past this point, or dropped (which the returned raw pointer does
    /// not enforce: that is up to the caller).
    pub fn alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            // No bytes to hand out: a dangling pointer with the right alignment
            // is a valid zero-sized allocation and costs the arena nothing.
            return Ok(dangling(layout));
        }
        // SAFETY: self.raw is a live arena (owned by self); layout.align() is a
        // power of two, as kiln_arena_alloc requires.  &self is enough: this
        // arena is !Sync, so no other thread can be inside it.
        let p = unsafe { ffi::kiln_arena_alloc(self.raw.as_ptr(), layout.size(), layout.align()) };
        let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
        debug_assert!(p.as_ptr().addr() % layout.align() == 0, "kiln_arena_alloc misaligned");
        Ok(p)
    }

    /// Moves `value` into the arena.  It is never dropped.
    ///
    /// # Panics
    ///
    /// If the arena is full (its limit or buffer reached, or the OS out of
    /// memory); [`try_alloc`](Arena::try_alloc) returns the error instead.
    #[allow(clippy::mut_from_ref)] // each call hands out fresh, disjoint memory
    pub fn alloc<T>(&self, value: T) -> &mut T {
        self.try_alloc(value).unwrap_or_else(|_| full(Layout::new::<T>()))
    }

    /// Moves `value` into the arena, or fails if the arena is full.
    #[allow(clippy::mut_from_ref)] // each call hands out fresh, disjoint memory
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, AllocError> {
        let p = self.alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: p is valid for writes of a T and aligned for it (alloc_layout),
        // and no other reference points at it: the memory is fresh.  It stays
        // valid while self is borrowed: releasing it needs &mut self (reset,
        // checkpoint) or dropping self.
        unsafe {
            p.as_ptr().write(value);
            Ok(&mut *p.as_ptr())
        }
    }

    /// Copies `src` into the arena.
    ///
    /// # Panics
    ///
    /// If the arena is full; see [`alloc`](Arena::alloc).
    #[allow(clippy::mut_from_ref)] // each call hands out fresh, disjoint memory
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        self.try_alloc_slice_copy(src)
            .unwrap_or_else(|_| full(Layout::for_value(src)))
    }

    /// Copies `src` into the arena, or fails if the arena is full.
    #[allow(clippy::mut_from_ref)] // each call hands out fresh, disjoint memory
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        let p = self.alloc_layout(Layout::for_value(src))?.cast::<T>();
        // SAFETY: p is fresh memory of size_of_val(src) bytes aligned for T,
        // so it cannot overlap src; T: Copy, so a bitwise copy is a valid
        // copy.  Validity as in try_alloc.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
            Ok(core::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
        }
    }

    /// Copies `s` into the arena.
    ///
    /// # Panics
    ///
    /// If the arena is full; see [`alloc`](Arena::alloc).
    #[allow(clippy::mut_from_ref)] // each call hands out fresh, disjoint memory
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: the bytes are a copy of a str, hence valid UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// Sizes and usage.
    #[must_use]
    pub fn info(&self) -> ArenaInfo {
        // SAFETY: self.raw is a live arena; kiln_arena_info only reads it.
        let i = unsafe { ffi::kiln_arena_info(self.raw.as_ptr()) };
        ArenaInfo {
            used: i.used,
            capacity: i.capacity,
            high_water: i.high_water,
            chunks: i.chunks,
        }
    }

    /// Marks the arena's current position; dropping the returned guard rewinds
    /// to it, releasing everything allocated through the guard.  Allocate
    /// through the guard (it dereferences to the arena); the arena itself is
    /// borrowed until the guard is dropped, and what the guard hands out cannot
    /// outlive it.  Checkpoints nest.
    ///
    /// ```
    /// let mut arena = kiln::Arena::new();
    /// arena.alloc(1u64);
    /// let before = arena.info().used;
    /// {
    ///     let scratch = arena.checkpoint();
    ///     let tmp = scratch.alloc_slice_copy(&[0u8; 1000]);
    ///     tmp[0] = 1;
    ///     assert!(scratch.info().used >= before + 1000);
    /// } // rewound here
    /// assert_eq!(arena.info().used, before);
    /// ```
    ///
    /// A reference from inside a checkpoint cannot be used after it rewinds:
    ///
    /// ```compile_fail,E0597
    /// let mut arena = kiln::Arena::new();
    /// let leaked;
    /// {
    ///     let scratch = arena.checkpoint();
    ///     leaked = scratch.alloc(5u32);
    /// } // `scratch` dropped here while still borrowed
    /// assert_eq!(*leaked, 5);
    /// ```
    ///
    /// and the arena cannot be used directly while the checkpoint is open:
    ///
    /// ```compile_fail,E0502
    /// let mut arena = kiln::Arena::new();
    /// let scratch = arena.checkpoint();
    /// let x = arena.alloc(5u32); // `arena` is mutably borrowed by `scratch`
    /// drop(scratch);
    /// ```
    pub fn checkpoint(&mut self) -> Checkpoint<'_, 'buf> {
        // SAFETY: self.raw is a live arena and &mut self excludes every other
        // use of it, as kiln_arena_mark requires.
        let mark = unsafe { ffi::kiln_arena_mark(self.raw.as_ptr()) };
        Checkpoint { arena: self, mark }
    }

    /// Releases everything allocated so far (a growing arena keeps one chunk).
    /// `&mut self` proves no reference into the arena is alive.
    pub fn reset(&mut self) {
        // SAFETY: self.raw is a live arena; &mut self means no allocation
        // borrowed from it is still in use and no other call is in progress.
        unsafe { ffi::kiln_arena_reset(self.raw.as_ptr()) }
    }
}

impl Drop for Arena<'_> {
    fn drop(&mut self) {
        // SAFETY: self.raw came from kiln_arena_new[_fixed] and is destroyed
        // once, here; no borrow of self (so no allocation) outlives this.
        unsafe { ffi::kiln_arena_destroy(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Arena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena").field("info", &self.info()).finish()
    }
}

/// A mark in an [`Arena`]: dropping it rewinds the arena to where it was
/// when [`Arena::checkpoint`] made it.
///
/// Holds the arena mutably borrowed and dereferences to it, so everything
/// allocated while it exists is allocated through it, and lives no longer.
#[must_use = "dropping a checkpoint at once rewinds at once"]
pub struct Checkpoint<'a, 'buf> {
    arena: &'a mut Arena<'buf>,
    mark: ffi::kiln_arena_mark_t,
}

impl<'buf> Checkpoint<'_, 'buf> {
    /// A nested checkpoint, rewound (on drop) before this one.
    pub fn checkpoint(&mut self) -> Checkpoint<'_, 'buf> {
        self.arena.checkpoint()
    }
}

impl<'buf> Deref for Checkpoint<'_, 'buf> {
    type Target = Arena<'buf>;

    fn deref(&self) -> &Arena<'buf> {
        // Not DerefMut: `reset` (or a checkpoint taken behind this one's back)
        // inside a checkpoint would invalidate its mark.
        self.arena
    }
}

impl Drop for Checkpoint<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the mark was taken on this arena, and since then the arena
        // has only been used through this guard (it holds the &mut), so it
        // has not been reset or rewound past the mark (nested checkpoints
        // borrow this guard mutably and are dropped first).  Every allocation
        // made since borrows this guard, so none is alive now.
        unsafe { ffi::kiln_arena_rewind(self.arena.raw.as_ptr(), self.mark) }
    }
}

impl fmt::Debug for Checkpoint<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint").field("arena", &*self.arena).finish()
    }
}

/// A well-aligned, non-null pointer for a zero-sized allocation.
pub(crate) fn dangling(layout: Layout) -> NonNull<u8> {
    // The address is the alignment: non-zero, and a multiple of itself.  No
    // byte is ever accessed through it.
    NonNull::new(ptr::without_provenance_mut(layout.align())).expect("an alignment is never zero")
}

#[cold]
#[inline(never)]
fn full(layout: Layout) -> ! {
    panic!(
        "kiln: arena full (asked for {} bytes, alignment {})",
        layout.size(),
        layout.align()
    )
}
