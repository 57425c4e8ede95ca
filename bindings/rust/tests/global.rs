//! Kiln as the global allocator of this test binary: every allocation below,
//! the test harness's own included, goes through `Kiln`'s `GlobalAlloc`.
//!
//! The tests run in parallel threads of one process, so none of them changes
//! process-wide state (the memory limit lives in tests/limit.rs).

use std::alloc::{self, GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use kiln::{Arena, Heap, Kiln, Pool, Stats};

#[global_allocator]
static GLOBAL: Kiln = Kiln;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Fills `len` bytes at `p` with a pattern that depends on the offset and
/// `seed`, so that a block moved to the wrong place or truncated is caught.
/// The pattern repeats every 251 bytes (a prime: no alignment lines it up).
unsafe fn fill(p: *mut u8, len: usize, seed: u8) {
    let chunk: Vec<u8> = (0..251u32 * 64).map(|i| (i % 251) as u8 ^ seed).collect();
    let mut off = 0;
    while off < len {
        let n = chunk.len().min(len - off);
        // SAFETY: the caller gives len writable bytes at p; off + n <= len.
        unsafe { ptr::copy_nonoverlapping(chunk.as_ptr(), p.add(off), n) };
        off += n;
    }
}

/// Whether `len` bytes at `p` hold `fill(p, len, seed)`'s pattern.
unsafe fn check(p: *const u8, len: usize, seed: u8) -> bool {
    let chunk: Vec<u8> = (0..251u32 * 64).map(|i| (i % 251) as u8 ^ seed).collect();
    // SAFETY: the caller gives len readable bytes at p.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    bytes.chunks(chunk.len()).all(|c| c == &chunk[..c.len()])
}

fn is_aligned(p: *const u8, align: usize) -> bool {
    p.addr() % align == 0
}

#[test]
fn kiln_is_the_global_allocator() {
    let before = Stats::get();
    let b = Box::new([7u8; 100]);
    let v: Vec<u64> = (0..10_000).collect();
    assert!(Kiln::owns(b.as_ptr()), "a Box did not come from Kiln");
    assert!(Kiln::owns(v.as_ptr().cast()), "a Vec's buffer did not come from Kiln");
    assert!(!Kiln::owns(ptr::null()));
    let on_stack = 0u64;
    assert!(!Kiln::owns((&raw const on_stack).cast()), "Kiln claims a stack address");
    // SAFETY: b is a live block from Kiln.
    assert!(unsafe { Kiln::usable_size(b.as_ptr()) } >= 100);
    // Only monotonic counters here: other tests allocate concurrently.
    let after = Stats::get();
    assert!(after.malloc_count >= before.malloc_count + 2);
    assert!(after.allocated_peak >= before.allocated_peak && after.committed_peak > 0);
}

#[test]
fn version_and_stats() {
    assert_eq!(Kiln::version(), "0.1.0");
    let s = Kiln::stats();
    assert!(!s.bins.is_empty(), "no size classes in the statistics");
    assert!(
        s.bins.windows(2).all(|w| w[0].block_size < w[1].block_size),
        "bins not ascending"
    );
    assert!(s.bins.iter().all(|b| b.block_size % 16 == 0 || b.block_size < 16));
    Kiln::collect(false);
    Kiln::collect(true);
}

#[test]
fn collections() {
    let mut v = Vec::new();
    for i in 0..200_000u32 {
        v.push(i);
    }
    assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 199_999 * 200_000 / 2);
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10).collect::<Vec<_>>());

    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..20_000 {
        map.entry(format!("key-{}", i % 5000)).or_default().push(i);
    }
    assert_eq!(map.len(), 5000);
    assert_eq!(map["key-42"], vec![42, 5042, 10042, 15042]);
    map.retain(|k, _| k.ends_with('7'));
    assert_eq!(map.len(), 500);

    let tree: BTreeMap<u64, Box<str>> = (0..10_000).map(|i| (i * 7919 % 10_007, i.to_string().into())).collect();
    assert_eq!(tree.len(), 10_000);
    assert_eq!(&*tree[&(5 * 7919 % 10_007)], "5");

    let mut dq: VecDeque<Rc<String>> = VecDeque::new();
    let shared = Rc::new(String::from("shared"));
    for _ in 0..1000 {
        dq.push_front(Rc::clone(&shared));
        dq.push_back(Rc::new("x".repeat(100)));
    }
    assert_eq!(Rc::strong_count(&shared), 1001);
    dq.clear();
    assert_eq!(Rc::strong_count(&shared), 1);

    let mut s = String::new();
    for i in 0..10_000 {
        s.push_str(&i.to_string());
    }
    assert_eq!(s.len(), 38_890);
    let dyns: Vec<Box<dyn Fn(u32) -> u32>> = (0..100u32)
        .map(|k| Box::new(move |x| x + k) as Box<dyn Fn(u32) -> u32>)
        .collect();
    assert_eq!(dyns.iter().map(|f| f(1)).sum::<u32>(), 100 + 4950);
}

