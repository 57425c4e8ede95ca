/* check.c — the checking mode (KILN_CHECK=1): every block handed out is
 * recorded out of line, fenced by canaries, and quarantined when freed, so
 * that each misuse is named with the block, its size, and where it was
 * allocated and freed.  The hooks of check.h also dispatch to the hardened
 * mode (secure.c) and to the valgrind client requests.
 *
 * Layout of a block in the checking mode (the core's block is larger than
 * asked, by at least FRONT + CANARY_MIN bytes):
 *
 *   block            user = block + front            user + size      end
 *   | front canary   | the program's `size` bytes    | back canary ... |
 *
 *   front = 16 (or the alignment asked, up to 256; 0 for huge blocks and
 *   larger alignments, whose block must start at the pointer).  The pages
 *   of the checking mode are marked KILN_CHECK_ALIGNED_ANY (check.h), so
 *   free(user) finds `block`.
 *   Canary bytes depend on the address (byte a is canary[a & 7], per-process
 *   random values in 0x80..0xfe — never 0, so a stray terminating NUL is
 *   caught); at most CANARY_MAX bytes after the end are checked.
 *
 * Life of a block: malloc records {block, size, front, alignment, stack,
 * thread} in the side table (check_table.c); free takes the record out
 * (not there: double or invalid free, named from the freed history),
 * checks the canaries and the free_sized claims, fills the block with
 * POISON and holds it in the quarantine; when it leaves the quarantine the
 * poison is verified (write after free) and the block goes back to the
 * core.  realloc stays in place when it shrinks a block to at least half
 * or grows it within the block (the canary moves with the end); otherwise
 * it moves, and the old copy goes through the quarantine, so a stale
 * pointer to it is caught.
 *
 * Errors are printed by kiln_message (no malloc, no stdio) under one lock,
 * then abort() unless KILN_ON_ERROR=report, which reports and goes on
 * (ignoring the bad free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check_internal.h"
#include "heap.h"
#include "os.h"
#include "page.h"
#include "segment.h"
#include "stats.h"

#ifdef KILN_VALGRIND
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MALLOCLIKE_BLOCK(p, size, redzone, zeroed) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(p, redzone) ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(p, size) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, size) ((void)0)
#define VALGRIND_RESIZEINPLACE_BLOCK(p, old, size, redzone) ((void)0)
#endif

bool kiln_check_mode;
bool kiln_check_tracks_blocks;
kiln_check_config_t kiln_check_config;
#define cfg kiln_check_config

/* 16 (check.h): the minimum alignment, so the program's pointer stays 16-aligned. */
#define FRONT_DEFAULT KILN_CHECK_FRONT_DEFAULT
/* Alignments up to this get a front canary of `alignment` bytes. */
#define FRONT_ALIGN_MAX 256
#define FRONT_CANARY_MAX 64
/* Even an exact-fit size has this many canary bytes after it. */
#define CANARY_MIN 8
#define CANARY_MAX 256
#define POISON_BYTE 0xdf
/* Poison (and verify) at most this much of a freed block: writes through a
 * stale pointer hit the first fields of a structure far more often than the
 * rest, and a multi-megabyte fill per free would dominate the run time. */
#define POISON_MAX ((size_t)64 << 10)

static uint8_t canary[8];
static uint64_t canary_word;
/* canary_phase[k]: the 8 bytes read from an address a with a & 7 == k,
 * canary[k], canary[k + 1], ... (mod 8): see canary_at. */
static uint64_t canary_phase[8];
static pthread_mutex_t report_mutex = PTHREAD_MUTEX_INITIALIZER;

/* --- text helpers ----------------------------------------------------------- */
void kiln_buf_printf(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  if (*len >= size) return;
  va_list args;
  va_start(args, fmt);
  *len += kiln_format(buf + *len, size - *len, fmt, args);
  va_end(args);
}

/* --- set-up --------------------------------------------------------------------- */
static void fork_prepare(void) {
  pthread_mutex_lock(&report_mutex);
  if (cfg.check) {
    kiln_table_fork_prepare();
    kiln_stack_fork_prepare();
  }
}

static void fork_parent(void) {
  if (cfg.check) {
    kiln_stack_fork_parent();
    kiln_table_fork_parent();
  }
  pthread_mutex_unlock(&report_mutex);
}

/* The child's only thread took every lock in fork_prepare: it releases
 * them (re-initialising a held mutex is undefined). */
static void fork_child(void) { fork_parent(); }

