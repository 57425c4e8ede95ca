/* stats.c — the memory limit and the statistics: process-wide atomic
 * counters for OS memory, event counters striped by thread, per-page and
 * per-thread counters for blocks, merged on demand by kiln_stats_get. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heap.h"
#include "segment.h"
#include "stats.h"

void kiln_threads_stats(kiln_tld_stats_t *out); /* thread.c */

static _Atomic size_t memory_limit;   /* 0 = none */
static _Atomic size_t committed;      /* bytes committed (the limit's measure) */
static _Atomic size_t committed_peak;
static _Atomic size_t mapped;
static _Atomic size_t mapped_peak;
static _Atomic long long allocated_estimate; /* page-granular, see kiln_stats_page_used */
static _Atomic long long allocated_peak;
static _Atomic long long huge_bytes;

/* Event counters, striped by thread: a thread adds to its own cache line
 * (its thread number's stripe, internal.h: the first 64 threads each have
 * their own) and readers sum the stripes.  One shared counter was a scaling
 * bug: a thread that frees but
 * never allocates counts every free here (REMOTE_FREES_NO_HEAP), and with 8
 * such threads on a 16-core machine the one contended line made xmalloc
 * (8 producer/consumer pairs) 2.5x slower than mimalloc.  (The same idea as
 * the per-CPU counters of Linux's percpu_counter, with threads for CPUs.) */
#define EVENT_STRIPES 64
typedef struct event_stripe_s {
  _Alignas(64) _Atomic uint64_t count[KILN_STAT_COUNT];
} event_stripe_t;
static event_stripe_t event_stripes[EVENT_STRIPES];

static const char *const event_descriptions[KILN_STAT_COUNT] = {
#define KILN_STAT_DESC(name, desc) desc,
  KILN_STAT_EVENTS(KILN_STAT_DESC)
#undef KILN_STAT_DESC
};

static void raise_peak(_Atomic size_t *peak, size_t value) {
  size_t old = atomic_load_explicit(peak, memory_order_relaxed);
  while (value > old && !atomic_compare_exchange_weak_explicit(peak, &old, value, memory_order_relaxed,
                                                                memory_order_relaxed)) {
  }
}

static void raise_peak_ll(_Atomic long long *peak, long long value) {
  long long old = atomic_load_explicit(peak, memory_order_relaxed);
  while (value > old && !atomic_compare_exchange_weak_explicit(peak, &old, value, memory_order_relaxed,
                                                                memory_order_relaxed)) {
  }
}

/* --- the limit ---------------------------------------------------------------- */
void kiln_set_limit(size_t bytes) { atomic_store_explicit(&memory_limit, bytes, memory_order_relaxed); }
size_t kiln_get_limit(void) { return atomic_load_explicit(&memory_limit, memory_order_relaxed); }

bool kiln_limit_reserve(size_t size) {
  size_t limit = atomic_load_explicit(&memory_limit, memory_order_relaxed);
  size_t now = atomic_load_explicit(&committed, memory_order_relaxed);
  for (;;) {
    if (limit != 0 && (now + size < now || now + size > limit)) {
      errno = ENOMEM;
      return false;
    }
    if (atomic_compare_exchange_weak_explicit(&committed, &now, now + size, memory_order_relaxed,
                                              memory_order_relaxed))
      break;
  }
  raise_peak(&committed_peak, now + size);
  return true;
}

void kiln_limit_release(size_t size) { atomic_fetch_sub_explicit(&committed, size, memory_order_relaxed); }

/* --- OS counters --------------------------------------------------------------- */
/* Committed bytes are counted by kiln_limit_reserve/release (the limit's
 * measure); these count address space. */
void kiln_stats_mapped(size_t bytes) {
  size_t now = atomic_fetch_add_explicit(&mapped, bytes, memory_order_relaxed) + bytes;
  raise_peak(&mapped_peak, now);
}
void kiln_stats_unmapped(size_t bytes) { atomic_fetch_sub_explicit(&mapped, bytes, memory_order_relaxed); }