#[test]
fn threads_allocate_and_free_concurrently() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut live: Vec<Vec<u8>> = Vec::new();
                for i in 0..20_000usize {
                    let size = (i * 37 + t * 11) % 3000 + 1;
                    live.push(vec![(i % 256) as u8; size]);
                    if i % 3 == 0 {
                        let j = (i * 7) % live.len();
                        live.swap_remove(j);
                    }
                }
                live.iter().all(|v| v.iter().all(|&b| b == v[0]))
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap(), "a block was corrupted");
    }
}

#[test]
fn blocks_allocated_in_one_thread_dropped_in_another() {
    let before = Stats::get().remote_free_count;
    let (tx, rx) = mpsc::channel::<Vec<Box<[u64]>>>();
    let consumer = thread::spawn(move || {
        let mut total = 0usize;
        for batch in rx {
            for (i, b) in batch.iter().enumerate() {
                assert!(b.iter().all(|&x| x == i as u64));
                total += b.len();
            }
            // the batch and its boxes are freed here, by a thread that did not allocate them
        }
        total
    });
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for _ in 0..50 {
                    let batch: Vec<Box<[u64]>> = (0..200)
                        .map(|i| vec![i as u64; i % 64 + 1].into_boxed_slice())
                        .collect();
                    tx.send(batch).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap(); // producers exit while their blocks are still alive elsewhere
    }
    let total = consumer.join().unwrap();
    assert_eq!(total, 4 * 50 * (0..200).map(|i| i % 64 + 1).sum::<usize>());
    assert!(
        Stats::get().remote_free_count > before,
        "cross-thread frees not counted"
    );
}

#[test]
fn blocks_outlive_the_thread_that_allocated_them() {
    let shared = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let mine: Vec<String> = (0..2000).map(|i| format!("{t}:{i}")).collect();
                shared.lock().unwrap().push(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Every thread has exited; its blocks must still be intact, then freeable here.
    let all = Arc::try_unwrap(shared).unwrap().into_inner().unwrap();
    for v in &all {
        let t = &v[0][..v[0].find(':').unwrap()];
        assert!(v.iter().enumerate().all(|(i, s)| *s == format!("{t}:{i}")));
    }
    drop(all);
    // New threads can reuse what the old ones left.
    thread::spawn(|| drop(vec![0u8; 100_000])).join().unwrap();
}

#[test]
fn zero_sized_layouts() {
    let mut units = Vec::new();
    for _ in 0..1_000_000 {
        units.push(());
    }
    assert_eq!(units.len(), 1_000_000);
    let b = Box::new(());
    let e: Box<[u64]> = Vec::new().into_boxed_slice();
    assert_eq!((*b, e.len()), ((), 0));
    // Rust never hands a zero-sized layout to a GlobalAlloc, but Kiln's is
    // robust to it: a unique, aligned, freeable block.
    for align in [1, 16, 64, 4096] {
        let layout = Layout::from_size_align(0, align).unwrap();
        // SAFETY: calling our own implementation, which documents that a zero
        // size is accepted; p is freed with the same layout.
        unsafe {
            let p = Kiln.alloc(layout);
            let q = Kiln.alloc_zeroed(layout);
            assert!(!p.is_null() && !q.is_null() && p != q);
            assert!(is_aligned(p, align) && is_aligned(q, align));
            Kiln.dealloc(p, layout);
            // realloc to zero (which Rust never asks for) gives a fresh block, not a free
            let r = Kiln.realloc(q, Layout::from_size_align(0, align).unwrap(), 0);
            assert!(!r.is_null() && is_aligned(r, align));
            Kiln.dealloc(r, layout);
        }
    }
}

#[test]
fn large_alignments() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let pages: Vec<Box<Page>> = (0..64).map(|i| Box::new(Page([i as u8; 4096]))).collect();
    for (i, p) in pages.iter().enumerate() {
        assert!(is_aligned(p.0.as_ptr(), 4096));
        assert!(p.0.iter().all(|&b| b == i as u8));
    }
    let mut v: Vec<Page> = Vec::new();
    for i in 0..40 {
        v.push(Page([i; 4096])); // grows by realloc of a 4096-aligned layout
        assert!(is_aligned(v.as_ptr().cast(), 4096));
    }
    assert!(v.iter().enumerate().all(|(i, p)| p.0[4095] == i as u8));

    for align in [32, 64, 256, 4096, 64 * KIB, MIB, 4 * MIB] {
        for size in [1, 24, align, 3 * align + 5] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: layout has a non-zero size; every block is used within
            // its size and freed with the layout it currently has.
            unsafe {
                let p = alloc::alloc(layout);
                assert!(!p.is_null(), "alloc({size}, {align}) failed");
                assert!(is_aligned(p, align), "alloc({size}, {align}) misaligned: {p:p}");
                fill(p, size, 1);
                let z = alloc::alloc_zeroed(layout);
                assert!(!z.is_null() && is_aligned(z, align));
                assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                alloc::dealloc(z, layout);
                // grow then shrink: alignment kept, contents preserved
                let big = alloc::realloc(p, layout, size * 2 + 100);
                assert!(!big.is_null() && is_aligned(big, align));
                assert!(check(big, size, 1));
                let small = alloc::realloc(
                    big,
                    Layout::from_size_align(size * 2 + 100, align).unwrap(),
                    size.div_ceil(2),
                );
                assert!(!small.is_null() && is_aligned(small, align));
                assert!(check(small, size.div_ceil(2), 1));
                alloc::dealloc(small, Layout::from_size_align(size.div_ceil(2), align).unwrap());
            }
        }
    }
}

