/* stats.h — process-wide counters (src/stats.c).  Per-page and per-thread
 * counts live in the page and tld structures and are merged on demand. */
#ifndef KILN_STATS_H
#define KILN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* One table of event counters: X(name, description). */
#define KILN_STAT_EVENTS(X)                                                  \
  X(HUGE_ALLOCS, "allocations served by a dedicated mapping")              \
  X(HUGE_FREES, "dedicated mappings freed")                                \
  X(INVALID_FREES, "frees of pointers Kiln did not hand out")              \
  X(SEGMENTS_ABANDONED, "segments given up by exiting threads")            \
  X(SEGMENTS_RECLAIMED, "abandoned segments taken over by another thread") \
  X(PURGES, "runs of memory handed back to the OS")                        \
  X(REMOTE_FREES_NO_HEAP, "remote frees by threads that never allocated")  \
  X(THREADS_STARTED, "threads that allocated")

typedef enum kiln_stat_e {
#define KILN_STAT_ENUM(name, desc) KILN_STAT_##name,
  KILN_STAT_EVENTS(KILN_STAT_ENUM)
#undef KILN_STAT_ENUM
  KILN_STAT_COUNT
} kiln_stat_t;

void kiln_stats_count(kiln_stat_t stat, uint64_t n);
uint64_t kiln_stats_event(kiln_stat_t stat);

/* Bytes in huge blocks, and the process allocation estimate. */
void kiln_stats_huge_bytes(long long delta);
void kiln_stats_allocated_delta(long long delta);
/* Bytes in huge blocks currently allocated. */
size_t kiln_stats_huge_in_use(void);

/* Print the summary (KILN_SHOW_STATS=1 at exit). */
void kiln_stats_print_summary(void);

#endif /* KILN_STATS_H */
