/* model.c — the reference model behind tests/spec/model.h.
 *
 * Layout: block table and address treap; content patterns; worker threads;
 * one function per operation (exec_*); running (in process and forked);
 * generator and fuzz decoder; shrinker; printer.
 *
 * Nothing here calls malloc: blocks, heaps and marks live in static arrays,
 * op buffers and fixed-arena buffers come from mmap.  (stdio, used only to
 * print, may allocate; the printed report is written by the parent of a
 * forked run, whose allocator has not run the failing sequence.)
 */
#define _GNU_SOURCE
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sizes above this must fail with ENOMEM: 2^47 bytes is the whole user
 * address space of x86-64 (and more than any aarch64 configuration Linux
 * gives a process), so no mapping can satisfy them.  Generated "normal"
 * requests stay below SPEC_MUST_SUCCEED, where a failure is a bug. */
#define SPEC_MUST_FAIL ((size_t)1 << 47)
#define SPEC_MUST_SUCCEED ((size_t)1 << 30)

/* A value posix_memalign must leave in *out when it fails. */
#define OUT_SENTINEL ((void *)(uintptr_t)0x5a5a5a5a5a5a5a50ull)

const spec_api_t spec_kiln_api = {
    .name = "kiln",
    .malloc = kiln_malloc,
    .calloc = kiln_calloc,
    .realloc = kiln_realloc,
    .reallocarray = kiln_reallocarray,
    .aligned_alloc = kiln_aligned_alloc,
    .posix_memalign = kiln_posix_memalign,
    .memalign = kiln_memalign,
    .valloc = kiln_valloc,
    .pvalloc = kiln_pvalloc,
    .free = kiln_free,
    .free_sized = kiln_free_sized,
    .free_aligned_sized = kiln_free_aligned_sized,
    .usable_size = kiln_usable_size,
    .owns = kiln_owns,
    .heap_new = kiln_heap_new,
    .heap_destroy = kiln_heap_destroy,
    .heap_reset = kiln_heap_reset,
    .heap_malloc = kiln_heap_malloc,
    .heap_calloc = kiln_heap_calloc,
    .heap_realloc = kiln_heap_realloc,
    .heap_aligned_alloc = kiln_heap_aligned_alloc,
    .heap_set_limit = kiln_heap_set_limit,
    .heap_allocated = kiln_heap_allocated,
    .arena_new = kiln_arena_new,
    .arena_new_fixed = kiln_arena_new_fixed,
    .arena_alloc = kiln_arena_alloc,
    .arena_mark = kiln_arena_mark,
    .arena_rewind = kiln_arena_rewind,
    .arena_reset = kiln_arena_reset,
    .arena_destroy = kiln_arena_destroy,
    .arena_info = kiln_arena_info,
    .pool_new = kiln_pool_new,
    .pool_alloc = kiln_pool_alloc,
    .pool_free = kiln_pool_free,
    .pool_destroy = kiln_pool_destroy,
    .pool_in_use = kiln_pool_in_use,
};

/* ------------------------------------------------------------------------
 * Model state
 * ---------------------------------------------------------------------- */

enum { SRC_NONE, SRC_MALLOC, SRC_HEAP, SRC_ARENA, SRC_POOL };
/* How a block may be freed with a size (C23 7.24.3.4/5). */
enum { FREE_PLAIN, FREE_SIZED_OK, FREE_ALIGNED_OK };

typedef struct block_s {
  uint8_t *p;
  size_t size;   /* requested */
  size_t align;  /* requested alignment, >= 1 */
  size_t usable; /* bytes the model fills and checks */
  uint64_t seed; /* content pattern */
  uint64_t seq;  /* arena: allocation number, for rewind */
  uint8_t src;
  uint8_t free_how;
  uint16_t obj;
  uint32_t left, right, prio; /* treap links: node i is blocks[i - 1] */
} block_t;

typedef struct heap_s {
  kiln_heap_t *h;
  size_t live_bytes; /* requested bytes of live blocks */
  size_t limit;
} heap_t;

typedef struct arena_s {
  kiln_arena_t *a;
  uint8_t *buffer; /* fixed arenas: the mmap'd buffer */
  size_t buffer_size;
  size_t limit;
  bool thread_safe, fixed;
  uint64_t seq;
  struct {
    kiln_arena_mark_t mark;
    uint64_t seq;
    bool valid;
  } marks[SPEC_MARKS];
} arena_t;

typedef struct pool_s {
  kiln_pool_t *p;
  size_t block_size, align, live;
} pool_t;

static struct model_s {
  const spec_api_t *api;
  block_t blocks[SPEC_SLOTS];
  uint32_t root; /* treap root (0 = empty) */
  size_t live;
  heap_t heaps[SPEC_HEAPS];
  arena_t arenas[SPEC_ARENAS];
  pool_t pools[SPEC_POOLS];
  uint64_t rng;
  size_t page_size;
  /* the first failure of the current operation */
  bool failed;
  spec_failure_t failure;
  char message[256];
  const spec_op_t *op;
  size_t index;
} M;

/* When non-NULL, spec_run stores the index of each step here before it runs
 * it (a page shared with the parent of a forked run). */
static volatile size_t *progress;

static uint64_t splitmix(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const char *spec_kind_name(unsigned kind) {
  static const char *const names[] = {
#define SPEC_NAME(name) #name,
      SPEC_OPS(SPEC_NAME)
#undef SPEC_NAME
  };
  return kind < SPEC_KIND_COUNT ? names[kind] : "?";
}

const char *spec_failure_name(spec_failure_t failure) {
  static const char *const names[] = {
#define SPEC_FNAME(name, text) #name ": " text,
      SPEC_FAILURES(SPEC_FNAME)
#undef SPEC_FNAME
  };
  return (unsigned)failure < SPEC_FAIL_COUNT ? names[failure] : "?";
}

__attribute__((format(printf, 2, 3))) static void fail(spec_failure_t failure, const char *fmt, ...) {
  if (M.failed) return; /* keep the first */
  M.failed = true;
  M.failure = failure;
  int n = snprintf(M.message, sizeof M.message, "%s slot %u: ", spec_kind_name(M.op->kind),
                   (unsigned)M.op->slot);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof M.message) n = sizeof M.message - 1;
  va_list args;
  va_start(args, fmt);
  vsnprintf(M.message + n, sizeof M.message - (size_t)n, fmt, args);
  va_end(args);
}

/* ------------------------------------------------------------------------
 * The address treap: live blocks ordered by start address.  Insert checks
 * the new block against its two neighbours only, which suffices: if the
 * ranges in the tree are pairwise disjoint and sorted, a new range overlaps
 * some range iff it overlaps its predecessor or its successor.
 * ---------------------------------------------------------------------- */

#define NODE(i) (M.blocks[(i)-1])

static uintptr_t node_key(uint32_t i) { return (uintptr_t)NODE(i).p; }
/* A block of usable size 0 still owns its address (malloc(0) is unique). */
static size_t extent(const block_t *b) { return b->usable ? b->usable : 1; }

static uint32_t rotate_right(uint32_t t) {
  uint32_t l = NODE(t).left;
  NODE(t).left = NODE(l).right;
  NODE(l).right = t;
  return l;
}

static uint32_t rotate_left(uint32_t t) {
  uint32_t r = NODE(t).right;
  NODE(t).right = NODE(r).left;
  NODE(r).left = t;
  return r;
}

static uint32_t treap_insert(uint32_t t, uint32_t n) {
  if (t == 0) return n;
  if (node_key(n) < node_key(t)) {
    NODE(t).left = treap_insert(NODE(t).left, n);
    if (NODE(NODE(t).left).prio > NODE(t).prio) t = rotate_right(t);
  } else {
    NODE(t).right = treap_insert(NODE(t).right, n);
    if (NODE(NODE(t).right).prio > NODE(t).prio) t = rotate_left(t);
  }
  return t;
}

static uint32_t treap_remove(uint32_t t, uint32_t n) {
  if (t == 0) return 0;
  if (t == n) {
    uint32_t l = NODE(t).left, r = NODE(t).right;
    if (l == 0) return r;
    if (r == 0) return l;
    if (NODE(l).prio > NODE(r).prio) {
      t = rotate_right(t);
      NODE(t).right = treap_remove(NODE(t).right, n);
    } else {
      t = rotate_left(t);
      NODE(t).left = treap_remove(NODE(t).left, n);
    }
    return t;
  }
  if (node_key(n) < node_key(t))
    NODE(t).left = treap_remove(NODE(t).left, n);
  else
    NODE(t).right = treap_remove(NODE(t).right, n);
  return t;
}

/* The live block that overlaps [start, start + len), or 0. */
static uint32_t treap_overlap(uintptr_t start, size_t len) {
  uint32_t pred = 0, succ = 0;
  for (uint32_t t = M.root; t != 0;) {
    if (node_key(t) <= start) {
      pred = t;
      t = NODE(t).right;
    } else {
      succ = t;
      t = NODE(t).left;
    }
  }
  if (pred != 0 && node_key(pred) + extent(&NODE(pred)) > start) return pred;
  if (succ != 0 && node_key(succ) < start + len) return succ;
  return 0;
}

/* ------------------------------------------------------------------------
 * Content patterns: word i of a block with seed s is s ^ (i * golden), so a
 * block's bytes differ from any other block's and from a shifted copy of
 * its own.  Blocks may start at any address (arena alignment 1): words are
 * moved with __builtin_memcpy, which compiles to one unaligned move even
 * under -fno-builtin.
 * ---------------------------------------------------------------------- */