void kiln_stats_count(kiln_stat_t stat, uint64_t n) {
  /* Atomic all the same: after 64 threads, stripes are shared. */
  atomic_fetch_add_explicit(&event_stripes[kiln_thread_number() % EVENT_STRIPES].count[stat], n, memory_order_relaxed);
}

uint64_t kiln_stats_event(kiln_stat_t stat) {
  uint64_t total = 0;
  for (size_t i = 0; i < EVENT_STRIPES; i++)
    total += atomic_load_explicit(&event_stripes[i].count[stat], memory_order_relaxed);
  return total;
}

void kiln_stats_huge_bytes(long long delta) {
  atomic_fetch_add_explicit(&huge_bytes, delta, memory_order_relaxed);
  kiln_stats_allocated_delta(delta);
}

size_t kiln_stats_huge_in_use(void) {
  long long bytes = atomic_load_explicit(&huge_bytes, memory_order_relaxed);
  return bytes > 0 ? (size_t)bytes : 0;
}

void kiln_stats_allocated_delta(long long delta) {
  long long now = atomic_fetch_add_explicit(&allocated_estimate, delta, memory_order_relaxed) + delta;
  raise_peak_ll(&allocated_peak, now);
}

/* --- merging ---------------------------------------------------------------------- */
static void visit_segment(kiln_segment_t *segment, void *arg) {
  kiln_stats_t *stats = arg;
  if (segment->kind == KILN_SEGMENT_HUGE) {
    stats->allocated += segment->pages[0].block_size;
    return;
  }
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *page = &segment->pages[i];
    if (!page->segment_in_use) continue;
    /* Owners change these without synchronisation: a relaxed read gives a
     * value that was true at some recent moment, which is all a snapshot
     * of a running program can promise. */
    uint32_t used = __atomic_load_n(&page->used, __ATOMIC_RELAXED);
    uint64_t count = __atomic_load_n(&page->alloc_count, __ATOMIC_RELAXED);
    uint16_t capacity = __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
    /* alloc_count counts blocks put on `free`; those still there (at most
     * capacity - used) were not handed out yet: a lower bound, exact when
     * the owner has just collected. */
    uint64_t idle = capacity > used ? (uint64_t)(capacity - used) : 0;
    count = count > idle ? count - idle : 0;
    unsigned bin = __atomic_load_n(&page->bin, __ATOMIC_RELAXED);
    if (bin >= KILN_BIN_COUNT) continue;
    stats->allocated += (size_t)used * kiln_bin_size[bin];
    stats->bin_current[bin] += used;
    stats->bin_malloc_count[bin] += count;
  }
}

void kiln_stats_get(kiln_stats_t *stats) {
  /* The calling thread's pages first get their freed blocks collected, so
   * their counts are exact (those of running threads are a snapshot). */
  kiln_heap_t *own = kiln_heap_get_default();
  if (own != &kiln_heap_empty)
    for (kiln_heap_t *h = own->tld->heaps; h != NULL; h = h->next) kiln_heap_collect_lists(h);
  memset(stats, 0, sizeof *stats);
  kiln_segment_visit_all(visit_segment, stats);
  kiln_tld_stats_t threads;
  kiln_threads_stats(&threads);
  stats->bin_count = KILN_BIN_COUNT;
  uint64_t live = 0;
  for (size_t bin = 0; bin < KILN_BIN_COUNT; bin++) {
    stats->bin_block_size[bin] = kiln_bin_size[bin];
    stats->bin_malloc_count[bin] += threads.bin_alloc_count[bin];
    stats->malloc_count += stats->bin_malloc_count[bin];
    live += stats->bin_current[bin];
  }
  uint64_t huge_allocs = kiln_stats_event(KILN_STAT_HUGE_ALLOCS);
  uint64_t huge_frees = kiln_stats_event(KILN_STAT_HUGE_FREES);
  stats->malloc_count += huge_allocs;
  stats->huge_count = huge_allocs;
  stats->free_count = stats->malloc_count - live - (huge_allocs - huge_frees);
  stats->allocated_peak = (size_t)atomic_load_explicit(&allocated_peak, memory_order_relaxed);
  if (stats->allocated_peak < stats->allocated) stats->allocated_peak = stats->allocated;
  stats->committed = atomic_load_explicit(&committed, memory_order_relaxed);
  stats->committed_peak = atomic_load_explicit(&committed_peak, memory_order_relaxed);
  stats->mapped = atomic_load_explicit(&mapped, memory_order_relaxed);
  stats->mapped_peak = atomic_load_explicit(&mapped_peak, memory_order_relaxed);
  stats->remote_free_count = threads.remote_frees + kiln_stats_event(KILN_STAT_REMOTE_FREES_NO_HEAP);
  stats->invalid_free_count = kiln_stats_event(KILN_STAT_INVALID_FREES);
  stats->segments_abandoned = kiln_stats_event(KILN_STAT_SEGMENTS_ABANDONED);
  stats->segments_reclaimed = kiln_stats_event(KILN_STAT_SEGMENTS_RECLAIMED);
  stats->purges = kiln_stats_event(KILN_STAT_PURGES);
}