/// small -> 1 MiB -> 64 MiB -> small, contents preserved at each step, for an
/// ordinary alignment (kiln_realloc) and a large one (allocate, copy, free).
#[test]
fn realloc_across_sizes() {
    for align in [8, 16, 128, 4096] {
        let sizes = [40, MIB, 64 * MIB, 100, 3 * KIB, 16];
        let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
        // SAFETY: each block is used within its current layout and passed to
        // realloc/dealloc with that layout.
        unsafe {
            let mut p = alloc::alloc(layout);
            assert!(!p.is_null());
            fill(p, layout.size(), 3);
            for &new_size in &sizes[1..] {
                let q = alloc::realloc(p, layout, new_size);
                assert!(
                    !q.is_null(),
                    "realloc {} -> {new_size} (align {align}) failed",
                    layout.size()
                );
                assert!(is_aligned(q, align));
                let kept = layout.size().min(new_size);
                assert!(
                    check(q, kept, 3),
                    "realloc {} -> {new_size} (align {align}) lost data",
                    layout.size()
                );
                layout = Layout::from_size_align(new_size, align).unwrap();
                fill(q, new_size, 3);
                p = q;
            }
            alloc::dealloc(p, layout);
        }
    }
    // The same through Vec, which grows by doubling and shrinks on request.
    let mut v: Vec<u8> = Vec::with_capacity(10);
    for i in 0..MIB {
        v.push(i as u8);
    }
    v.resize(64 * MIB + 3, 0xEE);
    assert!(v[MIB..].iter().all(|&b| b == 0xEE));
    v.truncate(1000);
    v.shrink_to_fit();
    assert!(v.capacity() < 64 * MIB);
    assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
}

