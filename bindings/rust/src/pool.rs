//! A typed fixed-size pool over `kiln_pool_*`.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::AllocError;
use crate::ffi;

/// A pool of blocks for values of one type: O(1) allocation and free, grown a
/// page at a time, empty pages handed back to the OS.
///
/// [`alloc`](Pool::alloc) returns a [`PoolBox`], which borrows the pool and
/// drops its value and frees its block when it goes out of scope.  The pool
/// may be shared between threads (`kiln_pool_*` is thread-safe), and a
/// `PoolBox` may be dropped on another thread than the one that allocated it.
///
/// ```
/// use kiln::Pool;
///
/// struct Node { value: u64, next: Option<usize> }
///
/// let pool = Pool::<Node>::new();
/// let mut a = pool.alloc(Node { value: 1, next: None });
/// let b = pool.alloc(Node { value: 2, next: Some(0) });
/// a.value += b.value;
/// assert_eq!((a.value, pool.in_use()), (3, 2));
/// drop(b);
/// assert_eq!(pool.in_use(), 1);
/// ```
///
/// A box cannot outlive its pool:
///
/// ```compile_fail,E0597
/// let escaped;
/// {
///     let pool = kiln::Pool::new();
///     escaped = pool.alloc(5u32);
/// } // `pool` dropped here while still borrowed
/// assert_eq!(*escaped, 5);
/// ```
pub struct Pool<T> {
    raw: NonNull<ffi::kiln_pool_t>,
    _values: PhantomData<T>,
}

// SAFETY: kiln.h: a pool is "safe to use from several threads", including
// destroying it from a thread other than its creator's.  T: Send because, through
// a shared pool, values of T are created on one thread and dropped wherever
// their PoolBox ends up.
unsafe impl<T: Send> Send for Pool<T> {}
// SAFETY: as above: every &self method is a thread-safe kiln_pool_* call.
unsafe impl<T: Send> Sync for Pool<T> {}

impl<T> Pool<T> {
    /// An empty pool for values of type `T`.
    ///
    /// # Panics
    ///
    /// If Kiln cannot create the pool (out of memory).
    #[must_use]
    pub fn new() -> Self {
        Self::try_new().expect("kiln: cannot create a pool")
    }

    /// An empty pool for values of type `T`, or the error.
    pub fn try_new() -> Result<Self, AllocError> {
        // A zero-sized T still gets a block (of its alignment): kiln_pool_new
        // rejects 0, and every PoolBox must be a distinct block it can free.
        // For any other T the size is already a multiple of the alignment.
        let block_size = mem::size_of::<T>().max(mem::align_of::<T>());
        // SAFETY: block_size != 0 and align_of is a power of two, as
        // kiln_pool_new requires; it returns a new pool owned by us, or null.
        let raw = unsafe { ffi::kiln_pool_new(block_size, mem::align_of::<T>()) };
        Ok(Pool {
            raw: NonNull::new(raw).ok_or(AllocError)?,
            _values: PhantomData,
        })
    }