static inline uint64_t pattern_word(uint64_t seed, size_t i) { return seed ^ (i * 0x9e3779b97f4a7c15ull); }

static void pattern_fill(uint8_t *p, size_t n, uint64_t seed) {
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    __builtin_memcpy(p + 8 * i, &w, 8);
  }
  uint64_t w = pattern_word(seed, words);
  for (size_t k = 0; k < n % 8; k++) p[8 * words + k] = (uint8_t)(w >> (8 * k));
}

/* Offset of the first byte in [0, n) that differs from the pattern, or n. */
static size_t pattern_check(const uint8_t *p, size_t n, uint64_t seed) {
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    __builtin_memcpy(&w, p + 8 * i, 8);
    if (w != pattern_word(seed, i)) {
      uint64_t x = w ^ pattern_word(seed, i);
      return 8 * i + (size_t)(__builtin_ctzll(x) / 8);
    }
  }
  uint64_t w = pattern_word(seed, words);
  for (size_t k = 0; k < n % 8; k++)
    if (p[8 * words + k] != (uint8_t)(w >> (8 * k))) return 8 * words + k;
  return n;
}

static size_t first_nonzero(const uint8_t *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, p + i, 8);
    if (w != 0) break;
  }
  for (; i < n; i++)
    if (p[i] != 0) return i;
  return n;
}

/* ------------------------------------------------------------------------
 * Block bookkeeping
 * ---------------------------------------------------------------------- */

static block_t *slot_block(unsigned slot) { return &M.blocks[slot % SPEC_SLOTS]; }

/* Verify a live block's whole usable range. */
static bool verify_block(unsigned slot, const char *when) {
  block_t *b = slot_block(slot);
  size_t bad = pattern_check(b->p, b->usable, b->seed);
  if (bad != b->usable) {
    fail(SPEC_FAIL_CONTENT, "block in slot %u (%p, size %zu, usable %zu) changed at offset %zu %s", slot,
         (void *)b->p, b->size, b->usable, bad, when);
    return false;
  }
  return true;
}

/* Record a block the allocator just returned, after checking it: alignment,
 * usable size, ownership, disjointness, zeroing; then fill it. */
static bool add_block(unsigned slot, void *ptr, size_t size, size_t align, int src, unsigned obj,
                      bool zeroed, size_t usable, int free_how) {
  block_t *b = slot_block(slot);
  uint8_t *p = ptr;
  /* kiln.h: a block always fits alignment 16 (arena and pool blocks too). */
  if ((uintptr_t)p % 16 != 0) {
    fail(SPEC_FAIL_ALIGN, "%p not 16-byte aligned (size %zu)", ptr, size);
    return false;
  }
  if (src == SRC_MALLOC || src == SRC_HEAP) {
    if (M.api->owns != NULL && !M.api->owns(p)) {
      fail(SPEC_FAIL_OWNS, "kiln_owns(%p) is false for a block just allocated", ptr);
      return false;
    }
  }
  if (align > 1 && (uintptr_t)p % align != 0) {
    fail(SPEC_FAIL_ALIGN, "%p not aligned to %zu (size %zu)", ptr, align, size);
    return false;
  }
  if (usable < size) {
    fail(SPEC_FAIL_USABLE, "usable size %zu < requested %zu (%p)", usable, size, ptr);
    return false;
  }
  if (usable == 0 && (src == SRC_MALLOC || src == SRC_HEAP) && M.api->usable_size != NULL) {
    /* kiln.h: usable_size is 0 only for NULL and pointers Kiln did not hand
     * out, so even a 0-byte block must report more. */
    fail(SPEC_FAIL_USABLE, "usable size 0 for a block just allocated (%p, size %zu): not recognised", ptr, size);
    return false;
  }
  if ((uintptr_t)p + (usable ? usable : 1) < (uintptr_t)p) {
    fail(SPEC_FAIL_BOUNDS, "%p + usable %zu wraps around", ptr, usable);
    return false;
  }
  block_t probe = {.p = p, .usable = usable};
  uint32_t other = treap_overlap((uintptr_t)p, extent(&probe));
  if (other != 0) {
    block_t *o = &NODE(other);
    fail(SPEC_FAIL_OVERLAP, "new block [%p, +%zu) overlaps slot %u [%p, +%zu)", ptr, usable,
         (unsigned)(other - 1), (void *)o->p, o->usable);
    return false;
  }
  if (zeroed) {
    size_t nz = first_nonzero(p, size);
    if (nz != size) {
      fail(SPEC_FAIL_ZERO, "byte %zu of %zu not zero (%p)", nz, size, ptr);
      return false;
    }
  }
  *b = (block_t){.p = p,
                 .size = size,
                 .align = align ? align : 1,
                 .usable = usable,
                 .seed = splitmix(&M.rng),
                 .src = (uint8_t)src,
                 .free_how = (uint8_t)free_how,
                 .obj = (uint16_t)obj,
                 .prio = (uint32_t)splitmix(&M.rng) | 1u};
  M.root = treap_insert(M.root, slot % SPEC_SLOTS + 1);
  M.live++;
  if (src == SRC_HEAP) M.heaps[obj].live_bytes += size;
  if (src == SRC_POOL) M.pools[obj].live++;
  if (src == SRC_ARENA) b->seq = M.arenas[obj].seq++;
  pattern_fill(p, usable, b->seed);
  return true;
}

static void remove_block(unsigned slot) {
  block_t *b = slot_block(slot);
  if (b->src == SRC_NONE) return;
  M.root = treap_remove(M.root, slot % SPEC_SLOTS + 1);
  M.live--;
  if (b->src == SRC_HEAP) M.heaps[b->obj].live_bytes -= b->size;
  if (b->src == SRC_POOL) M.pools[b->obj].live--;
  b->src = SRC_NONE;
  b->p = NULL;
}

static bool slot_free(unsigned slot) { return slot_block(slot)->src == SRC_NONE; }

/* The usable size the allocator reports for a malloc-family block. */
static size_t reported_usable(void *p, size_t requested) {
  return M.api->usable_size != NULL ? M.api->usable_size(p) : requested;
}

/* A failed allocation: NULL and errno must say why. */
static void expect_failure(void *p, int err, int expected, const char *what, size_t size) {
  if (p != NULL) {
    fail(SPEC_FAIL_NOT_NULL, "%s(%zu) returned %p; it must fail", what, size, p);
    return;
  }
  if (err != expected)
    fail(SPEC_FAIL_ERRNO, "%s(%zu) failed with errno %d, expected %d", what, size, err, expected);
}

static bool must_fail(size_t size) { return size > SPEC_MUST_FAIL; }
static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* ------------------------------------------------------------------------
 * Operations.  Each runs on the thread the op names (see run_op).
 * ---------------------------------------------------------------------- */

/* Outcome of one malloc-like call whose request is `size` bytes; `bad`:
 * arguments the contract rejects (EINVAL), `overflow`: size computation
 * overflowed (ENOMEM); `may_fail`: a limit allows ENOMEM. */
static void after_alloc(void *p, int err, const char *what, unsigned slot, size_t size, size_t align,
                        bool bad, bool overflow, bool may_fail, bool zeroed, int src, unsigned obj,
                        int free_how) {
  if (bad) {
    expect_failure(p, err, EINVAL, what, size);
    return;
  }
  if (overflow || must_fail(size)) {
    expect_failure(p, err, ENOMEM, what, size);
    return;
  }
  if (size > SPEC_MUST_SUCCEED) may_fail = true; /* beyond what a test machine must hold */
  if (p == NULL) {
    if (may_fail && err == ENOMEM) return;
    if (may_fail)
      fail(SPEC_FAIL_ERRNO, "%s(%zu) failed with errno %d, expected ENOMEM", what, size, err);
    else
      fail(SPEC_FAIL_NULL_RESULT, "%s(%zu, align %zu) returned NULL (errno %d)", what, size, align, err);
    return;
  }
  size_t usable = src == SRC_MALLOC || src == SRC_HEAP ? reported_usable(p, size) : size;
  add_block(slot, p, size, align, src, obj, zeroed, usable, free_how);
}

static void exec_malloc(const spec_op_t *op) {
  if (!slot_free(op->slot)) return;
  errno = 0;
  void *p = M.api->malloc(op->a);
  after_alloc(p, errno, "malloc", op->slot, op->a, 16, false, false, false, false, SRC_MALLOC, 0,
              FREE_SIZED_OK);
}

static void exec_calloc(const spec_op_t *op) {
  if (!slot_free(op->slot)) return;
  size_t total;
  bool overflow = __builtin_mul_overflow(op->a, op->b, &total);
  errno = 0;
  void *p = M.api->calloc(op->a, op->b);
  after_alloc(p, errno, "calloc", op->slot, overflow ? SIZE_MAX : total, 16, false, overflow, false,
              true, SRC_MALLOC, 0, FREE_SIZED_OK);
}

static void exec_valloc(const spec_op_t *op, bool pvalloc) {
  if (!slot_free(op->slot)) return;
  size_t size = op->a;
  bool overflow = false;
  if (pvalloc) { /* pvalloc rounds the size up to the page: that can overflow */
    overflow = size > SIZE_MAX - (M.page_size - 1);
    if (!overflow) size = (size + M.page_size - 1) & ~(M.page_size - 1);
  }
  errno = 0;
  void *p = pvalloc ? M.api->pvalloc(op->a) : M.api->valloc(op->a);
  after_alloc(p, errno, pvalloc ? "pvalloc" : "valloc", op->slot, size, M.page_size, false, overflow,
              false, false, SRC_MALLOC, 0, FREE_PLAIN);
}