void kiln_check_init(void) {
  long long check = kiln_option(KILN_OPTION_CHECK);
  cfg.leaks = check == 2 || kiln_option(KILN_OPTION_LEAKS) != 0;
  cfg.check = check != 0 || cfg.leaks;
  cfg.report_only = kiln_option(KILN_OPTION_ON_ERROR) == 2;
  cfg.secure = kiln_option(KILN_OPTION_SECURE) != 0;
  if (cfg.secure) kiln_secure_init();
  cfg.quarantine = (size_t)kiln_option(KILN_OPTION_QUARANTINE);
#ifdef KILN_VALGRIND
  /* Under valgrind, the checking machinery tells memcheck about every
   * block (and its quarantine keeps freed memory from being reused at once,
   * so memcheck sees use after free); memcheck checks the accesses itself,
   * so canaries and poison are left out. */
  if (RUNNING_ON_VALGRIND) {
    cfg.valgrind = true;
    cfg.check = true;
  }
#endif
  if (!cfg.check && !cfg.secure) return;
  kiln_os_random(canary, sizeof canary);
  for (size_t i = 0; i < sizeof canary; i++) canary[i] = (uint8_t)(0x80 | (canary[i] % 0x7f)); /* 0x80..0xfe */
  memcpy(&canary_word, canary, sizeof canary_word);
  for (size_t k = 0; k < 8; k++) {
    uint8_t bytes[8];
    for (size_t i = 0; i < 8; i++) bytes[i] = canary[(k + i) & 7];
    memcpy(&canary_phase[k], bytes, sizeof bytes);
  }
  if (cfg.check) {
    kiln_stack_init();
    if (!kiln_table_init()) {
      kiln_message("kiln: KILN_CHECK: no memory for the checking mode's tables; running unchecked");
      cfg.check = cfg.leaks = cfg.valgrind = false;
    }
  }
  kiln_check_mode = cfg.check || cfg.secure;
  kiln_check_tracks_blocks = cfg.check;
}

/* Fork handlers: registered from a constructor, once libc is fully up
 * (pthread_atfork may allocate, and process init can run inside the very
 * first malloc). */