    /// Moves `value` into a block of the pool.
    ///
    /// # Panics
    ///
    /// If no block can be had (out of memory, or Kiln's memory limit reached);
    /// [`try_alloc`](Pool::try_alloc) returns the error instead.
    pub fn alloc(&self, value: T) -> PoolBox<'_, T> {
        match self.try_alloc(value) {
            Ok(b) => b,
            Err(_) => panic!("kiln: pool out of memory ({} byte blocks)", mem::size_of::<T>()),
        }
    }

    /// Moves `value` into a block of the pool, or fails (dropping `value`).
    pub fn try_alloc(&self, value: T) -> Result<PoolBox<'_, T>, AllocError> {
        // SAFETY: self.raw is a live pool (owned by self); kiln_pool_alloc is
        // thread-safe and returns a block of the pool's size and alignment, or null.
        let p = unsafe { ffi::kiln_pool_alloc(self.raw.as_ptr()) };
        let p = NonNull::new(p.cast::<T>()).ok_or(AllocError)?;
        // SAFETY: the block holds size_of::<T>() bytes aligned for T (the pool
        // was made for T) and nothing else refers to it.
        unsafe { p.as_ptr().write(value) };
        Ok(PoolBox { ptr: p, pool: self })
    }

    /// Blocks currently allocated.
    #[must_use]
    pub fn in_use(&self) -> usize {
        // SAFETY: self.raw is a live pool; the call only reads counters.
        unsafe { ffi::kiln_pool_in_use(self.raw.as_ptr()) }
    }

    /// Bytes of pages the pool holds.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        // SAFETY: self.raw is a live pool; the call only reads counters.
        unsafe { ffi::kiln_pool_capacity_bytes(self.raw.as_ptr()) }
    }

    /// Gives the free blocks waiting in the pool's per-thread caches (up to
    /// 32 per thread) back to their pages, and empty pages but one back to
    /// the OS, now.
    pub fn trim(&self) {
        // SAFETY: self.raw is a live pool; kiln_pool_trim may run while other
        // threads use the pool (it skips a cache that is in use).
        unsafe { ffi::kiln_pool_trim(self.raw.as_ptr()) }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        // SAFETY: self.raw came from kiln_pool_new and is destroyed once, here;
        // every PoolBox borrows the pool, so none is alive.  Values leaked with
        // PoolBox::leak or mem::forget are never touched again.
        unsafe { ffi::kiln_pool_destroy(self.raw.as_ptr()) }
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("block_size", &mem::size_of::<T>())
            .field("in_use", &self.in_use())
            .field("capacity_bytes", &self.capacity_bytes())
            .finish()
    }
}

/// A value in a block of a [`Pool`]; dropping it drops the value and returns
/// the block to the pool.
pub struct PoolBox<'a, T> {
    ptr: NonNull<T>,
    pool: &'a Pool<T>,
}

// SAFETY: a PoolBox owns its T (as Box<T> does), so it may move to another
// thread when T may; kiln_pool_free is thread-safe, and &Pool<T> is Send
// because Pool<T>: Sync for T: Send.
unsafe impl<T: Send> Send for PoolBox<'_, T> {}
// SAFETY: &PoolBox gives out only &T.
unsafe impl<T: Sync> Sync for PoolBox<'_, T> {}

impl<'a, T> PoolBox<'a, T> {
    /// Moves the value out and returns the block to the pool.
    #[must_use]
    pub fn into_inner(this: Self) -> T {
        let this = ManuallyDrop::new(this);
        // SAFETY: this.ptr holds an initialised T that we own; it is read out
        // once and the block freed without dropping it (ManuallyDrop keeps
        // Drop from running), so the value is not dropped twice.
        unsafe {
            let value = this.ptr.as_ptr().read();
            ffi::kiln_pool_free(this.pool.raw.as_ptr(), this.ptr.as_ptr().cast());
            value
        }
    }

    /// Gives up the box: the value stays in the pool, never dropped, for as
    /// long as the pool is borrowed.
    #[must_use]
    pub fn leak(this: Self) -> &'a mut T {
        let this = ManuallyDrop::new(this);
        // SAFETY: the block stays allocated until the pool is destroyed, which
        // cannot happen while it is borrowed for 'a; we gave up the only owner.
        unsafe { &mut *this.ptr.as_ptr() }
    }

    /// The address of the value.
    #[must_use]
    pub fn as_ptr(this: &Self) -> *const T {
        this.ptr.as_ptr()
    }
}

impl<T> Deref for PoolBox<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: ptr holds an initialised T owned by this box.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for PoolBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: ptr holds an initialised T owned by this box; &mut self is unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for PoolBox<'_, T> {
    fn drop(&mut self) {
        /// Frees the block even if T's destructor panics.
        struct Free<'p, T>(&'p Pool<T>, *mut T);
        impl<T> Drop for Free<'_, T> {
            fn drop(&mut self) {
                // SAFETY: the pointer is a block of this live pool, currently
                // allocated, freed exactly once (here); its value has been dropped.
                unsafe { ffi::kiln_pool_free(self.0.raw.as_ptr(), self.1.cast()) }
            }
        }
        let _free = Free(self.pool, self.ptr.as_ptr());
        // SAFETY: ptr holds an initialised T owned by this box, dropped once.
        unsafe { self.ptr.as_ptr().drop_in_place() }
    }
}

impl<T: fmt::Debug> fmt::Debug for PoolBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for PoolBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
