/* check_table.c — the checking mode's side table: out-of-line metadata of
 * every live block, a bounded history of freed blocks, and the quarantine.
 *
 * Layout: SHARDS independent shards, each under its own lock.  A block's
 * shard is chosen by its segment (which group of GROUP_SHARDS shards) and
 * its address (which shard in the group): a segment belongs to one thread,
 * so threads working on their own blocks mostly use shards of their own,
 * and a shard's cache lines (lock, ring) seldom move between cores;
 * within a group, lock striping spreads one thread's blocks.  A shard holds
 *   - the lock of the live records of its blocks (check_records.c keeps
 *     them, one slot per block; see "live records" below);
 *   - ring: the last RING frees of the shard (kiln_freed_t), oldest
 *     overwritten first.  Double frees and frees of destroyed heaps' blocks
 *     are named from it, with the site of the first free;
 *   - the quarantine: the ring's records with `held` set, whose blocks have
 *     not been given back to the core yet; positions [qtail, head) contain
 *     every held record.  The budget, KILN_QUARANTINE bytes, is for all
 *     shards together: each shard adds its held bytes to a process-wide
 *     estimate in steps of held_flush bytes (one shared atomic per step,
 *     not per free), and a free evicts its shard's oldest blocks while the
 *     estimate is over the budget (the newest block stays, so that even a
 *     block as large as the budget waits one free, unless the estimate is
 *     over twice the budget).
 * All memory comes from kiln_os_alloc.  Every lock here (a spin lock per
 * shard) is a leaf: nothing called under it takes another lock (evicted
 * blocks are released by the caller after the shard is unlocked), so the
 * fork handlers can take them all without a lock-order problem.
 *
 * Addresses are stored xor KEY_SCRAMBLE: the table then holds no pointer to
 * any block, so valgrind's leak checker (which scans all mapped memory) is
 * not misled into finding every block reachable from here.
 */
#include <string.h>

#include "check_internal.h"
#include "os.h"

#define GROUP_BITS 3 /* groups of shards, chosen by segment */
#define GROUP_SHARD_BITS 3 /* shards in a group, chosen by block */
#define SHARDS ((size_t)1 << (GROUP_BITS + GROUP_SHARD_BITS))

/* Records of history per shard: a block's frees go to the 8 shards of its
 * segment's group, so at least the last 32768 frees of blocks of the same
 * group can be named (all 64 shards: 262144 frees). */
#define RING 4096
#define KEY_SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aull)
/* How much of the next evicted block to prefetch: the hardware streams the
 * rest of a larger one. */
#define PREFETCH_BLOCK_BYTES ((size_t)512)

/* A shard's lock: a test-and-test-and-set spin lock that yields the CPU
 * after a few dozen spins.  Critical sections are a few hash-table and ring
 * operations (and a memset of at most 64 KiB), so the uncontended cost --
 * one exchange to lock, one store to unlock -- is what matters: a
 * pthread_mutex costs about twice as much there, on every malloc and free.
 * Acquire on taking it and release on leaving it order the shard's data. */
typedef struct shard_lock_s {
  _Atomic int held;
} shard_lock_t;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static void shard_lock(shard_lock_t *lock) {
  while (atomic_exchange_explicit(&lock->held, 1, memory_order_acquire)) {
    for (unsigned spins = 0; atomic_load_explicit(&lock->held, memory_order_relaxed); spins++) {
      if (spins < 64) cpu_relax();
      else kiln_os_yield(); /* the holder may be preempted: let it run */
    }
  }
}

static inline void shard_unlock(shard_lock_t *lock) { atomic_store_explicit(&lock->held, 0, memory_order_release); }

/* One cache line at least per shard: threads on different shards do not
 * share their locks' line. */
typedef struct __attribute__((aligned(64))) shard_s {
  shard_lock_t lock;
  kiln_freed_t *ring;    /* RING records, allocated on first free */
  uint64_t head;         /* position of the next record (index = head % RING) */
  uint64_t qtail;        /* no held record below this position */
  size_t held_bytes;
  size_t held_published; /* held_bytes as last added to held_total */
  _Atomic size_t in_flight; /* evicted blocks not yet given back to the core */
} shard_t;

