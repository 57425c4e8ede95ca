/* memory_limit.c — a program that stays under a memory budget.
 *
 * A cache of documents (4 KiB .. 512 KiB each) lives under a process-wide
 * budget set with kiln_set_limit (the same as KILN_LIMIT=...): when an
 * allocation returns NULL with errno ENOMEM, the program evicts its oldest
 * entries, asks Kiln to hand the freed memory back now (kiln_collect), and
 * retries.  Kiln's heap stays consistent throughout: every cached document
 * is checked byte for byte at the end, and the committed memory never goes
 * past the budget.  A scratch arena with its own, smaller limit shows the
 * same recovery one level down (kiln_arena_reset instead of eviction).
 *
 * Exits 0 when the budget was hit and recovered from, and all checks pass.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

#define MiB ((size_t)1 << 20)

typedef struct doc_s {
  uint8_t *bytes;
  size_t size;
  uint32_t seed;
} doc_t;

enum { SLOTS = 4096, INSERTS = 3000 };
static doc_t cache[SLOTS]; /* a ring: [oldest, newest) */
static size_t oldest, newest;

static uint64_t rng = 0x853c49e6748fea9bull;
static uint32_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static void fill(doc_t *d) {
  for (size_t i = 0; i < d->size; i += 64) d->bytes[i] = (uint8_t)(d->seed + i / 64);
  d->bytes[d->size - 1] = (uint8_t)d->seed;
}

static bool intact(const doc_t *d) {
  for (size_t i = 0; i < d->size; i += 64)
    if (d->bytes[i] != (uint8_t)(d->seed + i / 64) && i != d->size - 1) return false;
  return d->bytes[d->size - 1] == (uint8_t)d->seed;
}

static bool evict_oldest(void) {
  if (oldest == newest) return false;
  doc_t *d = &cache[oldest++ % SLOTS];
  if (!intact(d)) { fprintf(stderr, "memory_limit: evicted document corrupted\n"); return false; }
  kiln_free(d->bytes);
  return true;
}

int main(void) {
  kiln_stats_t stats;
  kiln_stats_get(&stats);
  size_t budget = stats.committed + 32 * MiB;
  kiln_set_limit(budget);

  size_t failures = 0, evictions = 0, collects = 0, max_committed = 0;
  for (int i = 0; i < INSERTS; i++) {
    size_t size = (size_t)4096 << (next() % 8); /* 4 KiB .. 512 KiB */
    size += next() % 4096;
    uint8_t *p;
    while ((p = kiln_malloc(size)) == NULL) {
      if (errno != ENOMEM) { fprintf(stderr, "memory_limit: NULL without ENOMEM\n"); return 1; }
      failures++;
      /* Make room: drop the oldest few, give the memory back now, retry. */
      for (int k = 0; k < 4 && evict_oldest(); k++) evictions++;
      kiln_collect(true);
      collects++;
      if (oldest == newest && (p = kiln_malloc(size)) == NULL) {
        fprintf(stderr, "memory_limit: cannot allocate %zu bytes with an empty cache\n", size);
        return 1;
      }
      if (p != NULL) break;
    }
    if (newest - oldest == SLOTS) { evict_oldest(); evictions++; }
    doc_t *d = &cache[newest++ % SLOTS];
    *d = (doc_t){p, size, next()};
    fill(d);
    kiln_stats_get(&stats);
    if (stats.committed > max_committed) max_committed = stats.committed;
  }

  /* A failing realloc leaves the block as it was. */
  doc_t *last = &cache[(newest - 1) % SLOTS];
  errno = 0;
  if (kiln_realloc(last->bytes, 64 * MiB) != NULL || errno != ENOMEM || !intact(last)) {
    fprintf(stderr, "memory_limit: realloc past the budget misbehaved\n");
    return 1;
  }

  size_t checked = 0;
  for (size_t i = oldest; i < newest; i++, checked++)
    if (!intact(&cache[i % SLOTS])) { fprintf(stderr, "memory_limit: cached document corrupted\n"); return 1; }
  while (evict_oldest()) {}

  /* One level down: an arena with its own 1 MiB limit, inside the budget
   * (the cache is empty now, so the arena's own limit is what it meets). */
  kiln_arena_t *scratch = kiln_arena_new(64 * 1024, 1 * MiB, KILN_ARENA_DEFAULT);
  if (scratch == NULL) { perror("memory_limit: kiln_arena_new"); return 1; }
  size_t arena_resets = 0, arena_allocs = 0;
  for (int i = 0; i < 2000; i++) {
    void *s = kiln_arena_alloc(scratch, 1000 + next() % 8000, 0);
    if (s == NULL && errno == ENOMEM) {
      kiln_arena_reset(scratch); /* done with this batch of scratch data */
      arena_resets++;
      s = kiln_arena_alloc(scratch, 1000, 0);
    }
    if (s == NULL) { fprintf(stderr, "memory_limit: scratch arena failed\n"); return 1; }
    arena_allocs++;
  }
  kiln_arena_info_t ainfo = kiln_arena_info(scratch);
  kiln_arena_destroy(scratch);

  kiln_set_limit(0);

  printf("memory_limit: budget %zu MiB over the start; %d inserts, %zu ENOMEM recovered (%zu evictions, "
         "%zu collects); peak committed %zu MiB of %zu MiB allowed; %zu documents verified; "
         "scratch arena: %zu allocs, %zu resets, high water %zu KiB\n",
         (size_t)32, INSERTS, failures, evictions, collects, max_committed / MiB, budget / MiB, checked,
         arena_allocs, arena_resets, ainfo.high_water >> 10);
  return failures > 0 && max_committed <= budget && arena_resets > 0 && ainfo.capacity <= 1 * MiB ? 0 : 1;
}