static void exec_aligned(const spec_op_t *op) {
  if (!slot_free(op->slot)) return;
  size_t align = op->b, size = op->a;
  errno = 0;
  void *p = M.api->aligned_alloc(align, size);
  int err = errno;
  bool bad = !is_pow2(align);
  if (bad && must_fail(size) && p == NULL && err == ENOMEM) return; /* both reasons apply */
  after_alloc(p, err, "aligned_alloc", op->slot, size, align, bad, false, false, false, SRC_MALLOC, 0,
              FREE_ALIGNED_OK);
}

static void exec_memalign(const spec_op_t *op) {
  if (!slot_free(op->slot) || !is_pow2(op->b)) return; /* glibc rounds other alignments: not specified */
  errno = 0;
  void *p = M.api->memalign(op->b, op->a);
  after_alloc(p, errno, "memalign", op->slot, op->a, op->b, false, false, false, false, SRC_MALLOC, 0,
              FREE_ALIGNED_OK);
}

static void exec_posix_memalign(const spec_op_t *op) {
  if (!slot_free(op->slot)) return;
  size_t align = op->b, size = op->a;
  void *out = OUT_SENTINEL;
  int rc = M.api->posix_memalign(&out, align, size);
  bool bad = !is_pow2(align) || align % sizeof(void *) != 0;
  if (rc != 0) {
    int expected = bad ? EINVAL : must_fail(size) ? ENOMEM : 0;
    if (bad && must_fail(size) && rc == ENOMEM) expected = ENOMEM;
    if (expected == 0)
      fail(SPEC_FAIL_NULL_RESULT, "posix_memalign(align %zu, size %zu) returned %d", align, size, rc);
    else if (rc != expected)
      fail(SPEC_FAIL_ERRNO, "posix_memalign(align %zu, size %zu) returned %d, expected %d", align, size,
           rc, expected);
    else if (out != OUT_SENTINEL)
      fail(SPEC_FAIL_OUT_TOUCHED, "posix_memalign failed (%d) but set *out to %p", rc, out);
    return;
  }
  if (bad || must_fail(size)) {
    fail(SPEC_FAIL_NOT_NULL, "posix_memalign(align %zu, size %zu) succeeded (%p); it must fail", align,
         size, out);
    return;
  }
  if (out == OUT_SENTINEL) {
    fail(SPEC_FAIL_NULL_RESULT, "posix_memalign returned 0 without setting *out");
    return;
  }
  if (out == NULL && size == 0) return; /* POSIX allows NULL for size 0 */
  if (out == NULL) {
    fail(SPEC_FAIL_NULL_RESULT, "posix_memalign returned 0 and *out == NULL (size %zu)", size);
    return;
  }
  add_block(op->slot, out, size, align, SRC_MALLOC, 0, false, reported_usable(out, size), FREE_ALIGNED_OK);
}

/* realloc / reallocarray / heap_realloc of the block in op->slot to `size`
 * (`overflow`: count * size overflowed). */