static shard_t shards[SHARDS];
static _Atomic size_t held_total; /* sum of the shards' held_published */
/* A shard publishes its held bytes to held_total when they moved this much
 * since it last did: the budget / (2 * SHARDS), so the unpublished bytes of
 * all shards together stay under half the budget. */
static size_t held_flush;

static inline uintptr_t scramble(uintptr_t a) { return a ^ KEY_SCRAMBLE; }

static inline uint64_t hash_of(uintptr_t block) { return (uint64_t)(block >> 4) * 0x9e3779b97f4a7c15ull; }
static inline shard_t *shard_of(uintptr_t block) {
  uint64_t group = ((uint64_t)(block >> KILN_SEGMENT_SHIFT) * 0x9e3779b97f4a7c15ull) >> (64 - GROUP_BITS);
  uint64_t within = hash_of(block) >> (64 - GROUP_SHARD_BITS);
  return &shards[(group << GROUP_SHARD_BITS) | within];
}

size_t kiln_table_shard_index(uintptr_t block) { return (size_t)(shard_of(block) - shards); }

bool kiln_table_init(void) {
  held_flush = kiln_check_config.quarantine / (2 * SHARDS);
  return true;
}

/* Bytes a held block counts against the budget: front, size, minimum canary. */
static inline size_t held_bytes_of(const kiln_freed_t *rec) { return rec->user_off + rec->size + 8; }

/* --- live records ----------------------------------------------------------------
 * A record's slot (check_records.c) is live when its `block` holds the
 * block's address scrambled, empty when it holds 0.  An insert writes the
 * other fields, then publishes `block` with a release store, and takes no
 * lock: the core has just handed the block out, so no other thread can
 * rightly know it, and a reader that sees the slot live (an acquire load)
 * sees every field of this life of the block.  Everything else that reads
 * or writes a slot -- a free's check and erase, a resize, the leak scan --
 * holds the block's shard lock.  A block's record is erased before the
 * block goes back to the core, which hands it out again only after that
 * (its own free lists order the two), so an insert never overwrites a
 * record that anyone may still read as live. */
_Static_assert(offsetof(kiln_live_t, block) == 0, "kiln_table_insert copies the fields after `block`");

/* The slot if it holds block's live record, else NULL. */
static kiln_live_t *live_in(kiln_live_t *slot, uintptr_t block) {
  if (slot == NULL || __atomic_load_n(&slot->block, __ATOMIC_ACQUIRE) != scramble(block)) return NULL;
  return slot;
}

static kiln_live_t *live_find(uintptr_t block) { return live_in(kiln_records_slot(block, false), block); }

static void live_erase(kiln_live_t *slot) { __atomic_store_n(&slot->block, 0, __ATOMIC_RELAXED); }

bool kiln_table_insert(kiln_page_t *page, const kiln_live_t *rec) {
  kiln_live_t *slot = kiln_records_slot_in(page, rec->block, true);
  if (slot == NULL) return false;
  /* (__builtin_memcpy: Kiln builds with -fno-builtin, and a call to
   * memcpy for 24 bytes was 3 % of the checking mode's time in simple.) */
  __builtin_memcpy((uint8_t *)slot + sizeof slot->block, (const uint8_t *)rec + sizeof rec->block,
                   sizeof *rec - sizeof rec->block);
  __atomic_store_n(&slot->block, scramble(rec->block), __ATOMIC_RELEASE);
  return true;
}

bool kiln_table_lookup(uintptr_t block, kiln_live_t *out) {
  shard_t *s = shard_of(block);
  shard_lock(&s->lock);
  kiln_live_t *rec = live_find(block);
  if (rec != NULL) {
    *out = *rec;
    out->block = block;
  }
  shard_unlock(&s->lock);
  return rec != NULL;
}

void kiln_table_resize(uintptr_t block, size_t size, uint16_t canary_len) {
  shard_t *s = shard_of(block);
  shard_lock(&s->lock);
  kiln_live_t *rec = live_find(block);
  if (rec != NULL) {
    rec->size = size;
    rec->canary_len = canary_len;
  }
  shard_unlock(&s->lock);
}