__attribute__((constructor)) static void check_constructor(void) {
  kiln_process_init();
  if (kiln_check_mode) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* --- reports -------------------------------------------------------------------- */
void kiln_report_begin(void) { pthread_mutex_lock(&report_mutex); }

void kiln_report_end(void) {
  if (!cfg.report_only) abort();
  pthread_mutex_unlock(&report_mutex);
}

void kiln_report_done(void) { pthread_mutex_unlock(&report_mutex); }

static void site_of(char *buf, size_t size, kiln_stack_id_t id) { kiln_format_site(buf, size, id); }

static void print_stacks(kiln_stack_id_t alloc, uint32_t alloc_thread, kiln_stack_id_t freed,
                         uint32_t free_thread, const char *free_verb, kiln_stack_id_t now, const char *now_verb) {
  char title[64];
  size_t len = 0;
  kiln_buf_printf(title, sizeof title, &len, "allocated by thread %u", alloc_thread);
  kiln_print_stack(title, alloc);
  if (freed != 0 || free_thread != 0) {
    len = 0;
    kiln_buf_printf(title, sizeof title, &len, "%s by thread %u", free_verb, free_thread);
    kiln_print_stack(title, freed);
  }
  if (now_verb != NULL) {
    len = 0;
    kiln_buf_printf(title, sizeof title, &len, "%s by thread %u", now_verb, kiln_thread_number());
    kiln_print_stack(title, now);
  }
}

/* The start of the carved block of a page in use that holds p, or 0. */
static uintptr_t block_containing(const void *p) {
  kiln_segment_t *segment = kiln_segment_of(p);
  kiln_page_t *page = segment ? kiln_segment_page_of(segment, p) : NULL;
  if (page == NULL || !page->segment_in_use || (uintptr_t)p < (uintptr_t)page->start) return 0;
  if (page->bin == KILN_BIN_HUGE) return (uintptr_t)page->start;
  size_t index = ((uintptr_t)p - (uintptr_t)page->start) / page->block_size;
  return index < page->capacity ? (uintptr_t)page->start + index * page->block_size : 0;
}

/* A free of `p` that the table refuses: name it from the history, or by
 * where p points. */
static void report_bad_free(const void *p, uintptr_t block, const kiln_live_t *interior) {
  char alloc_site[256], free_site[256];
  kiln_stack_id_t now = kiln_stack_capture();
  kiln_freed_t freed;
  kiln_report_begin();
  if (kiln_table_find_freed(interior != NULL ? 0 : block, (uintptr_t)p, &freed) &&
      (freed.block + freed.user_off == (uintptr_t)p || interior == NULL)) {
    site_of(alloc_site, sizeof alloc_site, freed.alloc_stack);
    site_of(free_site, sizeof free_site, freed.free_stack);
    if (freed.block + freed.user_off != (uintptr_t)p) {
      kiln_message("kiln: invalid free of %p (interior pointer, %zu bytes into a freed %zu-byte block) — "
                   "allocated at %s, freed at %s",
                   p, (size_t)((uintptr_t)p - freed.block - freed.user_off), freed.size, alloc_site, free_site);
    } else if (freed.destroyed) {
      kiln_message("kiln: invalid free of %p (%zu-byte block of a destroyed heap) — allocated at %s, "
                   "heap destroyed at %s",
                   p, freed.size, alloc_site, free_site);
    } else {
      kiln_message("kiln: double free of %p (%zu-byte block) — allocated at %s, first freed at %s", p,
                   freed.size, alloc_site, free_site);
    }
    print_stacks(freed.alloc_stack, freed.alloc_thread, freed.free_stack, freed.free_thread,
                 freed.destroyed ? "heap destroyed" : "freed", now, "freed again");
  } else if (interior != NULL) {
    site_of(alloc_site, sizeof alloc_site, interior->stack);
    size_t into = (size_t)((uintptr_t)p - interior->block - interior->user_off);
    kiln_message("kiln: invalid free of %p (interior pointer, %zu bytes into a %zu-byte block) — allocated at %s",
                 p, into, interior->size, alloc_site);
    print_stacks(interior->stack, interior->thread, 0, 0, NULL, now, "freed");
  } else {
    uintptr_t lo, hi;
    const char *module, *symbol;
    if (kiln_stack_bounds(&lo, &hi) && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
      kiln_message("kiln: invalid free of %p (stack memory)", p);
    } else if (kiln_segment_of(p) != NULL) {
      /* Kiln's memory, but no block start there (a huge block's interior,
       * a segment header, a page not in use). */
      kiln_live_t live;
      uintptr_t start = block_containing(p);
      if (start != 0 && kiln_table_lookup(start, &live) && (uintptr_t)p > start + live.user_off) {
        site_of(alloc_site, sizeof alloc_site, live.stack);
        kiln_message("kiln: invalid free of %p (interior pointer, %zu bytes into a %zu-byte block) — allocated at %s",
                     p, (size_t)((uintptr_t)p - start - live.user_off), live.size, alloc_site);
      } else {
        kiln_message("kiln: invalid free of %p (not an allocated block)", p);
      }
    } else if (kiln_symbolize_data((uintptr_t)p, &module, &symbol)) {
      if (symbol != NULL) kiln_message("kiln: invalid free of %p (static data: %s in %s)", p, symbol, module);
      else kiln_message("kiln: invalid free of %p (static data in %s)", p, module);
    } else {
      kiln_message("kiln: invalid free of %p (not allocated by Kiln)", p);
    }
    kiln_print_stack("freed", now);
  }
  kiln_report_end();
}

/* --- canaries and poison --------------------------------------------------------- */
/* Word access to unaligned-or-not memory.  __builtin_memcpy, not memcpy:
 * Kiln is built with -fno-builtin, and a libc call per word would be the
 * checking mode's main cost. */
static inline uint64_t load_word(const uint8_t *p) {
  uint64_t w;
  __builtin_memcpy(&w, p, sizeof w);
  return w;
}

/* Sixteen bytes as one value: the fills and checks below move 16 bytes per
 * instruction (SSE2 on x86-64, NEON on AArch64, both baseline) instead of
 * 8 or 1.  These loops run over every canary and every poisoned byte, on
 * every malloc and free: as word and byte loops they were about a sixth of
 * the checking mode's instructions on bench/workloads/simple. */
typedef uint64_t pair_t __attribute__((vector_size(16)));

static inline pair_t load_pair(const uint8_t *p) {
  pair_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline bool pair_is_zero(pair_t v) { return (v[0] | v[1]) == 0; }

/* The canary as an 8-byte load from p reads it (canary_word rotated by p's
 * offset in the 8-byte period, from a table).  With it a fill or check runs
 * in unaligned words from any start, and ends with one word that overlaps
 * the previous one, instead of byte loops at both ends. */
static inline uint64_t canary_at(const uint8_t *p) { return canary_phase[(uintptr_t)p & 7]; }

static inline void canary_fill(uint8_t *from, uint8_t *to) {
  if (to - from < 8) {
    for (uint8_t *p = from; p < to; p++) *p = canary[(uintptr_t)p & 7];
    return;
  }
  uint64_t word = canary_at(from);
  const pair_t pattern = {word, word};
  uint8_t *p = from;
  for (; p + 16 <= to; p += 16) __builtin_memcpy(p, &pattern, 16);
  if (p + 8 <= to) __builtin_memcpy(p, &word, 8);
  uint64_t last = canary_at(to - 8);
  __builtin_memcpy(to - 8, &last, 8);
}

/* Whether [from, to) holds the canary: the common answer, checked a pair of
 * words a step (canary_find below then locates a damaged byte). */
static inline bool canary_intact(const uint8_t *from, const uint8_t *to) {
  if (to - from < 8) {
    for (const uint8_t *p = from; p < to; p++)
      if (*p != canary[(uintptr_t)p & 7]) return false;
    return true;
  }
  uint64_t word = canary_at(from);
  const pair_t pattern = {word, word};
  pair_t diff = {0, 0};
  const uint8_t *p = from;
  for (; p + 16 <= to; p += 16) diff |= load_pair(p) ^ pattern;
  uint64_t tail = load_word(to - 8) ^ canary_at(to - 8);
  if (p + 8 <= to) tail |= load_word(p) ^ word;
  return ((diff[0] | diff[1]) | tail) == 0;
}

/* The first (scanning upwards) or last byte of [from, to) that is not the
 * canary; NULL if intact. */
static const uint8_t *canary_find(const uint8_t *from, const uint8_t *to, bool last) {
  const uint8_t *bad = NULL;
  for (const uint8_t *p = from; p < to; p++) {
    if (((uintptr_t)p & 7) == 0 && p + 8 <= to && load_word(p) == canary_word) {
      p += 7;
      continue;
    }
    if (*p != canary[(uintptr_t)p & 7]) {
      bad = p;
      if (!last) break;
    }
  }
  return bad;
}

#define POISON_WORD (0x0101010101010101ull * POISON_BYTE)

/* Whether [from, from + len) still holds the poison: every byte is read
 * and the answer tested once at the end, since a write after free is rare
 * (poison_find then locates the byte).  A test per step would cost a
 * quarter of the loop, which is the main work of a release from the
 * quarantine. */
static inline bool poison_intact(const uint8_t *from, size_t len) {
  const pair_t poison_pair = {POISON_WORD, POISON_WORD};
  if (len < 16) {
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) diff |= load_word(from + i) ^ POISON_WORD;
    for (; i < len; i++) diff |= (uint64_t)(from[i] ^ POISON_BYTE);
    return diff == 0;
  }
  pair_t diff = load_pair(from + len - 16) ^ poison_pair; /* the last 16, overlapping the steps */
  size_t i = 0;
  for (; i + 64 <= len; i += 64)
    diff |= (load_pair(from + i) ^ poison_pair) | (load_pair(from + i + 16) ^ poison_pair) |
            (load_pair(from + i + 32) ^ poison_pair) | (load_pair(from + i + 48) ^ poison_pair);
  for (; i + 16 <= len; i += 16) diff |= load_pair(from + i) ^ poison_pair;
  return pair_is_zero(diff);
}

/* The first byte of [from, from + len) that is not the poison, or NULL. */
static const uint8_t *poison_find(const uint8_t *from, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    if (load_word(from + i) != POISON_WORD) break;
  for (; i < len; i++)
    if (from[i] != POISON_BYTE) return from + i;
  return NULL;
}

static size_t front_canary_len(const kiln_live_t *rec) {
  return rec->user_off < FRONT_CANARY_MAX ? rec->user_off : FRONT_CANARY_MAX;
}

/* Where the canaries of a block were overwritten (NULL: intact). */
typedef struct canary_damage_s {
  const uint8_t *over, *under;
} canary_damage_t;

static canary_damage_t canary_check(const kiln_live_t *rec) {
  const uint8_t *user = (const uint8_t *)(rec->block + rec->user_off);
  const uint8_t *over_from = user + rec->size, *over_to = over_from + rec->canary_len;
  const uint8_t *under_from = user - front_canary_len(rec);
  if (canary_intact(over_from, over_to) && canary_intact(under_from, user)) return (canary_damage_t){NULL, NULL};
  return (canary_damage_t){
    .over = canary_find(over_from, over_to, false),
    .under = canary_find(under_from, user, true),
  };
}

/* Report damaged canaries; in report mode, go on. */
__attribute__((cold, noinline)) static void report_damaged_canaries(const kiln_live_t *rec, canary_damage_t damage,
                                                                     kiln_stack_id_t now) {
  const uint8_t *user = (const uint8_t *)(rec->block + rec->user_off);
  char alloc_site[256], free_site[256];
  kiln_report_begin(); /* before symbolising: the symboliser is not thread-safe */
  site_of(alloc_site, sizeof alloc_site, rec->stack);
  site_of(free_site, sizeof free_site, now);
  if (damage.over != NULL)
    kiln_message("kiln: buffer overflow on %p (%zu-byte block): byte %zu written past the end — allocated at %s, "
                 "freed at %s",
                 (const void *)user, rec->size, (size_t)(damage.over - user), alloc_site, free_site);
  if (damage.under != NULL)
    kiln_message("kiln: buffer underflow on %p (%zu-byte block): byte -%zu written before the start — allocated "
                 "at %s, freed at %s",
                 (const void *)user, rec->size, (size_t)(user - damage.under), alloc_site, free_site);
  print_stacks(rec->stack, rec->thread, 0, 0, NULL, now, "freed");
  kiln_report_end();
}

static inline void report_canaries(const kiln_live_t *rec, canary_damage_t damage, kiln_stack_id_t now) {
  if (kiln_unlikely(damage.over != NULL || damage.under != NULL)) report_damaged_canaries(rec, damage, now);
}

static void check_canaries(const kiln_live_t *rec, kiln_stack_id_t now) {
  report_canaries(rec, canary_check(rec), now);
}

/* C23: free_sized's size must be the size asked for; free_aligned_sized's
 * alignment too (the hint is 1 for an alignment of 0). */
static void check_sized(const kiln_live_t *rec, size_t size_hint, size_t alignment_hint, kiln_stack_id_t now) {
  const void *p = (const void *)(rec->block + rec->user_off);
  const char *fn = alignment_hint != 0 ? "free_aligned_sized" : "free_sized";
  size_t size = size_hint; /* free.c sends 1 for 0, and malloc(0) is recorded as 1 byte */
  size_t recorded_alignment = rec->align_log2 ? (size_t)1 << (rec->align_log2 - 1) : 0;
  bool bad_size = size_hint != 0 && size != rec->size;
  bool bad_alignment = alignment_hint != 0 && alignment_hint != recorded_alignment;
  if (!bad_size && !bad_alignment) return;
  char alloc_site[256];
  kiln_report_begin();
  site_of(alloc_site, sizeof alloc_site, rec->stack);
  if (bad_size)
    kiln_message("kiln: %s size mismatch on %p (%zu-byte block): freed with size %zu — allocated at %s", fn, p,
                 rec->size, size, alloc_site);
  if (bad_alignment) {
    if (recorded_alignment != 0)
      kiln_message("kiln: %s alignment mismatch on %p (%zu-byte block, alignment %zu): freed with alignment %zu — "
                   "allocated at %s",
                   fn, p, rec->size, recorded_alignment, alignment_hint, alloc_site);
    else
      kiln_message("kiln: %s alignment mismatch on %p (%zu-byte block, allocated with no alignment): freed "
                   "with alignment %zu — allocated at %s",
                   fn, p, rec->size, alignment_hint, alloc_site);
  }
  print_stacks(rec->stack, rec->thread, 0, 0, NULL, now, "freed");
  kiln_report_end();
}

/* Give blocks that left the quarantine back to the core, after checking
 * that nobody wrote to them meanwhile. */
static void release_evicted(kiln_evicted_t *evicted, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const kiln_freed_t *rec = &evicted[i].rec;
    const uint8_t *user = (const uint8_t *)(rec->block + rec->user_off);
    const uint8_t *bad = rec->poison_len && !poison_intact(user, rec->poison_len) ? poison_find(user, rec->poison_len)
                                                                                 : NULL;
    if (bad != NULL) {
      char alloc_site[256], free_site[256];
      kiln_report_begin();
      site_of(alloc_site, sizeof alloc_site, rec->alloc_stack);
      site_of(free_site, sizeof free_site, rec->free_stack);
      kiln_message("kiln: write after free on %p (%zu-byte block): byte %zu written after it was freed — "
                   "allocated at %s, freed at %s",
                   (const void *)user, rec->size, (size_t)(bad - user), alloc_site, free_site);
      print_stacks(rec->alloc_stack, rec->alloc_thread, rec->free_stack, rec->free_thread, "freed", 0, NULL);
      kiln_report_end();
    }
    if (cfg.valgrind) VALGRIND_MAKE_MEM_UNDEFINED((void *)rec->block, sizeof(kiln_block_t));
    /* A release runs at an arbitrary later time, on any thread.  If this
     * thread owns the segment but the page has no heap, the owner's lists
     * are not to be touched (a child after fork: a new thread may reuse the
     * thread id of a parent thread that was half-way through abandoning the
     * page): the remote path then, an atomic push collected later. */
    kiln_segment_t *segment = kiln_segment_of((void *)rec->block);
    kiln_page_t *page = kiln_segment_page_of(segment, (void *)rec->block);
    if (segment->kind != KILN_SEGMENT_HUGE &&
        atomic_load_explicit(&segment->thread_id, memory_order_relaxed) == kiln_thread_id() &&
        atomic_load_explicit(&page->xheap, memory_order_relaxed) == NULL)
      kiln_page_free_mt(page, (kiln_block_t *)rec->block);
    else
      kiln_free_block(segment, page, (kiln_block_t *)rec->block);
  }
  if (n > 0) kiln_table_release_done(evicted, n);
}