#[test]
fn huge_layouts_fail_without_aborting() {
    let huge = [isize::MAX as usize - 4 * MIB, 1 << 62, 1 << 56];
    for size in huge {
        for align in [1, 16, 4096, MIB] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size; nothing is dereferenced.
            unsafe {
                // black_box: an allocation whose pointer is only compared with
                // null may be assumed to succeed and removed by the optimiser.
                let p = black_box(alloc::alloc(layout));
                assert!(p.is_null(), "alloc({size:#x}, {align}) succeeded");
                let z = black_box(alloc::alloc_zeroed(layout));
                assert!(z.is_null(), "alloc_zeroed({size:#x}, {align}) succeeded");
            }
        }
    }
    // A failed realloc leaves the block as it was.
    let layout = Layout::from_size_align(1000, 16).unwrap();
    // SAFETY: the block is used within its layout and freed with it.
    unsafe {
        let p = alloc::alloc(layout);
        assert!(!p.is_null());
        fill(p, 1000, 9);
        assert!(black_box(alloc::realloc(p, layout, 1 << 62)).is_null());
        assert!(check(p, 1000, 9));
        alloc::dealloc(p, layout);
    }
    // The fallible collection APIs report the failure.
    let mut v: Vec<u64> = vec![1, 2, 3];
    assert!(v.try_reserve(1 << 59).is_err());
    assert_eq!(v, [1, 2, 3]);
    let mut s = String::from("kiln");
    assert!(s.try_reserve(1 << 60).is_err());
    assert_eq!(s, "kiln");
    // And Kiln is still healthy.
    assert_eq!(vec![5u8; MIB].iter().map(|&b| b as usize).sum::<usize>(), 5 * MIB);
}

// ---------------------------------------------------------------------------
// The safe wrappers, with Kiln as the global allocator too.

#[test]
fn arena_allocates_and_grows() {
    let arena = Arena::new();
    let mut refs = Vec::new();
    for i in 0..100_000u64 {
        refs.push(arena.alloc(i * 3)); // well past one 64 KiB chunk
    }
    assert!(refs.iter().enumerate().all(|(i, r)| **r == i as u64 * 3));
    *refs[5] = 0;
    assert_eq!(*refs[5], 0);
    let info = arena.info();
    assert!(
        info.used >= 100_000 * 8 && info.capacity >= info.used && info.chunks > 1,
        "{info:?}"
    );

    let big = arena.alloc_slice_copy(&vec![7u16; MIB]); // larger than a chunk
    assert!(big.iter().all(|&x| x == 7));
    let s = arena.alloc_str("héllo, kiln");
    s.make_ascii_uppercase();
    assert_eq!(s, "HéLLO, KILN");

    #[repr(align(256))]
    struct Wide(u8);
    let w = arena.alloc(Wide(9));
    assert!(is_aligned((&raw const *w).cast(), 256) && w.0 == 9);
    let zst = arena.alloc(());
    let empty: &mut [u64] = arena.alloc_slice_copy(&[]);
    assert_eq!((*zst, empty.len()), ((), 0));
}

#[test]
fn arena_checkpoints_rewind() {
    let mut arena = Arena::new();
    arena.alloc_str("kept");
    let base = arena.info().used;
    {
        let mut outer = arena.checkpoint();
        let a = outer.alloc([1u8; 500]);
        assert_eq!(a[499], 1);
        let mid = outer.info().used;
        assert!(mid >= base + 500);
        {
            let inner = outer.checkpoint();
            for i in 0..50_000u32 {
                inner.alloc(i); // forces new chunks
            }
            assert!(inner.info().used > mid);
        }
        assert_eq!(outer.info().used, mid, "the inner checkpoint did not rewind");
        let b = outer.alloc(2u32);
        assert_eq!(*b, 2);
    }
    assert_eq!(arena.info().used, base, "the checkpoint did not rewind");
    assert!(arena.info().high_water >= base + 50_000 * 4);
    arena.reset();
    assert_eq!(arena.info().used, 0);
    assert_eq!(*arena.alloc(3u8), 3); // usable after reset
}

#[test]
fn arena_limits_and_fixed_buffers() {
    let limited = Arena::with_limit(4 * KIB, 64 * KIB).unwrap();
    let mut got = 0;
    while limited.try_alloc_slice_copy(&[0u8; 1000]).is_ok() {
        got += 1;
        assert!(got < 1000, "the arena's limit is not enforced");
    }
    assert!(got >= 32, "only {got} KB of a 64 KiB limit");
    assert!(limited.info().capacity <= 64 * KIB);

    let mut buffer = [MaybeUninit::<u8>::uninit(); 8 * KIB];
    let range = buffer.as_ptr_range();
    let mut fixed = Arena::new_fixed(&mut buffer).unwrap();
    let x = fixed.alloc(0xABCDu32);
    assert!(
        range.contains(&(&raw const *x).cast()),
        "a fixed arena allocated outside its buffer"
    );
    assert!(fixed.try_alloc([0u8; 16 * KIB]).is_err());
    let mut n = 0u32;
    while fixed.try_alloc(n).is_ok() {
        n += 1;
    }
    // Kiln aligns arena blocks to at least 16 bytes: ~8 KiB / 16.
    assert!(n > 400, "only {n} blocks in an 8 KiB buffer");
    fixed.reset();
    assert!(fixed.try_alloc_slice_copy(&[1u8; 4 * KIB]).is_ok());

    let mut tiny = [MaybeUninit::<u8>::uninit(); 1];
    assert!(Arena::new_fixed(&mut tiny).is_err());
}