static void count_live(kiln_live_t *slot, void *arg) {
  (void)slot;
  (*(size_t *)arg)++;
}

size_t kiln_table_live_count(void) {
  size_t count = 0;
  kiln_records_visit((kiln_live_visitor_t){count_live, &count});
  return count;
}

/* --- history and quarantine ---------------------------------------------------- */
/* Blocks popped from the quarantine but not yet given back to the core are
 * counted as in flight; a heap being destroyed waits for them (see
 * kiln_table_page_dropped).  The count is per thread (check_stack.c's thread
 * numbers): a thread pops and releases its evictions itself, so it alone
 * writes its slot, with plain loads and stores instead of an atomic
 * read-modify-write on every free.  Threads numbered past RELEASE_SLOTS use
 * their shard's atomic count.  Why the waiter sees every count it must: a
 * block is popped under its shard's lock, and the waiter takes every
 * shard's lock before it reads the counts; a block not popped by then was
 * still held, and the waiter took it out of the quarantine itself. */
#define RELEASE_SLOTS 1024
typedef struct __attribute__((aligned(64))) release_slot_s {
  _Atomic size_t in_flight; /* written by its thread only */
} release_slot_t;
static release_slot_t release_slots[RELEASE_SLOTS];

static void mark_in_flight(shard_t *s, kiln_evicted_t *evicted) {
  uint32_t thread = kiln_thread_number();
  if (thread < RELEASE_SLOTS) {
    _Atomic size_t *own = &release_slots[thread].in_flight;
    atomic_store_explicit(own, atomic_load_explicit(own, memory_order_relaxed) + 1, memory_order_relaxed);
    evicted->in_flight = own;
    evicted->shared = false;
  } else {
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    evicted->in_flight = &s->in_flight;
    evicted->shared = true;
  }
}

/* Bring the process-wide estimate up to date when this shard's held bytes
 * moved by more than held_flush (caller holds the lock). */
static void held_publish(shard_t *s) {
  size_t held = s->held_bytes, published = s->held_published;
  if (held > published + held_flush) atomic_fetch_add_explicit(&held_total, held - published, memory_order_relaxed);
  else if (published > held + held_flush) atomic_fetch_sub_explicit(&held_total, published - held, memory_order_relaxed);
  else return;
  s->held_published = held;
}

/* Over `times` the budget: the estimate plus this shard's unpublished change. */
static bool over_budget(const shard_t *s, size_t times) {
  size_t total = atomic_load_explicit(&held_total, memory_order_relaxed) + s->held_bytes;
  return total - s->held_published > times * kiln_check_config.quarantine;
}

static void evict(shard_t *s, kiln_freed_t *rec, kiln_evicted_t *evicted, size_t *n) {
  /* The copy before the store to `held`: the other way round, the copy's
   * 16-byte loads overlapped the pending 1-byte store, which cannot be
   * forwarded to them, and waited for it (60 % of this function's time in
   * larson). */
  evicted[*n].rec = *rec;
  evicted[*n].rec.block = scramble(rec->block);
  rec->held = 0;
  s->held_bytes -= held_bytes_of(rec);
  mark_in_flight(s, &evicted[*n]);
  (*n)++;
}

/* Prefetches: always inline.  A function that only reads memory and
 * prefetches is "pure" to GCC (a prefetch has no effect it models), so
 * when it was not inlined early, its calls, having no result, were deleted
 * as dead code (-O2: local-pure-const, then DCE). */

/* Fetch a ring record's lines (it may straddle two) for writing. */
kiln_inline void prefetch_record(const kiln_freed_t *rec) {
  __builtin_prefetch(rec, 1);
  __builtin_prefetch((const uint8_t *)(rec + 1) - 1, 1);
}

/* Fetch the poisoned bytes of a held record's block that release_evicted
 * will verify, if the record is held.  (A prefetch never faults, even if
 * the block's page went meanwhile.) */
