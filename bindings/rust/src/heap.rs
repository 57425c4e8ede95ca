//! First-class heaps over `kiln_heap_*`.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

use crate::AllocError;
use crate::ffi;

/// Every Kiln block is aligned to 16 bytes; larger alignments go through the
/// aligned entry point (as in `Kiln`'s `GlobalAlloc`).
const MIN_ALIGN: usize = 16;

/// A first-class heap: its own blocks, its own optional budget, and
/// [`reset`](Heap::reset) or drop to release every block at once.
///
/// A heap belongs to the thread that created it (kiln.h), so `Heap` is neither
/// [`Send`] nor [`Sync`].  Its blocks, though, may be freed from any thread
/// while the heap lives: a [`HeapBox`] is `Send` when its value is.
///
/// ```
/// use std::alloc::Layout;
///
/// let heap = kiln::Heap::new();
/// heap.set_limit(1 << 20);
/// let greeting = heap.boxed(String::from("hello"));
/// assert!(heap.allocated() > 0);
/// let too_big = Layout::from_size_align(1 << 20, 8).unwrap();
/// assert!(heap.alloc(too_big).is_err()); // over the heap's budget
/// assert_eq!(*greeting, "hello");
/// ```
///
/// A heap cannot leave its thread:
///
/// ```compile_fail,E0277
/// let heap = kiln::Heap::new();
/// std::thread::spawn(move || drop(heap)); // `NonNull<kiln_heap_t>` cannot be sent between threads
/// ```
pub struct Heap {
    // The raw pointer also keeps Heap !Send and !Sync, as kiln.h requires.
    raw: NonNull<ffi::kiln_heap_t>,
}

impl Heap {
    /// A new, empty heap owned by the calling thread.
    ///
    /// # Panics
    ///
    /// If Kiln cannot create the heap (out of memory).
    #[must_use]
    pub fn new() -> Self {
        Self::try_new().expect("kiln: cannot create a heap")
    }

    /// A new, empty heap owned by the calling thread, or the error.
    pub fn try_new() -> Result<Self, AllocError> {
        // SAFETY: kiln_heap_new has no precondition; the heap it returns
        // belongs to this thread, and Heap is !Send so it stays here.
        let raw = unsafe { ffi::kiln_heap_new() };
        Ok(Heap {
            raw: NonNull::new(raw).ok_or(AllocError)?,
        })
    }