/* --- printing (no stdio inside: kiln_format into a buffer, then the
 * caller's FILE or stderr's file descriptor) ------------------------------------ */
typedef void line_sink(void *arg, const char *line);

static void emit(line_sink *sink, void *arg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit(line_sink *sink, void *arg, const char *fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  kiln_format(line, sizeof line, fmt, args);
  va_end(args);
  sink(arg, line);
}

static void print_stats(line_sink *sink, void *arg, bool per_bin) {
  kiln_stats_t stats;
  kiln_stats_get(&stats);
  emit(sink, arg, "kiln: statistics (version %s)", kiln_version());
  emit(sink, arg, "  allocations       %llu", (unsigned long long)stats.malloc_count);
  emit(sink, arg, "  frees             %llu", (unsigned long long)stats.free_count);
  emit(sink, arg, "  remote frees      %llu", (unsigned long long)stats.remote_free_count);
  emit(sink, arg, "  allocated bytes   %zu (peak %zu)", stats.allocated, stats.allocated_peak);
  emit(sink, arg, "  committed bytes   %zu (peak %zu)", stats.committed, stats.committed_peak);
  emit(sink, arg, "  mapped bytes      %zu (peak %zu)", stats.mapped, stats.mapped_peak);
  for (int e = 0; e < KILN_STAT_COUNT; e++)
    emit(sink, arg, "  %llu %s", (unsigned long long)kiln_stats_event((kiln_stat_t)e), event_descriptions[e]);
  if (!per_bin) return;
  emit(sink, arg, "  block size: allocations, live blocks");
  for (size_t bin = 1; bin < stats.bin_count; bin++) {
    if (stats.bin_malloc_count[bin] == 0 && stats.bin_current[bin] == 0) continue;
    emit(sink, arg, "  %zu: %llu, %llu", stats.bin_block_size[bin],
         (unsigned long long)stats.bin_malloc_count[bin], (unsigned long long)stats.bin_current[bin]);
  }
}

static void sink_stderr(void *arg, const char *line) {
  (void)arg;
  kiln_message("%s", line);
}

static void sink_file(void *arg, const char *line) {
  fputs(line, (FILE *)arg);
  fputc('\n', (FILE *)arg);
}

void kiln_stats_print(FILE *out) {
  if (out == NULL || out == stderr) print_stats(sink_stderr, NULL, true);
  else print_stats(sink_file, out, true);
}

void kiln_stats_print_summary(void) { print_stats(sink_stderr, NULL, false); }

void kiln_collect(bool force) {
  kiln_heap_t *heap = kiln_heap_get_default();
  if (heap == &kiln_heap_empty) heap = kiln_thread_init();
  if (force) kiln_segment_reclaim(heap, SIZE_MAX);
  for (kiln_heap_t *h = heap->tld->heaps; h != NULL; h = h->next) kiln_heap_collect(h, force);
  if (force) kiln_segment_cache_clear();
}