kiln_inline void prefetch_block(const kiln_freed_t *rec) {
  if (!rec->held || rec->poison_len == 0) return;
  const uint8_t *user = (const uint8_t *)scramble(rec->block) + rec->user_off;
  size_t bytes = rec->poison_len < PREFETCH_BLOCK_BYTES ? rec->poison_len : PREFETCH_BLOCK_BYTES;
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(user + off);
  __builtin_prefetch(user + rec->poison_len - 1); /* where the verification starts */
}

/* The shard's next evictions read lines written long ago: the record after
 * next, and the block of the next one, whose poison release_evicted
 * verifies (its record was fetched at the eviction before).  Fetched now,
 * they arrive while the program runs on: the shard evicts again only some
 * frees later.  In larson, these loads were the largest stalls of the
 * checking mode. */
kiln_inline void prefetch_evictions(const shard_t *s) {
  if (s->qtail + 1 < s->head) prefetch_record(&s->ring[(s->qtail + 1) % RING]);
  if (s->qtail < s->head) prefetch_block(&s->ring[s->qtail % RING]);
}

/* Evict the oldest held record, if any (qtail moves past non-held ones). */
static bool evict_oldest(shard_t *s, kiln_evicted_t *evicted, size_t *n) {
  uint64_t oldest = s->head > RING ? s->head - RING : 0;
  if (s->qtail < oldest) s->qtail = oldest;
  while (s->qtail < s->head) {
    kiln_freed_t *rec = &s->ring[s->qtail % RING];
    s->qtail++;
    if (rec->held) {
      evict(s, rec, evicted, n);
      prefetch_evictions(s);
      return true;
    }
  }
  return false;
}

/* Evict the shard's oldest blocks while all shards together hold more than
 * the budget, up to a batch (evicted[] has KILN_EVICT_BATCH places; the
 * caller asks again with kiln_table_evict while it comes back full: the
 * budget is in bytes, and the oldest blocks may be much smaller than the
 * newest, so a bounded number of evictions per free let a shard whose
 * oldest records were small pile up large blocks far past the budget).
 * The newest block stays held for at least one more free, unless the
 * quarantine is far over its budget: with 64 shards, every shard keeping
 * its newest block could hold 64 large blocks. */
static void evict_over_budget(shard_t *s, kiln_evicted_t *evicted, size_t *n) {
  if (s->ring == NULL || s->head == 0) return;
  const kiln_freed_t *newest = &s->ring[(s->head - 1) % RING];
  size_t newest_bytes = newest->held ? held_bytes_of(newest) : 0;
  while (over_budget(s, 1) && *n < KILN_EVICT_BATCH && (s->held_bytes > newest_bytes || over_budget(s, 2))) {
    if (!evict_oldest(s, evicted, n)) break;
  }
}

/* Whether the record at head (RING pushes old, about to be overwritten) may
 * still be held: only if no eviction has moved qtail past it (positions
 * below qtail hold no held record). */
static inline bool quarantine_spans_ring(const shard_t *s) { return s->head >= RING && s->qtail <= s->head - RING; }

/* Record a free (caller holds the shard lock); returns evictions. */
static size_t push_freed_locked(shard_t *s, const kiln_freed_t *rec, kiln_evicted_t *evicted) {
  size_t n = 0;
  if (s->ring == NULL) s->ring = kiln_os_alloc(RING * sizeof(kiln_freed_t));
  if (s->ring == NULL) {
    /* No history without memory: a held block is released at once. */
    if (rec->held) {
      evicted[n].rec = *rec;
      mark_in_flight(s, &evicted[n++]);
    }
    return n;
  }
  /* The slot's record is RING frees of this shard old, so its line is cold:
   * it is held only if the quarantine spans the whole ring, which qtail
   * tells without reading it (while the quarantine evicts, qtail is not
   * that far back).  Reading the slot on every push was a cache miss per
   * free (most of larson's time in this function). */
  kiln_freed_t *slot = &s->ring[s->head % RING];
  if (quarantine_spans_ring(s) && slot->held) evict(s, slot, evicted, &n);
  *slot = *rec;
  slot->block = scramble(rec->block);
  s->head++;
  /* For the shard's next pushes: the slot after next, and, if the
   * quarantine spans the ring (many small blocks: the next push evicts the
   * record it overwrites), the block of the next slot, whose record the
   * push before fetched. */
  prefetch_record(&s->ring[(s->head + 1) % RING]);
  if (quarantine_spans_ring(s)) prefetch_block(&s->ring[s->head % RING]);
  if (slot->held) {
    s->held_bytes += held_bytes_of(slot);
    evict_over_budget(s, evicted, &n);
  }
  held_publish(s);
  return n;
}

