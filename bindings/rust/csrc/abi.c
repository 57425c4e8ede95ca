/* abi.c — the layout of kiln.h's structs as the C compiler sees it.
 *
 * The Rust crate mirrors these structs with #[repr(C)] (src/ffi.rs); its
 * tests compare every size and offset below with Rust's, so a field added to
 * kiln.h without the mirror being updated fails `cargo test` instead of
 * corrupting memory.  Compiled into libkiln.a by build.rs; not part of Kiln.
 */
#include <stddef.h>

#include "kiln.h"

/* One entry per fact; the Rust side walks the same list in the same order. */
static const size_t kiln_rs_layout_table[] = {
  sizeof(kiln_stats_t),
  offsetof(kiln_stats_t, allocated),
  offsetof(kiln_stats_t, committed),
  offsetof(kiln_stats_t, mapped),
  offsetof(kiln_stats_t, malloc_count),
  offsetof(kiln_stats_t, purges),
  offsetof(kiln_stats_t, bin_count),
  offsetof(kiln_stats_t, bin_block_size),
  offsetof(kiln_stats_t, bin_malloc_count),
  offsetof(kiln_stats_t, bin_current),
  KILN_STATS_BINS,
  sizeof(kiln_arena_mark_t),
  sizeof(kiln_arena_info_t),
  offsetof(kiln_arena_info_t, high_water),
  offsetof(kiln_arena_info_t, chunks),
  KILN_ARENA_THREAD_SAFE,
  sizeof(bool),
};

/* Number of entries; *out points at the first. */
size_t kiln_rs_layout(const size_t **out) {
  *out = kiln_rs_layout_table;
  return sizeof kiln_rs_layout_table / sizeof kiln_rs_layout_table[0];
}