    /// A block that *fits* `layout` (uninitialised), allocated from this heap.
    /// Free it with [`Heap::dealloc`] (from any thread) before the heap is reset
    /// or dropped, after which it is invalid.
    pub fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let p = if layout.align() <= MIN_ALIGN {
            // SAFETY: self.raw is a live heap owned by this thread (Heap is
            // !Send); kiln_heap_malloc accepts any size.
            unsafe { ffi::kiln_heap_malloc(self.raw.as_ptr(), layout.size()) }
        } else {
            // SAFETY: as above; the alignment is a power of two (Layout).
            unsafe { ffi::kiln_heap_aligned_alloc(self.raw.as_ptr(), layout.align(), layout.size()) }
        };
        NonNull::new(p.cast()).ok_or(AllocError)
    }

    /// As [`alloc`](Heap::alloc), with the block's bytes zeroed.
    pub fn alloc_zeroed(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: as in alloc; kiln_heap_calloc zeroes the block.
            let p = unsafe { ffi::kiln_heap_calloc(self.raw.as_ptr(), 1, layout.size()) };
            return NonNull::new(p.cast()).ok_or(AllocError);
        }
        let p = self.alloc(layout)?;
        // SAFETY: p is a fresh block of at least layout.size() writable bytes.
        unsafe { p.as_ptr().write_bytes(0, layout.size()) };
        Ok(p)
    }

    /// Resizes a block of this heap to `new_size` bytes (keeping
    /// `layout.align()`), moving it if need be; the contents up to the smaller
    /// size are preserved.  On failure the block is unchanged and still allocated.
    ///
    /// # Safety
    ///
    /// `ptr` is a block currently allocated from this heap with `layout`.
    pub unsafe fn realloc(&self, ptr: NonNull<u8>, layout: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        let new_layout = Layout::from_size_align(new_size, layout.align()).map_err(|_| AllocError)?;
        if layout.align() <= MIN_ALIGN && new_size != 0 {
            // SAFETY: ptr is currently allocated from this live heap (caller);
            // new_size != 0, so kiln_heap_realloc resizes rather than frees,
            // and on failure leaves ptr allocated.
            let p = unsafe { ffi::kiln_heap_realloc(self.raw.as_ptr(), ptr.as_ptr().cast(), new_size) };
            return NonNull::new(p.cast()).ok_or(AllocError);
        }
        // kiln_heap_realloc promises only 16-byte alignment (and frees on 0).
        let new = self.alloc(new_layout)?;
        // SAFETY: ptr has layout.size() readable bytes, new has new_size
        // writable bytes, and distinct live blocks do not overlap; ptr is then
        // freed once, as the caller handed it over.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), layout.size().min(new_size));
            Self::dealloc(ptr);
        }
        Ok(new)
    }

    /// Frees a block of a heap.  Any thread may do so.
    ///
    /// # Safety
    ///
    /// `ptr` is a block currently allocated from a heap that is still alive
    /// (not reset or dropped since).
    pub unsafe fn dealloc(ptr: NonNull<u8>) {
        // SAFETY: kiln.h: blocks from a heap may be freed with kiln_free from
        // any thread before the heap is destroyed or reset; the caller
        // guarantees both.
        unsafe { ffi::kiln_free(ptr.as_ptr().cast()) }
    }

    /// Moves `value` into a block of this heap.
    ///
    /// # Panics
    ///
    /// If the heap's budget is reached or memory is exhausted;
    /// [`try_boxed`](Heap::try_boxed) returns the error instead.
    pub fn boxed<T>(&self, value: T) -> HeapBox<'_, T> {
        match self.try_boxed(value) {
            Ok(b) => b,
            Err(_) => panic!("kiln: heap out of memory ({} bytes)", size_of::<T>()),
        }
    }

    /// Moves `value` into a block of this heap, or fails (dropping `value`).
    pub fn try_boxed<T>(&self, value: T) -> Result<HeapBox<'_, T>, AllocError> {
        let p = self.alloc(Layout::new::<T>())?.cast::<T>();
        // SAFETY: p fits Layout::new::<T>() and is fresh.
        unsafe { p.as_ptr().write(value) };
        Ok(HeapBox {
            ptr: p,
            _heap: PhantomData,
        })
    }

    /// Sets this heap's budget, in bytes of blocks allocated (0: none); past
    /// it, its allocations fail.
    pub fn set_limit(&self, bytes: usize) {
        // SAFETY: self.raw is a live heap owned by this thread.
        unsafe { ffi::kiln_heap_set_limit(self.raw.as_ptr(), bytes) }
    }

    /// Bytes in blocks currently allocated from this heap.
    #[must_use]
    pub fn allocated(&self) -> usize {
        // SAFETY: self.raw is a live heap; the call only reads it.
        unsafe { ffi::kiln_heap_allocated(self.raw.as_ptr()) }
    }

    /// Frees every block of the heap at once; the heap stays usable.
    /// `&mut self` proves no [`HeapBox`] is alive; raw blocks from
    /// [`alloc`](Heap::alloc) become invalid.
    pub fn reset(&mut self) {
        // SAFETY: self.raw is a live heap owned by this thread; no HeapBox
        // borrows it (&mut self).
        unsafe { ffi::kiln_heap_reset(self.raw.as_ptr()) }
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        // SAFETY: self.raw came from kiln_heap_new on this thread (Heap is
        // !Send) and is destroyed once, here; no HeapBox outlives the borrow.
        unsafe { ffi::kiln_heap_destroy(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap").field("allocated", &self.allocated()).finish()
    }
}

/// A value in a block of a [`Heap`], freed when dropped — on any thread, so a
/// `HeapBox` is `Send` when `T` is, though the heap itself is not.
///
/// ```
/// let heap = kiln::Heap::new();
/// let b = heap.boxed(vec![1, 2, 3]);
/// std::thread::scope(|s| {
///     s.spawn(move || assert_eq!(b.len(), 3)); // dropped on the other thread
/// });
/// ```
pub struct HeapBox<'h, T> {
    ptr: NonNull<T>,
    /// Borrows the heap (so it is neither reset nor dropped while the box
    /// lives) without holding a `&Heap`, which would make the box !Send.
    _heap: PhantomData<(&'h (), T)>,
}

// SAFETY: the box owns its T; kiln_free may be called from any thread while
// the heap lives, which 'h guarantees.
unsafe impl<T: Send> Send for HeapBox<'_, T> {}
// SAFETY: &HeapBox gives out only &T.
unsafe impl<T: Sync> Sync for HeapBox<'_, T> {}

impl<T> HeapBox<'_, T> {
    /// Moves the value out and frees the block.
    #[must_use]
    pub fn into_inner(this: Self) -> T {
        let this = ManuallyDrop::new(this);
        // SAFETY: ptr holds an initialised T we own, read out once; the block
        // is freed without dropping the value again (ManuallyDrop).
        unsafe {
            let value = this.ptr.as_ptr().read();
            Heap::dealloc(this.ptr.cast());
            value
        }
    }
}

impl<T> Deref for HeapBox<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: ptr holds an initialised T owned by this box.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for HeapBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: ptr holds an initialised T owned by this box; &mut self is unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for HeapBox<'_, T> {
    fn drop(&mut self) {
        /// Frees the block even if T's destructor panics.
        struct Free(NonNull<u8>);
        impl Drop for Free {
            fn drop(&mut self) {
                // SAFETY: a block of a live heap ('h), freed exactly once, here.
                unsafe { Heap::dealloc(self.0) }
            }
        }
        let _free = Free(self.ptr.cast());
        // SAFETY: ptr holds an initialised T owned by this box, dropped once.
        unsafe { self.ptr.as_ptr().drop_in_place() }
    }
}

impl<T: fmt::Debug> fmt::Debug for HeapBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for HeapBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