/* Empty the quarantine (out of memory, exit); true if anything was freed. */
static bool drain_quarantine(void) {
  kiln_evicted_t evicted[32];
  bool any = false;
  for (;;) {
    size_t n = kiln_table_drain(evicted, sizeof evicted / sizeof evicted[0]);
    if (n == 0) return any;
    release_evicted(evicted, n);
    any = true;
  }
}

/* --- the hooks ------------------------------------------------------------------------- */
static void *core_alloc(kiln_heap_t *heap, size_t size, size_t alignment) {
  return alignment <= 16 ? kiln_heap_malloc_core(heap, size, false)
                         : kiln_heap_malloc_aligned_core(heap, size, alignment, false);
}

void *kiln_check_malloc(kiln_heap_t *heap, size_t size, size_t alignment, bool zero) {
  if (!cfg.check) return kiln_secure_malloc(heap, size, alignment, zero);
  /* Room for front + canary without overflow (the core refuses the rest). */
  if (kiln_unlikely(size > KILN_MAX_ALLOC_SIZE - 2 * FRONT_ALIGN_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  /* malloc(0) is served as malloc(1): its usable size must not be 0, which
   * kiln_usable_size reserves for pointers Kiln did not hand out. */
  if (size == 0) size = 1;
  size_t front = alignment <= 16 ? FRONT_DEFAULT : alignment <= FRONT_ALIGN_MAX ? alignment : 0;
  size_t request = front + size + CANARY_MIN;
  uint8_t *q = core_alloc(heap, request, alignment);
  if (q == NULL && drain_quarantine()) q = core_alloc(heap, request, alignment);
  if (q == NULL) return NULL;
  int saved_errno = errno;
  kiln_segment_t *segment = kiln_segment_of(q);
  kiln_page_t *page = kiln_segment_page_of(segment, q);
  /* Without an alignment the core hands out block starts (a popped block,
   * or a huge page's start); only an aligned block needs the look-up, whose
   * fast case expects a program pointer (block + 16) and would divide. */
  uint8_t *block = alignment <= 16 ? q : (uint8_t *)kiln_page_block_of(page, q);
  /* The page's next block, which its next malloc pops (reading its link):
   * blocks come back to their pages from the quarantine, long after they
   * were last touched, and that load missed the cache (most of
   * heap_malloc_bin's time in larson).  The page is ours (we just popped a
   * block of it); a prefetch of NULL does nothing. */
  __builtin_prefetch(page->free, 1);
  uint8_t *user = segment->kind == KILN_SEGMENT_HUGE ? q : q + front;
  uint8_t *end = block + page->block_size;
  size_t back = (size_t)(end - (user + size));
  kiln_live_t rec = {
    .block = (uintptr_t)block,
    .size = size,
    .user_off = (uint32_t)(user - block),
    .thread = kiln_thread_number(),
    .align_log2 = alignment != 0 ? (uint8_t)(__builtin_ctzll(alignment) + 1) : 0,
    .canary_len = (uint16_t)(back < CANARY_MAX ? back : CANARY_MAX),
  };
  /* Recorded before the block is written: the table's lock is a locked
   * instruction, which waits until every store before it is done, and the
   * block's lines are often not in the cache (it comes back from the
   * quarantine), so after the canary fill it waited for their misses.  No
   * other thread knows the block before it is returned. */
  rec.stack = kiln_stack_capture();
  if (!kiln_table_insert(page, &rec)) {
    kiln_free_block(segment, page, (kiln_block_t *)block);
    errno = ENOMEM;
    return NULL;
  }
  if (cfg.valgrind) {
    VALGRIND_MALLOCLIKE_BLOCK(user, size, 0, zero);
    VALGRIND_MAKE_MEM_NOACCESS(block, (size_t)(user - block));
    VALGRIND_MAKE_MEM_NOACCESS(user + size, back);
  } else {
    canary_fill(user - front_canary_len(&rec), user);
    canary_fill(user + size, user + size + rec.canary_len);
  }
  if (zero) memset(user, 0, size);
  errno = saved_errno;
  return user;
}

/* What kiln_check_free decides under the shard lock (free_under_lock). */
typedef struct free_work_s {
  kiln_page_t *page;
  kiln_stack_id_t now;
  canary_damage_t damage;
} free_work_t;

/* With the block's record just taken out, under its shard lock (so no other
 * thread can evict and reuse the block meanwhile): check the canaries, fill
 * the freed record, poison what the quarantine will hold. */
static void free_under_lock(const kiln_live_t *rec, kiln_freed_t *freed, void *arg) {
  free_work_t *work = arg;
  if (!cfg.valgrind) work->damage = canary_check(rec);
  size_t bytes = rec->user_off + rec->size + CANARY_MIN;
  /* A huge block of a first-class heap is not held: destroying the heap
   * frees it directly (kiln_heap_huge_release_all), which would race with
   * its later release from the quarantine. */
  bool holdable = cfg.quarantine != 0 && bytes <= cfg.quarantine &&
                  (work->page->bin != KILN_BIN_HUGE || kiln_segment_of((void *)rec->block)->huge_heap == NULL);
  *freed = (kiln_freed_t){
    .block = rec->block,
    .size = rec->size,
    .user_off = rec->user_off,
    .alloc_stack = rec->stack,
    .free_stack = work->now,
    .alloc_thread = rec->thread,
    .free_thread = kiln_thread_number(),
    .held = holdable,
    .align_log2 = rec->align_log2,
  };
  void *user = (void *)(rec->block + rec->user_off);
  if (cfg.valgrind) {
    VALGRIND_FREELIKE_BLOCK(user, 0);
  } else if (holdable) {
    freed->poison_len = (uint32_t)(rec->size < POISON_MAX ? rec->size : POISON_MAX);
    memset(user, POISON_BYTE, freed->poison_len);
  }
}

bool kiln_check_free(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size_hint,
                     size_t alignment_hint) {
  if (!cfg.check) return kiln_secure_free(page, block, p, size_hint, alignment_hint);
  int saved_errno = errno;
  free_work_t work = {.page = page, .now = kiln_stack_capture()};
  kiln_live_t rec;
  kiln_freed_t freed;
  kiln_evicted_t evicted[KILN_EVICT_BATCH];
  size_t n;
  kiln_take_t taken = kiln_table_free(page, (uintptr_t)block, (uintptr_t)p, &rec, &freed, free_under_lock, &work,
                                      evicted, &n);
  if (taken != KILN_TAKE_OK) {
    kiln_stats_count(KILN_STAT_INVALID_FREES, 1); /* free.c counts the ones it refuses itself */
    report_bad_free(p, (uintptr_t)block, taken == KILN_TAKE_INTERIOR ? &rec : NULL);
    errno = saved_errno;
    return false;
  }
  if (size_hint != 0 || alignment_hint != 0) check_sized(&rec, size_hint, alignment_hint, work.now);
  report_canaries(&rec, work.damage, work.now);
  release_evicted(evicted, n);
  while (n == KILN_EVICT_BATCH) {
    n = kiln_table_evict((uintptr_t)block, evicted);
    release_evicted(evicted, n);
  }
  if (!freed.held && cfg.valgrind) VALGRIND_MAKE_MEM_UNDEFINED(block, sizeof(kiln_block_t));
  errno = saved_errno;
  return !freed.held;
}

void kiln_check_report(const char *what, const void *p, size_t size) {
  if (cfg.check) {
    report_bad_free(p, 0, NULL);
    return;
  }
  /* The hardened mode fails closed on a pointer it does not know. */
  kiln_report_begin();
  kiln_message("kiln: %s of %p%s", what, p, size ? " (size mismatch)" : "");
  kiln_report_end();
}

size_t kiln_check_usable_size(kiln_page_t *page, kiln_block_t *block, size_t usable) {
  if (!cfg.check) return usable;
  kiln_live_t rec;
  /* usable == block_size - (p - block) names p. */
  uintptr_t p = (uintptr_t)block + page->block_size - usable;
  if (!kiln_table_lookup((uintptr_t)block, &rec) || rec.block + rec.user_off != p) return 0;
  return rec.size;
}

/* In place: shrinking to at least half, the core's rule with the requested
 * size as the usable one (kiln_heap_realloc relies on it to keep a block in
 * its heap), and growing within the block, leaving room for the minimum
 * canary (a buffer grown a few bytes at a time would otherwise be copied
 * whole at every step).  Anything else moves, and the old block then waits
 * in the quarantine, where a stale pointer to it is caught. */
static bool resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size) {
  kiln_live_t rec;
  if (!kiln_table_lookup((uintptr_t)block, &rec) || rec.block + rec.user_off != (uintptr_t)p) return false;
  if (size < rec.size / 2) return false;
  if (size > rec.size && (size > page->block_size || rec.user_off + size + CANARY_MIN > page->block_size))
    return false;
  int saved_errno = errno;
  kiln_stack_id_t now = kiln_stack_capture();
  if (!cfg.valgrind) check_canaries(&rec, now);
  uint8_t *user = (uint8_t *)p;
  /* A huge block gives its tail back, as in the fast mode (keeping room for
   * the canary); if it cannot (it would no longer be huge), it stays as is. */
  if (page->bin == KILN_BIN_HUGE && rec.user_off == 0 && size < rec.size)
    kiln_huge_resize(kiln_segment_of(p), (void *)p, size + CANARY_MIN);
  size_t back = (size_t)((uint8_t *)block + page->block_size - (user + size));
  size_t canary_len = back < CANARY_MAX ? back : CANARY_MAX;
  if (cfg.valgrind) {
    VALGRIND_RESIZEINPLACE_BLOCK(user, rec.size, size, 0);
    VALGRIND_MAKE_MEM_NOACCESS(user + size, back);
  } else {
    canary_fill(user + size, user + size + canary_len);
  }
  kiln_table_resize((uintptr_t)block, size, (uint16_t)canary_len);
  errno = saved_errno;
  return true;
}

bool kiln_check_resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size) {
  if (!cfg.check) return kiln_secure_resize_in_place(page, block, p, size);
  return resize_in_place(page, block, p, size);
}