static void do_realloc(const spec_op_t *op, size_t size, bool overflow, bool array) {
  block_t *b = slot_block(op->slot);
  const char *what = array ? "reallocarray" : b->src == SRC_HEAP ? "heap_realloc" : "realloc";
  if (b->src == SRC_NONE) { /* realloc(NULL, n) is malloc(n) */
    errno = 0;
    void *p = array ? M.api->reallocarray(NULL, op->a, op->b) : M.api->realloc(NULL, size);
    after_alloc(p, errno, what, op->slot, size, 16, false, overflow, false, false, SRC_MALLOC, 0,
                FREE_PLAIN);
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (!verify_block(op->slot, "before realloc")) return;
  block_t old = *b;
  heap_t *heap = b->src == SRC_HEAP ? &M.heaps[b->obj] : NULL;
  errno = 0;
  void *q = array  ? M.api->reallocarray(old.p, op->a, op->b)
            : heap ? M.api->heap_realloc(heap->h, old.p, size)
                   : M.api->realloc(old.p, size);
  int err = errno;
  if (!overflow && size == 0) { /* realloc(p, 0) frees p and returns NULL (kiln.h) */
    remove_block(op->slot);
    if (q != NULL) fail(SPEC_FAIL_NOT_NULL, "%s(%p, 0) returned %p; Kiln frees and returns NULL", what,
                        (void *)old.p, q);
    return;
  }
  if (overflow || must_fail(size) || (q == NULL && heap != NULL && heap->limit != 0)) {
    expect_failure(q, err, ENOMEM, what, size);
    if (q != NULL) {
      remove_block(op->slot);
      return;
    }
    /* A failure never changes a block that is currently allocated. */
    if (M.api->usable_size != NULL && M.api->usable_size(old.p) != old.usable)
      fail(SPEC_FAIL_USABLE, "failed %s changed usable size %zu -> %zu", what, old.usable,
           M.api->usable_size(old.p));
    verify_block(op->slot, "after a failed realloc");
    return;
  }
  if (q == NULL) {
    fail(SPEC_FAIL_NULL_RESULT, "%s(%p, %zu) returned NULL (errno %d)", what, (void *)old.p, size, err);
    return;
  }
  remove_block(op->slot);
  size_t keep = old.size < size ? old.size : size;
  size_t bad = pattern_check(q, keep, old.seed);
  if (bad != keep) {
    fail(SPEC_FAIL_CONTENT, "%s(%p -> %p, %zu -> %zu) lost byte %zu of the first %zu", what,
         (void *)old.p, q, old.size, size, bad, keep);
    return;
  }
  int src = heap ? SRC_HEAP : SRC_MALLOC;
  add_block(op->slot, q, size, 16, src, old.obj, false, reported_usable(q, size),
            array ? FREE_PLAIN : FREE_SIZED_OK);
}

static void exec_realloc(const spec_op_t *op) { do_realloc(op, op->a, false, false); }

static void exec_reallocarray(const spec_op_t *op) {
  size_t total;
  bool overflow = __builtin_mul_overflow(op->a, op->b, &total);
  if (slot_block(op->slot)->src == SRC_HEAP) return; /* no heap_reallocarray */
  do_realloc(op, overflow ? SIZE_MAX : total, overflow, true);
}

static void exec_free(const spec_op_t *op) {
  block_t *b = slot_block(op->slot);
  if (b->src == SRC_NONE) {
    if (op->kind == SPEC_FREE) M.api->free(NULL); /* must do nothing */
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (!verify_block(op->slot, "before free")) return;
  void *p = b->p;
  size_t size = b->size, align = b->align;
  int how = b->free_how;
  remove_block(op->slot);
  if (op->kind == SPEC_FREE || how == FREE_PLAIN)
    M.api->free(p);
  else if (how == FREE_ALIGNED_OK)
    M.api->free_aligned_sized(p, align, size);
  else
    M.api->free_sized(p, size);
}

static void exec_usable(const spec_op_t *op) {
  block_t *b = slot_block(op->slot);
  if (b->src == SRC_NONE) {
    if (M.api->usable_size != NULL && M.api->usable_size(NULL) != 0)
      fail(SPEC_FAIL_USABLE, "usable_size(NULL) = %zu, expected 0", M.api->usable_size(NULL));
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (M.api->usable_size != NULL && M.api->usable_size(b->p) != b->usable)
    fail(SPEC_FAIL_USABLE, "usable_size(%p) changed from %zu to %zu", (void *)b->p, b->usable,
         M.api->usable_size(b->p));
  if (M.api->owns != NULL && !M.api->owns(b->p))
    fail(SPEC_FAIL_OWNS, "kiln_owns(%p) is false for a live block", (void *)b->p);
}

static void exec_check_all(void) {
  for (unsigned s = 0; s < SPEC_SLOTS && !M.failed; s++)
    if (!slot_free(s)) verify_block(s, "(check_all)");
}

/* --- first-class heaps --- */

static heap_t *op_heap(const spec_op_t *op) {
  heap_t *h = &M.heaps[op->obj % SPEC_HEAPS];
  return h->h != NULL ? h : NULL;
}

static void check_heap_accounting(heap_t *h, const char *when) {
  if (M.api->heap_allocated == NULL) return;
  size_t reported = M.api->heap_allocated(h->h);
  /* Blocks freed by other threads may still be counted until collected:
   * the reported figure can only be larger than what is live. */
  if (reported < h->live_bytes)
    fail(SPEC_FAIL_ACCOUNTING, "heap_allocated = %zu < %zu bytes live in the heap %s", reported,
         h->live_bytes, when);
}

/* Release the model's view of every block of a heap/arena/pool (verified
 * first: a destroy must not have scribbled on them before it). */
static void drop_blocks(int src, unsigned obj, uint64_t from_seq) {
  for (unsigned s = 0; s < SPEC_SLOTS; s++) {
    block_t *b = &M.blocks[s];
    if (b->src == src && b->obj == obj && b->seq >= from_seq) {
      verify_block(s, "before its heap/arena/pool released it");
      remove_block(s);
    }
  }
}

static void exec_heap(const spec_op_t *op) {
  unsigned obj = op->obj % SPEC_HEAPS;
  heap_t *h = op_heap(op);
  switch (op->kind) {
  case SPEC_HEAP_NEW:
    if (h != NULL) return;
    errno = 0;
    M.heaps[obj] = (heap_t){.h = M.api->heap_new()};
    if (M.heaps[obj].h == NULL) fail(SPEC_FAIL_NULL_RESULT, "heap_new returned NULL (errno %d)", errno);
    return;
  case SPEC_HEAP_DESTROY:
  case SPEC_HEAP_RESET:
    if (h == NULL) return;
    drop_blocks(SRC_HEAP, obj, 0);
    if (op->kind == SPEC_HEAP_DESTROY) {
      M.api->heap_destroy(h->h);
      *h = (heap_t){0};
    } else {
      M.api->heap_reset(h->h);
    }
    return;
  case SPEC_HEAP_LIMIT: {
    if (h == NULL) return;
    size_t limit = op->a;
    M.api->heap_set_limit(h->h, limit);
    h->limit = limit;
    check_heap_accounting(h, "after set_limit");
    if (limit != 0 && limit < SPEC_MUST_SUCCEED && slot_free(op->slot)) {
      /* A request larger than the whole budget can never fit. */
      errno = 0;
      void *p = M.api->heap_malloc(h->h, limit + 1);
      expect_failure(p, errno, ENOMEM, "heap_malloc over the heap limit", limit + 1);
      if (p != NULL) M.api->free(p);
    }
    return;
  }
  default:
    break;
  }
  if (h == NULL || !slot_free(op->slot)) return;
  bool limited = h->limit != 0;
  errno = 0;
  if (op->kind == SPEC_HEAP_MALLOC) {
    void *p = M.api->heap_malloc(h->h, op->a);
    after_alloc(p, errno, "heap_malloc", op->slot, op->a, 16, false, false, limited, false, SRC_HEAP,
                obj, FREE_SIZED_OK);
  } else if (op->kind == SPEC_HEAP_CALLOC) {
    size_t total;
    bool overflow = __builtin_mul_overflow(op->a, op->b, &total);
    void *p = M.api->heap_calloc(h->h, op->a, op->b);
    after_alloc(p, errno, "heap_calloc", op->slot, overflow ? SIZE_MAX : total, 16, false, overflow,
                limited, true, SRC_HEAP, obj, FREE_SIZED_OK);
  } else if (op->kind == SPEC_HEAP_ALIGNED) {
    void *p = M.api->heap_aligned_alloc(h->h, op->b, op->a);
    int err = errno;
    bool bad = !is_pow2(op->b);
    if (bad && must_fail(op->a) && p == NULL && err == ENOMEM) return;
    after_alloc(p, err, "heap_aligned_alloc", op->slot, op->a, op->b, bad, false, limited, false,
                SRC_HEAP, obj, FREE_ALIGNED_OK);
  }
  if (!M.failed) check_heap_accounting(h, "after an allocation");
}

/* --- arenas --- */

static arena_t *op_arena(const spec_op_t *op) {
  arena_t *a = &M.arenas[op->obj % SPEC_ARENAS];
  return a->a != NULL ? a : NULL;
}

static void check_arena_info(arena_t *a, const char *when) {
  if (M.api->arena_info == NULL) return;
  kiln_arena_info_t info = M.api->arena_info(a->a);
  if (info.used > info.capacity || info.high_water < info.used || (info.chunks == 0 && info.used != 0) ||
      (a->fixed && info.capacity > a->buffer_size) || (a->fixed && info.chunks != 1) ||
      (a->limit != 0 && info.capacity > a->limit))
    fail(SPEC_FAIL_ACCOUNTING,
         "arena_info %s: used %zu capacity %zu high_water %zu chunks %zu (fixed %d, buffer %zu, limit %zu)",
         when, info.used, info.capacity, info.high_water, info.chunks, a->fixed, a->buffer_size, a->limit);
}

static void exec_arena(const spec_op_t *op) {
  unsigned obj = op->obj % SPEC_ARENAS;
  arena_t *a = op_arena(op);
  switch (op->kind) {
  case SPEC_ARENA_NEW: {
    if (a != NULL) return;
    arena_t *n = &M.arenas[obj];
    *n = (arena_t){.thread_safe = (op->flags & SPEC_ARENA_FLAG_THREAD_SAFE) != 0,
                   .fixed = (op->flags & SPEC_ARENA_FLAG_FIXED) != 0};
    unsigned flags = n->thread_safe ? KILN_ARENA_THREAD_SAFE : KILN_ARENA_DEFAULT;
    errno = 0;
    if (n->fixed) {
      size_t size = op->a % ((size_t)1 << 22); /* at most 4 MiB */
      size_t mapped = (size + M.page_size) & ~(M.page_size - 1);
      uint8_t *buf = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (buf == MAP_FAILED) return;
      n->buffer = buf;
      n->buffer_size = size;
      n->a = M.api->arena_new_fixed(buf, size, flags);
      if (n->a == NULL) {
        int err = errno;
        munmap(buf, mapped);
        *n = (arena_t){0};
        /* Too small a buffer for the arena's own header is refused. */
        if (size >= 4096 || (err != ENOMEM && err != EINVAL))
          fail(SPEC_FAIL_NULL_RESULT, "arena_new_fixed(%zu bytes) returned NULL (errno %d)", size, err);
      }
    } else {
      size_t chunk = op->a % ((size_t)1 << 22);
      n->limit = op->b;
      n->a = M.api->arena_new(chunk, op->b, flags);
      if (n->a == NULL) {
        int err = errno;
        *n = (arena_t){0};
        if (op->b == 0 || op->b >= ((size_t)8 << 20) || (err != ENOMEM && err != EINVAL))
          fail(SPEC_FAIL_NULL_RESULT, "arena_new(chunk %zu, limit %zu) returned NULL (errno %d)", chunk,
               (size_t)op->b, err);
      }
    }
    if (n->a != NULL) check_arena_info(n, "after new");
    return;
  }
  case SPEC_ARENA_ALLOC: {
    if (a == NULL || !slot_free(op->slot)) return;
    size_t size = op->a, align = op->b;
    errno = 0;
    uint8_t *p = M.api->arena_alloc(a->a, size, align);
    int err = errno;
    bool bad = align != 0 && !is_pow2(align); /* 0 means the default, 16 */
    bool may_fail = a->fixed || a->limit != 0;
    if (bad && must_fail(size) && p == NULL && err == ENOMEM) return;
    if (p != NULL && a->fixed && (p < a->buffer || size > a->buffer_size ||
                                  p + size > a->buffer + a->buffer_size)) {
      fail(SPEC_FAIL_BOUNDS, "arena_alloc(%zu) = %p outside the fixed buffer [%p, +%zu)", size, (void *)p,
           (void *)a->buffer, a->buffer_size);
      return;
    }
    after_alloc(p, err, "arena_alloc", op->slot, size, align ? align : 1, bad, false, may_fail, false,
                SRC_ARENA, obj, FREE_PLAIN);
    if (!M.failed) check_arena_info(a, "after alloc");
    return;
  }
  case SPEC_ARENA_MARK: {
    if (a == NULL) return;
    unsigned i = op->flags % SPEC_MARKS;
    a->marks[i].mark = M.api->arena_mark(a->a);
    a->marks[i].seq = a->seq;
    a->marks[i].valid = true;
    return;
  }
  case SPEC_ARENA_REWIND: {
    if (a == NULL) return;
    unsigned i = op->flags % SPEC_MARKS;
    if (!a->marks[i].valid) return;
    uint64_t seq = a->marks[i].seq;
    drop_blocks(SRC_ARENA, obj, seq);
    M.api->arena_rewind(a->a, a->marks[i].mark);
    for (unsigned k = 0; k < SPEC_MARKS; k++) /* marks taken after this one are gone */
      if (a->marks[k].seq > seq) a->marks[k].valid = false;
    /* Blocks from before the mark survive the rewind intact. */
    for (unsigned s = 0; s < SPEC_SLOTS && !M.failed; s++)
      if (M.blocks[s].src == SRC_ARENA && M.blocks[s].obj == obj) verify_block(s, "after rewind");
    check_arena_info(a, "after rewind");
    return;
  }
  case SPEC_ARENA_RESET:
  case SPEC_ARENA_DESTROY:
    if (a == NULL) return;
    drop_blocks(SRC_ARENA, obj, 0);
    for (unsigned k = 0; k < SPEC_MARKS; k++) a->marks[k].valid = false;
    if (op->kind == SPEC_ARENA_RESET) {
      M.api->arena_reset(a->a);
      if (M.api->arena_info != NULL && M.api->arena_info(a->a).used != 0)
        fail(SPEC_FAIL_ACCOUNTING, "arena_info.used = %zu after reset", M.api->arena_info(a->a).used);
      check_arena_info(a, "after reset");
    } else {
      M.api->arena_destroy(a->a);
      if (a->buffer != NULL) munmap(a->buffer, (a->buffer_size + M.page_size) & ~(M.page_size - 1));
      *a = (arena_t){0};
    }
    return;
  default:
    return;
  }
}

/* --- pools --- */

static void check_pool(pool_t *p, const char *when) {
  if (M.api->pool_in_use == NULL) return;
  size_t in_use = M.api->pool_in_use(p->p);
  if (in_use != p->live)
    fail(SPEC_FAIL_ACCOUNTING, "pool_in_use = %zu, the model has %zu blocks live %s", in_use, p->live, when);
}

static void exec_pool(const spec_op_t *op) {
  unsigned obj = op->obj % SPEC_POOLS;
  pool_t *pool = &M.pools[obj];
  switch (op->kind) {
  case SPEC_POOL_NEW: {
    if (pool->p != NULL) return;
    size_t size = op->a, align = op->b;
    errno = 0;
    kiln_pool_t *p = M.api->pool_new(size, align);
    int err = errno;
    bool bad = size == 0 || (align != 0 && !is_pow2(align));
    if (bad || must_fail(size)) {
      expect_failure(p, err, bad ? EINVAL : ENOMEM, "pool_new", size);
      if (p != NULL) M.api->pool_destroy(p);
      return;
    }
    if (p == NULL) {
      fail(SPEC_FAIL_NULL_RESULT, "pool_new(%zu, %zu) returned NULL (errno %d)", size, align, err);
      return;
    }
    *pool = (pool_t){.p = p, .block_size = size, .align = align ? align : 1};
    check_pool(pool, "after new");
    return;
  }
  case SPEC_POOL_ALLOC: {
    if (pool->p == NULL || !slot_free(op->slot)) return;
    errno = 0;
    void *p = M.api->pool_alloc(pool->p);
    after_alloc(p, errno, "pool_alloc", op->slot, pool->block_size, pool->align, false, false, false,
                false, SRC_POOL, obj, FREE_PLAIN);
    if (!M.failed) check_pool(pool, "after alloc");
    return;
  }
  case SPEC_POOL_FREE: {
    block_t *b = slot_block(op->slot);
    if (b->src != SRC_POOL) return;
    if (!verify_block(op->slot, "before pool_free")) return;
    pool = &M.pools[b->obj];
    void *p = b->p;
    remove_block(op->slot);
    M.api->pool_free(pool->p, p);
    check_pool(pool, "after free");
    return;
  }
  case SPEC_POOL_DESTROY:
    if (pool->p == NULL) return;
    check_pool(pool, "before destroy");
    drop_blocks(SRC_POOL, obj, 0);
    M.api->pool_destroy(pool->p);
    *pool = (pool_t){0};
    return;
  default:
    return;
  }
}

static void exec_op(const spec_op_t *op) {
  switch ((spec_kind_t)op->kind) {
  case SPEC_MALLOC: exec_malloc(op); break;
  case SPEC_CALLOC: exec_calloc(op); break;
  case SPEC_REALLOC: exec_realloc(op); break;
  case SPEC_REALLOCARRAY: exec_reallocarray(op); break;
  case SPEC_ALIGNED_ALLOC: exec_aligned(op); break;
  case SPEC_POSIX_MEMALIGN: exec_posix_memalign(op); break;
  case SPEC_MEMALIGN: exec_memalign(op); break;
  case SPEC_VALLOC: exec_valloc(op, false); break;
  case SPEC_PVALLOC: exec_valloc(op, true); break;
  case SPEC_FREE:
  case SPEC_FREE_SIZED:
  case SPEC_FREE_ALIGNED_SIZED: exec_free(op); break;
  case SPEC_USABLE_SIZE: exec_usable(op); break;
  case SPEC_CHECK_ALL: exec_check_all(); break;
  case SPEC_HEAP_NEW:
  case SPEC_HEAP_DESTROY:
  case SPEC_HEAP_RESET:
  case SPEC_HEAP_MALLOC:
  case SPEC_HEAP_CALLOC:
  case SPEC_HEAP_ALIGNED:
  case SPEC_HEAP_LIMIT:
    if (M.api->heap_new != NULL) exec_heap(op);
    break;
  case SPEC_ARENA_NEW:
  case SPEC_ARENA_ALLOC:
  case SPEC_ARENA_MARK:
  case SPEC_ARENA_REWIND:
  case SPEC_ARENA_RESET:
  case SPEC_ARENA_DESTROY:
    if (M.api->arena_new != NULL) exec_arena(op);
    break;
  case SPEC_POOL_NEW:
  case SPEC_POOL_ALLOC:
  case SPEC_POOL_FREE:
  case SPEC_POOL_DESTROY:
    if (M.api->pool_new != NULL) exec_pool(op);
    break;
  case SPEC_THREAD_EXIT: /* handled by run_op */
  case SPEC_KIND_COUNT: break;
  }
}

/* ------------------------------------------------------------------------
 * Worker threads: each waits for one operation at a time; the caller
 * blocks until it is done, so the model is never touched concurrently (the
 * mutex hand-off orders every model access).
 * ---------------------------------------------------------------------- */

enum { CMD_NONE, CMD_RUN, CMD_EXIT };

typedef struct worker_s {
  pthread_t thread;
  bool started;
  int command;
  bool done;
  const spec_op_t *op;
  pthread_mutex_t lock;
  pthread_cond_t cond;
} worker_t;

static worker_t workers[SPEC_WORKERS];

static void *worker_main(void *arg) {
  worker_t *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->command == CMD_NONE) pthread_cond_wait(&w->cond, &w->lock);
    if (w->command == CMD_EXIT) break;
    const spec_op_t *op = w->op;
    pthread_mutex_unlock(&w->lock);
    exec_op(op);
    pthread_mutex_lock(&w->lock);
    w->command = CMD_NONE;
    w->done = true;
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void workers_init(void) {
  for (unsigned i = 0; i < SPEC_WORKERS; i++) {
    workers[i] = (worker_t){.started = false};
    pthread_mutex_init(&workers[i].lock, NULL);
    pthread_cond_init(&workers[i].cond, NULL);
  }
}

static bool worker_start(worker_t *w) {
  w->command = CMD_NONE;
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return false;
  w->started = true;
  return true;
}

static void worker_stop(worker_t *w) {
  if (!w->started) return;
  pthread_mutex_lock(&w->lock);
  w->command = CMD_EXIT;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  w->started = false;
}

static void worker_run(worker_t *w, const spec_op_t *op) {
  if (!w->started && !worker_start(w)) {
    exec_op(op); /* no thread to be had: still run it */
    return;
  }
  pthread_mutex_lock(&w->lock);
  w->op = op;
  w->done = false;
  w->command = CMD_RUN;
  pthread_cond_broadcast(&w->cond);
  while (!w->done) pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

/* Operations that the API ties to the owning thread run on the caller. */
static unsigned op_thread(const spec_op_t *op) {
  unsigned t = op->thread % (SPEC_WORKERS + 1);
  switch ((spec_kind_t)op->kind) {
  case SPEC_HEAP_NEW:
  case SPEC_HEAP_DESTROY:
  case SPEC_HEAP_RESET:
  case SPEC_HEAP_MALLOC:
  case SPEC_HEAP_CALLOC:
  case SPEC_HEAP_ALIGNED:
  case SPEC_HEAP_LIMIT:
  case SPEC_ARENA_NEW:
  case SPEC_ARENA_MARK:
  case SPEC_ARENA_REWIND:
  case SPEC_ARENA_RESET:
  case SPEC_ARENA_DESTROY:
  case SPEC_CHECK_ALL:
    return 0;
  case SPEC_ARENA_ALLOC: {
    arena_t *a = &M.arenas[op->obj % SPEC_ARENAS];
    return a->a != NULL && a->thread_safe ? t : 0;
  }
  case SPEC_REALLOC:
    return slot_block(op->slot)->src == SRC_HEAP ? 0 : t;
  default:
    return t;
  }
}

/* ------------------------------------------------------------------------
 * Running
 * ---------------------------------------------------------------------- */

static bool workers_ready;

void spec_model_begin(const spec_api_t *api) {
  if (!workers_ready) {
    workers_init();
    workers_ready = true;
  }
  /* Keep running workers; reset everything else. */
  memset(M.blocks, 0, sizeof M.blocks);
  memset(M.heaps, 0, sizeof M.heaps);
  memset(M.arenas, 0, sizeof M.arenas);
  memset(M.pools, 0, sizeof M.pools);
  M.api = api;
  M.root = 0;
  M.live = 0;
  M.rng = 0x6b696c6e; /* "kiln": seeds of block contents, deterministic */
  M.page_size = (size_t)sysconf(_SC_PAGESIZE);
  M.failed = false;
  M.failure = SPEC_FAIL_NONE;
  M.message[0] = 0;
}

static void take_failure(size_t index, spec_result_t *result) {
  result->failure = M.failure;
  result->step = index;
  snprintf(result->message, sizeof result->message, "%s", M.message);
}

bool spec_model_step(const spec_op_t *op, size_t index, spec_result_t *result) {
  M.op = op;
  M.index = index;
  if (op->kind >= SPEC_KIND_COUNT) return true;
  if (op->kind == SPEC_THREAD_EXIT) {
    unsigned t = op->thread % (SPEC_WORKERS + 1);
    if (t != 0) worker_stop(&workers[t - 1]);
    return true;
  }
  unsigned t = op_thread(op);
  if (t == 0)
    exec_op(op);
  else
    worker_run(&workers[t - 1], op);
  if (M.failed) {
    take_failure(index, result);
    return false;
  }
  return true;
}

bool spec_model_end(bool stop_workers, spec_result_t *result) {
  static const spec_op_t end_op = {.kind = SPEC_CHECK_ALL};
  M.op = &end_op;
  for (unsigned s = 0; s < SPEC_SLOTS && !M.failed; s++) {
    block_t *b = &M.blocks[s];
    if (b->src == SRC_MALLOC || b->src == SRC_HEAP) {
      spec_op_t op = {.kind = SPEC_FREE, .slot = (uint16_t)s};
      M.op = &op;
      exec_free(&op);
      M.op = &end_op;
    }
  }
  for (unsigned i = 0; i < SPEC_POOLS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_POOL_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.pools[i].p != NULL) exec_pool(&op);
  }
  for (unsigned i = 0; i < SPEC_ARENAS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_ARENA_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.arenas[i].a != NULL) exec_arena(&op);
  }
  for (unsigned i = 0; i < SPEC_HEAPS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_HEAP_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.heaps[i].h != NULL) exec_heap(&op);
  }
  if (stop_workers)
    for (unsigned i = 0; i < SPEC_WORKERS; i++) worker_stop(&workers[i]);
  if (M.failed) {
    take_failure(SIZE_MAX, result);
    return false;
  }
  return true;
}

spec_result_t spec_run(const spec_api_t *api, const spec_op_t *ops, size_t n) {
  spec_result_t result = {.failure = SPEC_FAIL_NONE};
  spec_model_begin(api);
  for (size_t i = 0; i < n; i++) {
    if (progress != NULL) *progress = i;
    if (!spec_model_step(&ops[i], i, &result)) return result;
  }
  if (progress != NULL) *progress = n;
  if (!spec_model_end(true, &result)) result.step = n;
  return result;
}

/* The page a forked child reports through. */
typedef struct shared_s {
  volatile size_t step;
  volatile int done;
  spec_result_t result;
} shared_t;

static bool quiet_children;

spec_result_t spec_run_forked(const spec_api_t *api, const spec_op_t *ops, size_t n, unsigned timeout_s) {
  spec_result_t result = {.failure = SPEC_FAIL_NONE};
  shared_t *sh = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    result.failure = SPEC_FAIL_CRASH;
    snprintf(result.message, sizeof result.message, "mmap of the shared page failed");
    return result;
  }
  sh->step = 0;
  sh->done = 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (quiet_children) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    workers_ready = false; /* the parent's workers did not survive fork */
    progress = &sh->step;
    if (timeout_s != 0) alarm(timeout_s);
    sh->result = spec_run(api, ops, n);
    sh->done = 1;
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) {
    result.failure = SPEC_FAIL_CRASH;
    snprintf(result.message, sizeof result.message, "fork/waitpid failed: %s", strerror(errno));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && sh->done) {
    result = sh->result;
  } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    result.failure = SPEC_FAIL_TIMEOUT;
    result.step = sh->step;
    snprintf(result.message, sizeof result.message, "no progress within %u s (at step %zu, %s)", timeout_s,
             (size_t)sh->step, sh->step < n ? spec_kind_name(ops[sh->step].kind) : "end");
  } else {
    result.failure = SPEC_FAIL_CRASH;
    result.step = sh->step;
    if (WIFSIGNALED(status))
      snprintf(result.message, sizeof result.message, "killed by signal %d (%s) at step %zu (%s)",
               WTERMSIG(status), strsignal(WTERMSIG(status)), (size_t)sh->step,
               sh->step < n ? spec_kind_name(ops[sh->step].kind) : "end");
    else
      snprintf(result.message, sizeof result.message, "exited with status %d at step %zu (%s)",
               WEXITSTATUS(status), (size_t)sh->step,
               sh->step < n ? spec_kind_name(ops[sh->step].kind) : "end");
  }
  munmap(sh, sizeof(shared_t));
  return result;
}

