//! Kiln, the malloc replacement, for Rust.
//!
//! Make Kiln the allocator of a whole program with one line:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: kiln::Kiln = kiln::Kiln;
//!
//! fn main() {
//!     let words: Vec<String> = "kiln fires pots".split(' ').map(String::from).collect();
//!     assert!(kiln::Kiln::owns(words.as_ptr().cast()));
//!     assert!(kiln::Kiln::stats().malloc_count > 0);
//! }
//! ```
//!
//! Beyond the global allocator, the crate wraps Kiln's toolkit in safe types:
//!
//! - [`Arena`]: bump allocation whose results borrow the arena, with
//!   [`Checkpoint`] guards that rewind it on drop;
//! - [`Pool<T>`](Pool): O(1) blocks for one type, handed out as [`PoolBox`]es;
//! - [`Heap`]: a first-class heap that belongs to its thread, with a budget
//!   and a reset-all;
//! - [`Stats`], [`Kiln::collect`], [`Kiln::set_limit`], [`Kiln::version`].
//!
//! These work whether or not `Kiln` is the global allocator.
//!
//! The build script compiles Kiln's C sources (`../../src/*.c`) with the
//! system C compiler (`CC`, default `cc`) into a static library; the C
//! library's own `malloc` is left in place, and Rust calls Kiln through its
//! `kiln_*` entry points.  Environment variables such as `KILN_LIMIT`,
//! `KILN_CHECK` and `KILN_SHOW_STATS` work as for C programs.

#![warn(missing_docs)]

mod arena;
pub mod ffi;
mod global;
mod heap;
mod pool;
mod stats;

use core::fmt;

pub use arena::{Arena, ArenaInfo, Checkpoint};
pub use global::Kiln;
pub use heap::{Heap, HeapBox};
pub use pool::{Pool, PoolBox};
pub use stats::{BinStats, Stats};

/// An allocation that Kiln could not satisfy: out of memory, or a limit (the
/// process's, a heap's, an arena's) or a fixed buffer reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocError;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory allocation failed")
    }
}

impl std::error::Error for AllocError {}

/// The README's examples, run as doc-tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