size_t kiln_table_push_freed(const kiln_freed_t *rec, kiln_evicted_t *evicted) {
  shard_t *s = shard_of(rec->block);
  shard_lock(&s->lock);
  size_t n = push_freed_locked(s, rec, evicted);
  shard_unlock(&s->lock);
  return n;
}

kiln_take_t kiln_table_free(kiln_page_t *page, uintptr_t block, uintptr_t p, kiln_live_t *rec, kiln_freed_t *freed,
                            void (*under_lock)(const kiln_live_t *rec, kiln_freed_t *freed, void *arg), void *arg,
                            kiln_evicted_t *evicted, size_t *evicted_count) {
  shard_t *s = shard_of(block);
  *evicted_count = 0;
  shard_lock(&s->lock);
  kiln_live_t *slot = live_in(kiln_records_slot_in(page, block, false), block);
  if (slot == NULL) {
    shard_unlock(&s->lock);
    return KILN_TAKE_NOT_LIVE;
  }
  *rec = *slot;
  rec->block = block;
  if (block + slot->user_off != p) {
    shard_unlock(&s->lock);
    return KILN_TAKE_INTERIOR;
  }
  live_erase(slot);
  under_lock(rec, freed, arg);
  *evicted_count = push_freed_locked(s, freed, evicted);
  shard_unlock(&s->lock);
  return KILN_TAKE_OK;
}

size_t kiln_table_evict(uintptr_t block, kiln_evicted_t *evicted) {
  shard_t *s = shard_of(block);
  size_t n = 0;
  shard_lock(&s->lock);
  evict_over_budget(s, evicted, &n);
  held_publish(s);
  shard_unlock(&s->lock);
  return n;
}

size_t kiln_table_drain(kiln_evicted_t *evicted, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < SHARDS && n < max; i++) {
    shard_t *s = &shards[i];
    shard_lock(&s->lock);
    while (n < max && s->ring != NULL && evict_oldest(s, evicted, &n)) {
    }
    held_publish(s);
    shard_unlock(&s->lock);
  }
  return n;
}

void kiln_table_release_done(const kiln_evicted_t *evicted, size_t count) {
  /* Release: the block is back in the core before the waiter sees the
   * count drop. */
  for (size_t i = 0; i < count; i++) {
    _Atomic size_t *c = evicted[i].in_flight;
    if (evicted[i].shared) atomic_fetch_sub_explicit(c, 1, memory_order_release);
    else atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1, memory_order_release);
  }
}

static bool ring_search(shard_t *s, uintptr_t block, uintptr_t p, kiln_freed_t *out) {
  if (s->ring == NULL) return false;
  uint64_t oldest = s->head > RING ? s->head - RING : 0;
  for (uint64_t pos = s->head; pos > oldest; pos--) {
    const kiln_freed_t *rec = &s->ring[(pos - 1) % RING];
    uintptr_t b = scramble(rec->block);
    if ((block != 0 && b == block) || (p != 0 && b + rec->user_off == p)) {
      *out = *rec;
      out->block = b;
      return true;
    }
  }
  return false;
}

bool kiln_table_find_freed(uintptr_t block, uintptr_t p, kiln_freed_t *out) {
  /* A block start lives in one shard; a bare pointer may be in any. */
  if (block != 0) {
    shard_t *s = shard_of(block);
    shard_lock(&s->lock);
    bool found = ring_search(s, block, p, out);
    shard_unlock(&s->lock);
    if (found) return true;
  }
  for (size_t i = 0; i < SHARDS; i++) {
    shard_lock(&shards[i].lock);
    bool found = ring_search(&shards[i], 0, p, out);
    shard_unlock(&shards[i].lock);
    if (found) return true;
  }
  return false;
}