/* ------------------------------------------------------------------------
 * Generating sequences.  The generator tracks which slots it expects to be
 * live (ignoring failures), so frees mostly hit live blocks; the model
 * tolerates any mismatch (an op on an empty slot is a no-op).
 * ---------------------------------------------------------------------- */

spec_op_t *spec_ops_alloc(size_t n) {
  size_t bytes = (n ? n : 1) * sizeof(spec_op_t);
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void spec_ops_release(spec_op_t *ops, size_t n) {
  if (ops != NULL) munmap(ops, (n ? n : 1) * sizeof(spec_op_t));
}

spec_gen_config_t spec_gen_default(const spec_api_t *api) {
  return (spec_gen_config_t){.slots = 256,
                             .heaps = api->heap_new != NULL,
                             .arenas = api->arena_new != NULL,
                             .pools = api->pool_new != NULL,
                             .threads = true,
                             .exits = true,
                             .failures = true,
                             .big = true};
}

/* Requests that must fail with ENOMEM (all > SPEC_MUST_FAIL). */
static const uint64_t fail_sizes[] = {
    (uint64_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4095, (uint64_t)PTRDIFF_MAX,
    (uint64_t)PTRDIFF_MAX - 4095, (uint64_t)1 << 48, ((uint64_t)1 << 62) + 1,
};
#define FAIL_SIZES (sizeof fail_sizes / sizeof fail_sizes[0])

/* Sizes where size classes and page kinds change. */
static const uint64_t edge_sizes[] = {0, 1, 15, 16, 17, 127, 128, 129, 1024, 1025, 8191, 8192, 8193,
                                      65535, 65536, 65537, 1048575, 1048576, 1048577, 4194304, 4194305};
#define EDGE_SIZES (sizeof edge_sizes / sizeof edge_sizes[0])

typedef struct gen_s {
  uint64_t rng;
  const spec_gen_config_t *cfg;
  uint8_t live[SPEC_SLOTS]; /* SRC_* the generator expects */
  bool heap[SPEC_HEAPS], arena[SPEC_ARENAS], pool[SPEC_POOLS];
} gen_t;

static uint64_t gen_below(gen_t *g, uint64_t n) { return n ? splitmix(&g->rng) % n : 0; }

static uint64_t gen_size(gen_t *g) {
  uint64_t r = gen_below(g, 1000);
  if (r < 600) return gen_below(g, 129);
  if (r < 850) return 129 + gen_below(g, 4096 - 128);
  if (r < 950) return 4097 + gen_below(g, 65536 - 4096);
  if (r < 975) return edge_sizes[gen_below(g, g->cfg->big ? EDGE_SIZES : EDGE_SIZES - 5)];
  if (r < 995 || !g->cfg->big) return 65537 + gen_below(g, (1u << 20) - 65536);
  return ((uint64_t)1 << 20) + gen_below(g, (uint64_t)7 << 20);
}

/* A size for an allocation op: sometimes one that must fail. */
static uint64_t gen_alloc_size(gen_t *g) {
  if (g->cfg->failures && gen_below(g, 100) < 2) return fail_sizes[gen_below(g, FAIL_SIZES)];
  return gen_size(g);
}

static uint64_t gen_align(gen_t *g, bool allow_bad) {
  if (allow_bad && g->cfg->failures && gen_below(g, 100) < 3) {
    static const uint64_t bad[] = {0, 3, 24, 48, 100, 4097, ((uint64_t)1 << 12) + 16};
    return bad[gen_below(g, sizeof bad / sizeof bad[0])];
  }
  unsigned shift = (unsigned)gen_below(g, 100) < 90 ? (unsigned)gen_below(g, 13) : 13 + (unsigned)gen_below(g, g->cfg->big ? 8 : 4);
  return (uint64_t)1 << shift;
}

static unsigned gen_free_slot(gen_t *g) {
  for (int tries = 0; tries < 8; tries++) {
    unsigned s = (unsigned)gen_below(g, g->cfg->slots);
    if (g->live[s] == SRC_NONE) return s;
  }
  return (unsigned)gen_below(g, g->cfg->slots);
}

static unsigned gen_live_slot(gen_t *g, int src) {
  for (int tries = 0; tries < 16; tries++) {
    unsigned s = (unsigned)gen_below(g, g->cfg->slots);
    if (src < 0 ? g->live[s] != SRC_NONE : g->live[s] == src) return s;
  }
  return (unsigned)gen_below(g, g->cfg->slots);
}

typedef struct weight_s {
  uint8_t kind;
  uint16_t weight; /* per mille-ish */
  uint8_t family;  /* 0 malloc, 1 heap, 2 arena, 3 pool, 5 thread exit */
} weight_t;

static const weight_t weights[] = {
    {SPEC_MALLOC, 200, 0},      {SPEC_CALLOC, 40, 0},          {SPEC_REALLOC, 100, 0},
    {SPEC_REALLOCARRAY, 15, 0}, {SPEC_ALIGNED_ALLOC, 30, 0},   {SPEC_POSIX_MEMALIGN, 20, 0},
    {SPEC_MEMALIGN, 15, 0},     {SPEC_VALLOC, 4, 0},           {SPEC_PVALLOC, 4, 0},
    {SPEC_FREE, 180, 0},        {SPEC_FREE_SIZED, 50, 0},      {SPEC_FREE_ALIGNED_SIZED, 20, 0},
    {SPEC_USABLE_SIZE, 30, 0},  {SPEC_CHECK_ALL, 1, 0},        {SPEC_HEAP_NEW, 5, 1},
    {SPEC_HEAP_DESTROY, 2, 1},  {SPEC_HEAP_RESET, 1, 1},       {SPEC_HEAP_MALLOC, 50, 1},
    {SPEC_HEAP_CALLOC, 10, 1},  {SPEC_HEAP_ALIGNED, 10, 1},    {SPEC_HEAP_LIMIT, 2, 1},
    {SPEC_ARENA_NEW, 5, 2},     {SPEC_ARENA_ALLOC, 50, 2},     {SPEC_ARENA_MARK, 5, 2},
    {SPEC_ARENA_REWIND, 4, 2},  {SPEC_ARENA_RESET, 2, 2},      {SPEC_ARENA_DESTROY, 2, 2},
    {SPEC_POOL_NEW, 5, 3},      {SPEC_POOL_ALLOC, 40, 3},      {SPEC_POOL_FREE, 40, 3},
    {SPEC_POOL_DESTROY, 2, 3},  {SPEC_THREAD_EXIT, 2, 5},
};
#define WEIGHTS (sizeof weights / sizeof weights[0])

static bool family_on(const spec_gen_config_t *c, unsigned family) {
  switch (family) {
  case 1: return c->heaps;
  case 2: return c->arenas;
  case 3: return c->pools;
  case 5: return c->threads && c->exits;
  default: return true;
  }
}

void spec_generate(uint64_t seed, const spec_gen_config_t *config, spec_op_t *ops, size_t n) {
  static gen_t g; /* static: 1 KiB of slots is too much for a worker's stack, and not malloc */
  memset(&g, 0, sizeof g);
  g.rng = seed;
  g.cfg = config;
  spec_gen_config_t cfg = *config;
  if (cfg.slots == 0 || cfg.slots > SPEC_SLOTS) cfg.slots = SPEC_SLOTS;
  g.cfg = &cfg;
  unsigned total = 0;
  for (unsigned i = 0; i < WEIGHTS; i++)
    if (family_on(&cfg, weights[i].family)) total += weights[i].weight;
  for (size_t i = 0; i < n; i++) {
    unsigned r = (unsigned)gen_below(&g, total), k = 0;
    for (;; k++) {
      if (!family_on(&cfg, weights[k].family)) continue;
      if (r < weights[k].weight) break;
      r -= weights[k].weight;
    }
    spec_op_t op = {.kind = weights[k].kind};
    if (cfg.threads && gen_below(&g, 100) < 30) op.thread = (uint8_t)(1 + gen_below(&g, SPEC_WORKERS));
    switch ((spec_kind_t)op.kind) {
    case SPEC_MALLOC:
    case SPEC_VALLOC:
    case SPEC_PVALLOC:
      op.slot = (uint16_t)gen_free_slot(&g);
      op.a = gen_alloc_size(&g);
      g.live[op.slot] = must_fail(op.a) ? SRC_NONE : SRC_MALLOC;
      break;
    case SPEC_CALLOC:
      op.slot = (uint16_t)gen_free_slot(&g);
      if (cfg.failures && gen_below(&g, 100) < 3) {
        static const uint64_t pairs[][2] = {{SIZE_MAX / 2 + 1, 2}, {(uint64_t)1 << 32, (uint64_t)1 << 32},
                                            {(uint64_t)PTRDIFF_MAX, 2}, {(uint64_t)1 << 24, (uint64_t)1 << 24},
                                            {3, SIZE_MAX / 3 + 1}};
        unsigned j = (unsigned)gen_below(&g, 5);
        op.a = pairs[j][0];
        op.b = pairs[j][1];
      } else {
        op.a = gen_below(&g, 65);
        op.b = gen_size(&g) % 1025;
        g.live[op.slot] = SRC_MALLOC;
      }
      break;
    case SPEC_REALLOC:
    case SPEC_REALLOCARRAY:
      op.slot = (uint16_t)(gen_below(&g, 10) == 0 ? gen_free_slot(&g) : gen_live_slot(&g, SRC_MALLOC));
      if (op.kind == SPEC_REALLOC) {
        op.a = gen_below(&g, 50) == 0 ? 0 : gen_alloc_size(&g);
        if (op.a == 0 || must_fail(op.a)) {
          if (op.a == 0) g.live[op.slot] = SRC_NONE;
        } else if (g.live[op.slot] == SRC_NONE) {
          g.live[op.slot] = SRC_MALLOC;
        }
        if (g.live[op.slot] == SRC_HEAP) op.thread = 0;
      } else {
        if (cfg.failures && gen_below(&g, 100) < 5) {
          op.a = SIZE_MAX / 4;
          op.b = 8;
        } else {
          op.a = 1 + gen_below(&g, 64);
          op.b = 1 + gen_size(&g) % 512;
          if (g.live[op.slot] == SRC_NONE) g.live[op.slot] = SRC_MALLOC;
        }
      }
      break;
    case SPEC_ALIGNED_ALLOC:
    case SPEC_POSIX_MEMALIGN:
    case SPEC_MEMALIGN:
      op.slot = (uint16_t)gen_free_slot(&g);
      op.a = gen_alloc_size(&g);
      op.b = gen_align(&g, op.kind != SPEC_MEMALIGN);
      if (op.kind == SPEC_POSIX_MEMALIGN && op.b < 8 && gen_below(&g, 2)) op.b = 8;
      g.live[op.slot] = SRC_MALLOC;
      break;
    case SPEC_FREE:
    case SPEC_FREE_SIZED:
    case SPEC_FREE_ALIGNED_SIZED:
      op.slot = (uint16_t)gen_live_slot(&g, -1);
      if (g.live[op.slot] == SRC_MALLOC || g.live[op.slot] == SRC_HEAP) g.live[op.slot] = SRC_NONE;
      break;
    case SPEC_USABLE_SIZE:
      op.slot = (uint16_t)gen_live_slot(&g, -1);
      break;
    case SPEC_CHECK_ALL:
      break;
    case SPEC_HEAP_NEW:
    case SPEC_HEAP_DESTROY:
    case SPEC_HEAP_RESET:
    case SPEC_HEAP_LIMIT:
      op.thread = 0;
      op.obj = (uint16_t)gen_below(&g, SPEC_HEAPS);
      if (op.kind == SPEC_HEAP_NEW) g.heap[op.obj] = true;
      if (op.kind == SPEC_HEAP_DESTROY || op.kind == SPEC_HEAP_RESET) {
        if (op.kind == SPEC_HEAP_DESTROY) g.heap[op.obj] = false;
        for (unsigned s = 0; s < SPEC_SLOTS; s++)
          if (g.live[s] == SRC_HEAP) g.live[s] = SRC_NONE; /* approximate: any heap */
      }
      if (op.kind == SPEC_HEAP_LIMIT) {
        op.slot = (uint16_t)gen_free_slot(&g);
        op.a = gen_below(&g, 2) ? 0 : ((uint64_t)1 << (16 + gen_below(&g, 8)));
      }
      break;
    case SPEC_HEAP_MALLOC:
    case SPEC_HEAP_CALLOC:
    case SPEC_HEAP_ALIGNED:
      op.thread = 0;
      op.obj = (uint16_t)gen_below(&g, SPEC_HEAPS);
      op.slot = (uint16_t)gen_free_slot(&g);
      if (op.kind == SPEC_HEAP_CALLOC) {
        op.a = gen_below(&g, 33);
        op.b = gen_size(&g) % 2049;
      } else {
        op.a = gen_alloc_size(&g);
      }
      if (op.kind == SPEC_HEAP_ALIGNED) op.b = gen_align(&g, true);
      if (g.heap[op.obj]) g.live[op.slot] = SRC_HEAP;
      break;
    case SPEC_ARENA_NEW:
      op.obj = (uint16_t)gen_below(&g, SPEC_ARENAS);
      op.flags = (uint8_t)gen_below(&g, 4);
      if (op.flags & SPEC_ARENA_FLAG_FIXED) {
        op.a = 4096 + gen_below(&g, (uint64_t)1 << 18);
      } else {
        op.a = gen_below(&g, 3) == 0 ? 0 : 4096 + gen_below(&g, (uint64_t)1 << 20);
        op.b = gen_below(&g, 3) == 0 ? ((uint64_t)1 << (20 + gen_below(&g, 4))) : 0;
      }
      g.arena[op.obj] = true;
      break;
    case SPEC_ARENA_ALLOC:
      op.obj = (uint16_t)gen_below(&g, SPEC_ARENAS);
      op.slot = (uint16_t)gen_free_slot(&g);
      op.a = gen_below(&g, 100) < 90 ? gen_below(&g, 257) : gen_alloc_size(&g) % ((uint64_t)1 << 20);
      if (cfg.failures && gen_below(&g, 100) < 2) op.a = fail_sizes[gen_below(&g, FAIL_SIZES)];
      op.b = gen_below(&g, 100) < 70 ? ((uint64_t)1 << gen_below(&g, 5)) : gen_align(&g, true) % 65536;
      if (op.b == 0 && gen_below(&g, 2)) op.b = 8;
      if (g.arena[op.obj]) g.live[op.slot] = SRC_ARENA;
      break;
    case SPEC_ARENA_MARK:
    case SPEC_ARENA_REWIND:
    case SPEC_ARENA_RESET:
    case SPEC_ARENA_DESTROY:
      op.thread = 0;
      op.obj = (uint16_t)gen_below(&g, SPEC_ARENAS);
      op.flags = (uint8_t)gen_below(&g, SPEC_MARKS);
      if (op.kind == SPEC_ARENA_DESTROY) g.arena[op.obj] = false;
      if (op.kind == SPEC_ARENA_RESET || op.kind == SPEC_ARENA_DESTROY || op.kind == SPEC_ARENA_REWIND)
        for (unsigned s = 0; s < SPEC_SLOTS; s++)
          if (g.live[s] == SRC_ARENA && gen_below(&g, 2)) g.live[s] = SRC_NONE;
      break;
    case SPEC_POOL_NEW:
      op.obj = (uint16_t)gen_below(&g, SPEC_POOLS);
      op.a = gen_below(&g, 20) == 0 && cfg.failures ? 0 : 1 + gen_below(&g, gen_below(&g, 4) ? 256 : 16384);
      op.b = gen_below(&g, 4) == 0 ? 0 : ((uint64_t)1 << gen_below(&g, 9));
      if (cfg.failures && gen_below(&g, 30) == 0) op.b = 24;
      g.pool[op.obj] = true;
      break;
    case SPEC_POOL_ALLOC:
      op.obj = (uint16_t)gen_below(&g, SPEC_POOLS);
      op.slot = (uint16_t)gen_free_slot(&g);
      if (g.pool[op.obj]) g.live[op.slot] = SRC_POOL;
      break;
    case SPEC_POOL_FREE:
      op.slot = (uint16_t)gen_live_slot(&g, SRC_POOL);
      if (g.live[op.slot] == SRC_POOL) g.live[op.slot] = SRC_NONE;
      break;
    case SPEC_POOL_DESTROY:
      op.obj = (uint16_t)gen_below(&g, SPEC_POOLS);
      g.pool[op.obj] = false;
      for (unsigned s = 0; s < SPEC_SLOTS; s++)
        if (g.live[s] == SRC_POOL && gen_below(&g, 2)) g.live[s] = SRC_NONE;
      break;
    case SPEC_THREAD_EXIT:
      op.thread = (uint8_t)(1 + gen_below(&g, SPEC_WORKERS));
      break;
    case SPEC_KIND_COUNT:
      break;
    }
    ops[i] = op;
  }
}

/* ------------------------------------------------------------------------
 * Fuzzer input decoding.  Each op takes 3 bytes (kind; thread | flags << 2
 * | obj << 4; slot) plus what its arguments need; sizes come from a selector
 * byte so short inputs reach the size classes, the edges and the failure
 * sizes.  fuzz/gen_corpus.py writes seeds in this format.
 * ---------------------------------------------------------------------- */

typedef struct reader_s {
  const uint8_t *p, *end;
} reader_t;

static unsigned rd8(reader_t *r) { return r->p < r->end ? *r->p++ : 0; }
static unsigned rd16(reader_t *r) { return rd8(r) | rd8(r) << 8; }

static uint64_t rd_size(reader_t *r) {
  unsigned sel = rd8(r);
  switch (sel >> 6) {
  case 0: return sel & 63 ? rd8(r) : (sel & 63); /* 0..255 */
  case 1: return rd16(r);                        /* 0..65535 */
  case 2: return (uint64_t)rd16(r) << 6;         /* up to 4 MiB */
  default:
    sel &= 63;
    if (sel < EDGE_SIZES) return edge_sizes[sel];
    return fail_sizes[(sel - EDGE_SIZES) % FAIL_SIZES];
  }
}

static uint64_t rd_align(reader_t *r) {
  unsigned sel = rd8(r);
  if (sel < 200) return (uint64_t)1 << (sel % 21);
  static const uint64_t bad[] = {0, 3, 24, 48, 100, 4097};
  return bad[sel % 6];
}

size_t spec_decode(const uint8_t *data, size_t size, spec_op_t *ops, size_t max) {
  reader_t r = {data, data + size};
  size_t n = 0;
  while (r.p < r.end && n < max) {
    spec_op_t op = {0};
    op.kind = (uint8_t)(rd8(&r) % SPEC_KIND_COUNT);
    unsigned b = rd8(&r);
    op.thread = (uint8_t)((b & 3) % (SPEC_WORKERS + 1));
    op.flags = (uint8_t)((b >> 2) & 3);
    op.obj = (uint16_t)((b >> 4) & 3);
    op.slot = (uint16_t)(rd8(&r) % 64);
    switch ((spec_kind_t)op.kind) {
    case SPEC_CALLOC:
    case SPEC_REALLOCARRAY:
    case SPEC_HEAP_CALLOC: {
      op.a = rd_size(&r);
      op.b = rd_size(&r);
      /* Products between 64 MiB and SPEC_MUST_FAIL would only make the
       * input slow (or test the machine's memory): keep them small. */
      size_t total;
      if (!__builtin_mul_overflow(op.a, op.b, &total) && total > ((size_t)64 << 20) && !must_fail(total))
        op.b = 1;
      break;
    }
    case SPEC_ALIGNED_ALLOC:
    case SPEC_POSIX_MEMALIGN:
    case SPEC_MEMALIGN:
    case SPEC_HEAP_ALIGNED:
    case SPEC_ARENA_ALLOC:
      op.a = rd_size(&r);
      op.b = rd_align(&r);
      break;
    case SPEC_ARENA_NEW:
      op.a = rd_size(&r);
      op.b = (uint64_t)rd8(&r) << 16;
      break;
    case SPEC_POOL_NEW:
      op.a = rd16(&r) % 20000;
      op.b = rd_align(&r) % 8192;
      break;
    case SPEC_HEAP_LIMIT:
      op.a = (uint64_t)rd8(&r) << 12;
      break;
    case SPEC_MALLOC:
    case SPEC_REALLOC:
    case SPEC_VALLOC:
    case SPEC_PVALLOC:
    case SPEC_HEAP_MALLOC:
      op.a = rd_size(&r);
      break;
    default: /* frees, marks, resets, destroys, pool ops, thread exit: no argument */
      break;
    }
    ops[n++] = op;
  }
  return n;
}

/* ------------------------------------------------------------------------
 * Shrinking (delta debugging, Zeller & Hildebrandt 2002, complement
 * removal): remove chunks of halving size while the failure persists, then
 * single operations, then simplify what is left (thread 0, smaller sizes).
 * Each candidate runs in a fresh child, so crashes and hangs are survived.
 * ---------------------------------------------------------------------- */

typedef struct shrinker_s {
  const spec_api_t *api;
  spec_failure_t want;
  unsigned runs, max_runs, timeout_s;
  spec_op_t *cand;
} shrinker_t;

/* Does `ops` still fail the same way?  On success, *r is the new failure. */
static bool still_fails(shrinker_t *s, const spec_op_t *ops, size_t n, spec_result_t *r) {
  if (s->runs >= s->max_runs) return false;
  s->runs++;
  spec_result_t res = spec_run_forked(s->api, ops, n, s->timeout_s);
  if (res.failure != s->want) return false;
  *r = res;
  return true;
}

static size_t fail_len(const spec_result_t *r, size_t n) { return r->step < n ? r->step + 1 : n; }

spec_result_t spec_shrink(const spec_api_t *api, spec_op_t *ops, size_t *n, spec_result_t failure,
                          unsigned max_runs, unsigned timeout_s) {
  shrinker_t s = {.api = api, .want = failure.failure, .max_runs = max_runs, .timeout_s = timeout_s};
  size_t len = fail_len(&failure, *n), cap = len;
  s.cand = spec_ops_alloc(cap);
  if (s.cand == NULL) return failure;
  bool was_quiet = quiet_children;
  quiet_children = true;
  spec_result_t r;
  /* Later steps cannot matter: cut them, if the failure survives that. */
  if (len < *n && still_fails(&s, ops, len, &r)) {
    failure = r;
    len = fail_len(&r, len);
  }
  for (size_t chunk = len / 2 ? len / 2 : 1; chunk >= 1 && s.runs < s.max_runs;) {
    bool progress_made = false;
    for (size_t i = 0; i < len && s.runs < s.max_runs;) {
      size_t cut = i + chunk <= len ? chunk : len - i;
      if (cut == len) { /* never try the empty sequence */
        i += cut;
        continue;
      }
      memcpy(s.cand, ops, i * sizeof *ops);
      memcpy(s.cand + i, ops + i + cut, (len - i - cut) * sizeof *ops);
      if (still_fails(&s, s.cand, len - cut, &r)) {
        len = fail_len(&r, len - cut);
        memcpy(ops, s.cand, len * sizeof *ops);
        failure = r;
        progress_made = true;
      } else {
        i += cut;
      }
    }
    if (!progress_made) {
      if (chunk == 1) break;
      chunk /= 2;
    } else if (chunk > len / 2 && len > 1) {
      chunk = len / 2;
    }
  }
  /* Simplify the survivors: run on thread 0, then smaller sizes. */
  for (size_t i = 0; i < len && s.runs < s.max_runs; i++) {
    if (ops[i].thread != 0 && ops[i].kind != SPEC_THREAD_EXIT) {
      memcpy(s.cand, ops, len * sizeof *ops);
      s.cand[i].thread = 0;
      if (still_fails(&s, s.cand, len, &r)) {
        memcpy(ops, s.cand, len * sizeof *ops);
        failure = r;
      }
    }
    for (int k = 0; k < 24 && ops[i].a > 1 && ops[i].a < SPEC_MUST_FAIL && s.runs < s.max_runs; k++) {
      memcpy(s.cand, ops, len * sizeof *ops);
      s.cand[i].a /= 2;
      if (!still_fails(&s, s.cand, len, &r)) break;
      memcpy(ops, s.cand, len * sizeof *ops);
      failure = r;
    }
  }
  quiet_children = was_quiet;
  spec_ops_release(s.cand, cap);
  *n = len;
  return failure;
}

/* ------------------------------------------------------------------------
 * Printing
 * ---------------------------------------------------------------------- */

static void print_u64(FILE *out, const char *field, uint64_t v) {
  if (v == 0) return;
  if (v < 1000000)
    fprintf(out, ", .%s = %llu", field, (unsigned long long)v);
  else
    fprintf(out, ", .%s = 0x%llxull", field, (unsigned long long)v);
}

void spec_print_ops(FILE *out, const char *name, const spec_op_t *ops, size_t n) {
  fprintf(out, "SPEC_REGRESSION(%s,\n", name);
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "  {.kind = SPEC_%s", spec_kind_name(ops[i].kind));
    print_u64(out, "thread", ops[i].thread);
    print_u64(out, "flags", ops[i].flags);
    print_u64(out, "slot", ops[i].slot);
    print_u64(out, "obj", ops[i].obj);
    print_u64(out, "a", ops[i].a);
    print_u64(out, "b", ops[i].b);
    fprintf(out, "}%s\n", i + 1 < n ? "," : "");
  }
  fprintf(out, ")\n");
}