#[test]
#[should_panic(expected = "arena full")]
fn arena_alloc_panics_when_full() {
    let mut buffer = [MaybeUninit::<u8>::uninit(); 1024];
    let arena = Arena::new_fixed(&mut buffer).unwrap();
    arena.alloc([0u8; 2048]);
}

#[test]
fn arena_moves_between_threads() {
    let arena = Arena::new();
    arena.alloc(1u32);
    let arena = thread::spawn(move || {
        assert_eq!(*arena.alloc(2u32), 2);
        arena
    })
    .join()
    .unwrap();
    assert!(arena.info().used >= 8);
}

#[test]
fn pool_boxes_drop_and_free() {
    struct Counted(Arc<AtomicUsize>, [u64; 4]);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let pool = Pool::<Counted>::new();
    {
        let boxes: Vec<_> = (0..10_000)
            .map(|i| pool.alloc(Counted(Arc::clone(&drops), [i; 4])))
            .collect();
        assert_eq!(pool.in_use(), 10_000);
        assert!(pool.capacity_bytes() >= 10_000 * size_of::<Counted>());
        assert!(boxes.iter().enumerate().all(|(i, b)| b.1 == [i as u64; 4]));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 10_000);
    assert_eq!(pool.in_use(), 0);

    let b = pool.alloc(Counted(Arc::clone(&drops), [9; 4]));
    let inner = kiln::PoolBox::into_inner(b);
    assert_eq!((inner.1, pool.in_use()), ([9; 4], 0));
    drop(inner);
    assert_eq!(drops.load(Ordering::Relaxed), 10_001);

    let leaked = kiln::PoolBox::leak(pool.alloc(Counted(Arc::clone(&drops), [1; 4])));
    leaked.1[0] = 2;
    assert_eq!(pool.in_use(), 1);

    let units = Pool::<()>::new();
    let (a, b) = (units.alloc(()), units.alloc(()));
    assert_ne!(kiln::PoolBox::as_ptr(&a), kiln::PoolBox::as_ptr(&b));
    #[repr(align(128))]
    struct Wide(u8);
    let wide = Pool::<Wide>::new();
    let w = wide.alloc(Wide(4));
    assert!(is_aligned(kiln::PoolBox::as_ptr(&w).cast(), 128) && w.0 == 4);
}

#[test]
fn pool_shared_between_threads() {
    let pool = Pool::<[u32; 8]>::new();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for t in 0..4u32 {
            let tx = tx.clone();
            let pool = &pool;
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in 0..5000u32 {
                    let b = pool.alloc([t * 100_000 + i; 8]);
                    if i % 2 == 0 { tx.send(b).unwrap() } else { mine.push(b) }
                }
                assert!(mine.iter().all(|b| b[0] / 100_000 == t));
            });
        }
        drop(tx);
        // This thread frees the boxes the others allocated, while they run.
        let mut n = 0;
        for b in rx {
            assert!(b.iter().all(|&x| x == b[0]));
            n += 1;
        }
        assert_eq!(n, 4 * 2500);
    });
    assert_eq!(pool.in_use(), 0);
    // The threads' caches still hold some pages; trim gives them back but one.
    pool.trim();
    assert!(pool.capacity_bytes() <= 64 * 1024, "{} bytes left", pool.capacity_bytes());
}

