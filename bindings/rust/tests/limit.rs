//! Process-wide controls — the memory limit and collection — with Kiln as the
//! global allocator.  In a binary of their own, as one test, because a limit
//! would make allocations of concurrently running tests fail.

use std::alloc::{self, Layout};
use std::hint::black_box;

use kiln::{Kiln, Stats};

#[global_allocator]
static GLOBAL: Kiln = Kiln;

const MIB: usize = 1 << 20;

#[test]
fn limit_and_collect() {
    // Statistics are a consistent snapshot when nothing else runs.
    let s = Stats::get();
    assert!(s.allocated_peak >= s.allocated, "{s:#?}");
    assert!(s.committed_peak >= s.committed && s.mapped_peak >= s.mapped, "{s:#?}");
    assert!(s.mapped >= s.committed, "{s:#?}");
    assert!(s.malloc_count >= s.free_count, "{s:#?}");

    assert_eq!(Kiln::limit(), 0);
    let budget = s.committed + 32 * MIB;
    Kiln::set_limit(budget);
    assert_eq!(Kiln::limit(), budget);

    // Over the budget: a null pointer, and the fallible APIs report it.
    let big = Layout::from_size_align(256 * MIB, 16).unwrap();
    // SAFETY: non-zero size; an (unexpected) success is freed with its layout.
    unsafe {
        // black_box: keeps the optimiser from assuming the allocation succeeds.
        let p = black_box(alloc::alloc(big));
        if !p.is_null() {
            alloc::dealloc(p, big);
            panic!("a 256 MiB allocation succeeded under a {budget} byte limit");
        }
    }
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve_exact(256 * MIB).is_err());
    // Under it, allocation still works.
    let small: Vec<u64> = (0..100_000).collect();
    assert_eq!(small[99_999], 99_999);
    assert!(Stats::get().committed <= budget);

    // Lifting the limit makes room again.
    Kiln::set_limit(0);
    v.try_reserve_exact(256 * MIB).expect("no limit, yet 256 MiB failed");
    v.resize(256 * MIB, 1);
    assert!(Stats::get().committed >= 256 * MIB);
    drop(v);
    drop(small);

    // Collecting hands free memory back.
    Kiln::collect(true);
    let after = Stats::get();
    assert!(
        after.committed < 256 * MIB,
        "collect(true) kept {} bytes committed",
        after.committed
    );
    Kiln::collect(false);
}