void *kiln_check_grow(kiln_segment_t *segment, kiln_page_t *page, kiln_block_t *block, void *p, size_t size) {
  if (!cfg.check) return kiln_secure_grow(segment, page, p, size);
  return resize_in_place(page, block, p, size) ? p : NULL;
}

static void valgrind_forget(const kiln_live_t *rec) {
  VALGRIND_FREELIKE_BLOCK((void *)(rec->block + rec->user_off), 0);
  (void)rec;
}

void kiln_check_page_init(kiln_heap_t *heap, kiln_page_t *page) {
  if (cfg.check) {
    page->flags.x.checked = KILN_PAGE_CHECKED; /* even a keyed page (with KILN_SECURE) */
    page->flags.x.has_aligned = KILN_CHECK_ALIGNED_ANY; /* free(user) must find the block start */
  }
  if (cfg.secure) kiln_secure_page_init(heap, page);
}

void kiln_check_page_freed(kiln_page_t *page) {
  if (cfg.check && page->used > 0) {
    /* kiln_heap_destroy/reset: the page goes with live blocks in it. */
    kiln_table_page_dropped((uintptr_t)page->start, page->block_size, page->capacity, kiln_stack_capture(),
                            cfg.valgrind ? valgrind_forget : NULL);
  }
  if (cfg.valgrind) VALGRIND_MAKE_MEM_UNDEFINED(page->start, (size_t)page->capacity * page->block_size);
  if (cfg.secure) kiln_secure_page_freed(page);
}

void kiln_check_purged(kiln_segment_t *segment, kiln_page_t *page) {
  if (cfg.check) kiln_records_discard(segment, page);
}

void kiln_check_at_exit(void) {
  if (!cfg.check) return;
  /* Blocks still in the quarantine are checked too: a write after free
   * shortly before exit would otherwise go unseen. */
  drain_quarantine();
  /* The stack above this frame: the frames of the drain and of the leak
   * scan itself lie below it. */
  if (cfg.leaks) kiln_leaks_report((uintptr_t)__builtin_frame_address(0));
}