#[test]
fn heaps_allocate_limit_and_reset() {
    let mut heap = Heap::new();
    {
        let strings: Vec<_> = (0..1000).map(|i| heap.boxed(i.to_string())).collect();
        assert!(heap.allocated() >= 1000 * size_of::<String>());
        assert!(strings.iter().enumerate().all(|(i, s)| **s == i.to_string()));
        let moved = kiln::HeapBox::into_inner(heap.boxed(vec![1, 2, 3]));
        assert_eq!(moved, [1, 2, 3]);
    }
    assert_eq!(heap.allocated(), 0, "boxes dropped, heap not empty");

    for align in [8, 16, 64, 4096, MIB] {
        let layout = Layout::from_size_align(3000, align).unwrap();
        let p = heap.alloc_zeroed(layout).unwrap();
        assert!(is_aligned(p.as_ptr(), align));
        // SAFETY: p is a block of this heap with `layout`; each step uses the
        // block within its current size and frees it once.
        unsafe {
            assert!(std::slice::from_raw_parts(p.as_ptr(), 3000).iter().all(|&b| b == 0));
            fill(p.as_ptr(), 3000, 5);
            let q = heap.realloc(p, layout, 2 * MIB).unwrap();
            assert!(is_aligned(q.as_ptr(), align) && check(q.as_ptr(), 3000, 5));
            let r = heap
                .realloc(q, Layout::from_size_align(2 * MIB, align).unwrap(), 100)
                .unwrap();
            assert!(is_aligned(r.as_ptr(), align) && check(r.as_ptr(), 100, 5));
            Heap::dealloc(r);
        }
    }

    let raw = heap.alloc(Layout::from_size_align(128 * KIB, 16).unwrap()).unwrap();
    assert!(heap.allocated() >= 128 * KIB);
    assert!(Kiln::owns(raw.as_ptr()));
    heap.reset(); // frees `raw` with everything else
    assert_eq!(heap.allocated(), 0);
    assert_eq!(*heap.boxed(7u8), 7);
}

/// kiln.h: the heap's budget is in "bytes of blocks allocated", whatever the
/// blocks' sizes, and whatever pages the heap happens to hold.
#[test]
fn heap_limit_counts_blocks_allocated() {
    let heap = Heap::new();
    heap.set_limit(256 * KIB);
    let small = heap.try_boxed(5u64).expect("8 bytes under a 256 KiB limit");
    for size in [512 * KIB, 2 * MIB, 64 * MIB] {
        let layout = Layout::from_size_align(size, 16).unwrap();
        assert!(
            heap.alloc(layout).is_err(),
            "{size} bytes allocated under a 256 KiB limit"
        );
    }
    drop(small);

    // A heap that holds pages but no blocks is at 0 bytes of its budget.
    let fresh = Heap::new();
    drop((0..2000).map(|i| fresh.boxed([i as u8; 100])).collect::<Vec<_>>());
    let p = fresh.alloc(Layout::from_size_align(100 * KIB, 16).unwrap()).unwrap();
    // SAFETY: p is a live block of `fresh`, freed once.
    unsafe { Heap::dealloc(p) };
    assert_eq!(fresh.allocated(), 0);
    fresh.set_limit(64 * KIB);
    assert!(
        fresh.try_boxed(5u64).is_ok(),
        "8 bytes refused under a 64 KiB limit with 0 bytes allocated"
    );
}

/// Blocks above Kiln's largest page-backed size (huge blocks) belong to the
/// heap like any other: counted in `allocated`, released by `reset`.
#[test]
fn heap_huge_blocks_belong_to_the_heap() {
    let mut heap = Heap::new();
    let p = heap.alloc(Layout::from_size_align(4 * MIB, 16).unwrap()).unwrap();
    // SAFETY: p is a fresh block of 4 MiB.
    unsafe { fill(p.as_ptr(), 4 * MIB, 2) };
    assert!(
        heap.allocated() >= 4 * MIB,
        "a 4 MiB block not counted: {}",
        heap.allocated()
    );
    heap.reset();
    assert_eq!(heap.allocated(), 0);
}

#[test]
fn heap_boxes_dropped_on_other_threads() {
    let heap = Heap::new();
    let boxes: Vec<_> = (0..2000).map(|i| heap.boxed([i as u64; 16])).collect();
    let before = heap.allocated();
    thread::scope(|s| {
        let mut boxes = boxes;
        while !boxes.is_empty() {
            let batch: Vec<_> = boxes.drain(..boxes.len().min(500)).collect();
            s.spawn(move || {
                assert!(batch.iter().all(|b| b.iter().all(|&x| x == b[0])));
                // dropped here, on a thread that does not own the heap
            });
        }
    });
    // The heap's own thread goes on using it after the remote frees.
    let mine = heap.boxed(1u32);
    assert_eq!(*mine, 1);
    assert!(before >= 2000 * 128);
}

#[test]
fn heaps_on_many_threads() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let heap = Heap::new();
                let v: Vec<_> = (0..5000).map(|i| heap.boxed((t, i))).collect();
                v.iter().enumerate().all(|(i, b)| **b == (t, i))
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
}