void kiln_table_page_dropped(uintptr_t start, size_t block_size, size_t count, kiln_stack_id_t site,
                             void (*visit)(const kiln_live_t *rec)) {
  for (size_t i = 0; i < count; i++) {
    uintptr_t block = start + i * block_size;
    shard_t *s = shard_of(block);
    shard_lock(&s->lock);
    kiln_live_t *slot = live_find(block);
    if (slot == NULL) {
      shard_unlock(&s->lock);
      continue;
    }
    kiln_live_t rec = *slot;
    rec.block = block;
    live_erase(slot);
    /* Into the history (not held), unless that would push a held block out
     * of the quarantine: releasing it here, inside the core's page free,
     * is not allowed, so the history does without this record. */
    if (s->ring == NULL) s->ring = kiln_os_alloc(RING * sizeof(kiln_freed_t));
    if (s->ring != NULL && !(s->head >= RING && s->ring[s->head % RING].held)) {
      s->ring[s->head % RING] = (kiln_freed_t){
        .block = scramble(block), .size = rec.size, .user_off = rec.user_off, .alloc_stack = rec.stack,
        .free_stack = site, .alloc_thread = rec.thread, .free_thread = kiln_thread_number(), .destroyed = 1,
        .align_log2 = rec.align_log2};
      s->head++;
    }
    shard_unlock(&s->lock);
    if (visit != NULL) visit(&rec);
  }
  /* Quarantined blocks of the page will never be released: the page goes. */
  uintptr_t end = start + count * block_size;
  for (size_t i = 0; i < SHARDS; i++) {
    shard_t *s = &shards[i];
    shard_lock(&s->lock);
    if (s->ring != NULL) {
      uint64_t oldest = s->head > RING ? s->head - RING : 0;
      for (uint64_t pos = s->qtail > oldest ? s->qtail : oldest; pos < s->head; pos++) {
        kiln_freed_t *rec = &s->ring[pos % RING];
        uintptr_t b = scramble(rec->block);
        if (rec->held && b >= start && b < end) {
          rec->held = 0;
          s->held_bytes -= held_bytes_of(rec);
        }
      }
    }
    held_publish(s);
    shard_unlock(&s->lock);
  }
  /* A block of this page popped before we looked may still be on its way
   * back to the core: wait until it has arrived, then the page may go.
   * Acquire pairs with the release in kiln_table_release_done. */
  for (size_t i = 0; i < SHARDS; i++)
    while (atomic_load_explicit(&shards[i].in_flight, memory_order_acquire) != 0) kiln_os_yield();
  for (size_t i = 0; i < RELEASE_SLOTS; i++)
    while (atomic_load_explicit(&release_slots[i].in_flight, memory_order_acquire) != 0) kiln_os_yield();
}

/* --- whole-table access ------------------------------------------------------ */
void kiln_table_lock_all(void) {
  for (size_t i = 0; i < SHARDS; i++) shard_lock(&shards[i].lock);
}

void kiln_table_unlock_all(void) {
  for (size_t i = SHARDS; i-- > 0;) shard_unlock(&shards[i].lock);
}

/* The leak scan sees records with their addresses unscrambled. */
static void visit_live(kiln_live_t *slot, void *arg) {
  const kiln_live_visitor_t *v = arg;
  kiln_live_t rec = *slot;
  rec.block = scramble(rec.block);
  v->visit(&rec, v->arg);
  slot->marked = rec.marked;
}

void kiln_table_visit_locked(void (*visit)(kiln_live_t *rec, void *arg), void *arg) {
  kiln_live_visitor_t inner = {visit, arg};
  kiln_records_visit((kiln_live_visitor_t){visit_live, &inner});
}

void kiln_table_fork_prepare(void) { kiln_table_lock_all(); }
void kiln_table_fork_parent(void) { kiln_table_unlock_all(); }
