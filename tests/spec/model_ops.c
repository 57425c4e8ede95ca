/* model_ops.c — the reference model's operations: one function per
 * operation kind (exec_*), each checking Kiln's answer against the model
 * (model.c keeps the state, model_internal.h says what is shared). */
#define _GNU_SOURCE
#include "model_internal.h"

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
    model_expect_failure(p, err, EINVAL, what, size);
    return;
  }
  if (overflow || model_must_fail(size)) {
    model_expect_failure(p, err, ENOMEM, what, size);
    return;
  }
  if (size > SPEC_MUST_SUCCEED) may_fail = true; /* beyond what a test machine must hold */
  if (p == NULL) {
    if (may_fail && err == ENOMEM) return;
    if (may_fail)
      model_fail(SPEC_FAIL_ERRNO, "%s(%zu) failed with errno %d, expected ENOMEM", what, size, err);
    else
      model_fail(SPEC_FAIL_NULL_RESULT, "%s(%zu, align %zu) returned NULL (errno %d)", what, size, align, err);
    return;
  }
  size_t usable = src == SRC_MALLOC || src == SRC_HEAP ? model_reported_usable(p, size) : size;
  model_add_block(slot, p, size, align, src, obj, zeroed, usable, free_how);
}

static void exec_malloc(const spec_op_t *op) {
  if (!model_slot_free(op->slot)) return;
  errno = 0;
  void *p = M.api->malloc(op->a);
  after_alloc(p, errno, "malloc", op->slot, op->a, 16, false, false, false, false, SRC_MALLOC, 0,
              FREE_SIZED_OK);
}

static void exec_calloc(const spec_op_t *op) {
  if (!model_slot_free(op->slot)) return;
  size_t total;
  bool overflow = __builtin_mul_overflow(op->a, op->b, &total);
  errno = 0;
  void *p = M.api->calloc(op->a, op->b);
  after_alloc(p, errno, "calloc", op->slot, overflow ? SIZE_MAX : total, 16, false, overflow, false,
              true, SRC_MALLOC, 0, FREE_SIZED_OK);
}

static void exec_valloc(const spec_op_t *op, bool pvalloc) {
  if (!model_slot_free(op->slot)) return;
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
  if (!model_slot_free(op->slot)) return;
  size_t align = op->b, size = op->a;
  errno = 0;
  void *p = M.api->aligned_alloc(align, size);
  int err = errno;
  bool bad = !model_is_pow2(align);
  if (bad && model_must_fail(size) && p == NULL && err == ENOMEM) return; /* both reasons apply */
  after_alloc(p, err, "aligned_alloc", op->slot, size, align, bad, false, false, false, SRC_MALLOC, 0,
              FREE_ALIGNED_OK);
}

static void exec_memalign(const spec_op_t *op) {
  if (!model_slot_free(op->slot) || !model_is_pow2(op->b)) return; /* glibc rounds other alignments: not specified */
  errno = 0;
  void *p = M.api->memalign(op->b, op->a);
  after_alloc(p, errno, "memalign", op->slot, op->a, op->b, false, false, false, false, SRC_MALLOC, 0,
              FREE_ALIGNED_OK);
}

static void exec_posix_memalign(const spec_op_t *op) {
  if (!model_slot_free(op->slot)) return;
  size_t align = op->b, size = op->a;
  void *out = OUT_SENTINEL;
  int rc = M.api->posix_memalign(&out, align, size);
  bool bad = !model_is_pow2(align) || align % sizeof(void *) != 0;
  if (rc != 0) {
    int expected = bad ? EINVAL : model_must_fail(size) ? ENOMEM : 0;
    if (bad && model_must_fail(size) && rc == ENOMEM) expected = ENOMEM;
    if (expected == 0)
      model_fail(SPEC_FAIL_NULL_RESULT, "posix_memalign(align %zu, size %zu) returned %d", align, size, rc);
    else if (rc != expected)
      model_fail(SPEC_FAIL_ERRNO, "posix_memalign(align %zu, size %zu) returned %d, expected %d", align, size,
           rc, expected);
    else if (out != OUT_SENTINEL)
      model_fail(SPEC_FAIL_OUT_TOUCHED, "posix_memalign failed (%d) but set *out to %p", rc, out);
    return;
  }
  if (bad || model_must_fail(size)) {
    model_fail(SPEC_FAIL_NOT_NULL, "posix_memalign(align %zu, size %zu) succeeded (%p); it must fail", align,
         size, out);
    return;
  }
  if (out == OUT_SENTINEL) {
    model_fail(SPEC_FAIL_NULL_RESULT, "posix_memalign returned 0 without setting *out");
    return;
  }
  if (out == NULL && size == 0) return; /* POSIX allows NULL for size 0 */
  if (out == NULL) {
    model_fail(SPEC_FAIL_NULL_RESULT, "posix_memalign returned 0 and *out == NULL (size %zu)", size);
    return;
  }
  model_add_block(op->slot, out, size, align, SRC_MALLOC, 0, false, model_reported_usable(out, size), FREE_ALIGNED_OK);
}

/* realloc / reallocarray / heap_realloc of the block in op->slot to `size`
 * (`overflow`: count * size overflowed). */
static void do_realloc(const spec_op_t *op, size_t size, bool overflow, bool array) {
  block_t *b = model_slot_block(op->slot);
  const char *what = array ? "reallocarray" : b->src == SRC_HEAP ? "heap_realloc" : "realloc";
  if (b->src == SRC_NONE) { /* realloc(NULL, n) is malloc(n) */
    errno = 0;
    void *p = array ? M.api->reallocarray(NULL, op->a, op->b) : M.api->realloc(NULL, size);
    after_alloc(p, errno, what, op->slot, size, 16, false, overflow, false, false, SRC_MALLOC, 0,
                FREE_PLAIN);
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (!model_verify_block(op->slot, "before realloc")) return;
  block_t old = *b;
  heap_t *heap = b->src == SRC_HEAP ? &M.heaps[b->obj] : NULL;
  errno = 0;
  void *q = array  ? M.api->reallocarray(old.p, op->a, op->b)
            : heap ? M.api->heap_realloc(heap->h, old.p, size)
                   : M.api->realloc(old.p, size);
  int err = errno;
  if (!overflow && size == 0) { /* realloc(p, 0) frees p and returns NULL (kiln.h) */
    model_remove_block(op->slot);
    if (q != NULL) model_fail(SPEC_FAIL_NOT_NULL, "%s(%p, 0) returned %p; Kiln frees and returns NULL", what,
                        (void *)old.p, q);
    return;
  }
  if (overflow || model_must_fail(size) || (q == NULL && heap != NULL && heap->limit != 0)) {
    model_expect_failure(q, err, ENOMEM, what, size);
    if (q != NULL) {
      model_remove_block(op->slot);
      return;
    }
    /* A failure never changes a block that is currently allocated. */
    if (M.api->usable_size != NULL && M.api->usable_size(old.p) != old.usable)
      model_fail(SPEC_FAIL_USABLE, "failed %s changed usable size %zu -> %zu", what, old.usable,
           M.api->usable_size(old.p));
    model_verify_block(op->slot, "after a failed realloc");
    return;
  }
  if (q == NULL) {
    model_fail(SPEC_FAIL_NULL_RESULT, "%s(%p, %zu) returned NULL (errno %d)", what, (void *)old.p, size, err);
    return;
  }
  model_remove_block(op->slot);
  size_t keep = old.size < size ? old.size : size;
  size_t bad = model_pattern_check(q, keep, old.seed);
  if (bad != keep) {
    model_fail(SPEC_FAIL_CONTENT, "%s(%p -> %p, %zu -> %zu) lost byte %zu of the first %zu", what,
         (void *)old.p, q, old.size, size, bad, keep);
    return;
  }
  int src = heap ? SRC_HEAP : SRC_MALLOC;
  model_add_block(op->slot, q, size, 16, src, old.obj, false, model_reported_usable(q, size),
            array ? FREE_PLAIN : FREE_SIZED_OK);
}

static void exec_realloc(const spec_op_t *op) { do_realloc(op, op->a, false, false); }

static void exec_reallocarray(const spec_op_t *op) {
  size_t total;
  bool overflow = __builtin_mul_overflow(op->a, op->b, &total);
  if (model_slot_block(op->slot)->src == SRC_HEAP) return; /* no heap_reallocarray */
  do_realloc(op, overflow ? SIZE_MAX : total, overflow, true);
}

void model_exec_free(const spec_op_t *op) {
  block_t *b = model_slot_block(op->slot);
  if (b->src == SRC_NONE) {
    if (op->kind == SPEC_FREE) M.api->free(NULL); /* must do nothing */
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (!model_verify_block(op->slot, "before free")) return;
  void *p = b->p;
  size_t size = b->size, align = b->align;
  int how = b->free_how;
  model_remove_block(op->slot);
  if (op->kind == SPEC_FREE || how == FREE_PLAIN)
    M.api->free(p);
  else if (how == FREE_ALIGNED_OK)
    M.api->free_aligned_sized(p, align, size);
  else
    M.api->free_sized(p, size);
}

static void exec_usable(const spec_op_t *op) {
  block_t *b = model_slot_block(op->slot);
  if (b->src == SRC_NONE) {
    if (M.api->usable_size != NULL && M.api->usable_size(NULL) != 0)
      model_fail(SPEC_FAIL_USABLE, "usable_size(NULL) = %zu, expected 0", M.api->usable_size(NULL));
    return;
  }
  if (b->src != SRC_MALLOC && b->src != SRC_HEAP) return;
  if (M.api->usable_size != NULL && M.api->usable_size(b->p) != b->usable)
    model_fail(SPEC_FAIL_USABLE, "usable_size(%p) changed from %zu to %zu", (void *)b->p, b->usable,
         M.api->usable_size(b->p));
  if (M.api->owns != NULL && !M.api->owns(b->p))
    model_fail(SPEC_FAIL_OWNS, "kiln_owns(%p) is false for a live block", (void *)b->p);
}

static void exec_check_all(void) {
  for (unsigned s = 0; s < SPEC_SLOTS && !M.failed; s++)
    if (!model_slot_free(s)) model_verify_block(s, "(check_all)");
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
    model_fail(SPEC_FAIL_ACCOUNTING, "heap_allocated = %zu < %zu bytes live in the heap %s", reported,
         h->live_bytes, when);
}

/* Release the model's view of every block of a heap/arena/pool (verified
 * first: a destroy must not have scribbled on them before it). */
static void drop_blocks(int src, unsigned obj, uint64_t from_seq) {
  for (unsigned s = 0; s < SPEC_SLOTS; s++) {
    block_t *b = &M.blocks[s];
    if (b->src == src && b->obj == obj && b->seq >= from_seq) {
      model_verify_block(s, "before its heap/arena/pool released it");
      model_remove_block(s);
    }
  }
}

void model_exec_heap(const spec_op_t *op) {
  unsigned obj = op->obj % SPEC_HEAPS;
  heap_t *h = op_heap(op);
  switch (op->kind) {
  case SPEC_HEAP_NEW:
    if (h != NULL) return;
    errno = 0;
    M.heaps[obj] = (heap_t){.h = M.api->heap_new()};
    if (M.heaps[obj].h == NULL) model_fail(SPEC_FAIL_NULL_RESULT, "heap_new returned NULL (errno %d)", errno);
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
    if (limit != 0 && limit < SPEC_MUST_SUCCEED && model_slot_free(op->slot)) {
      /* A request larger than the whole budget can never fit. */
      errno = 0;
      void *p = M.api->heap_malloc(h->h, limit + 1);
      model_expect_failure(p, errno, ENOMEM, "heap_malloc over the heap limit", limit + 1);
      if (p != NULL) M.api->free(p);
    }
    return;
  }
  default:
    break;
  }
  if (h == NULL || !model_slot_free(op->slot)) return;
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
    bool bad = !model_is_pow2(op->b);
    if (bad && model_must_fail(op->a) && p == NULL && err == ENOMEM) return;
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
    model_fail(SPEC_FAIL_ACCOUNTING,
         "arena_info %s: used %zu capacity %zu high_water %zu chunks %zu (fixed %d, buffer %zu, limit %zu)",
         when, info.used, info.capacity, info.high_water, info.chunks, a->fixed, a->buffer_size, a->limit);
}

void model_exec_arena(const spec_op_t *op) {
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
          model_fail(SPEC_FAIL_NULL_RESULT, "arena_new_fixed(%zu bytes) returned NULL (errno %d)", size, err);
      }
    } else {
      size_t chunk = op->a % ((size_t)1 << 22);
      n->limit = op->b;
      n->a = M.api->arena_new(chunk, op->b, flags);
      if (n->a == NULL) {
        int err = errno;
        *n = (arena_t){0};
        if (op->b == 0 || op->b >= ((size_t)8 << 20) || (err != ENOMEM && err != EINVAL))
          model_fail(SPEC_FAIL_NULL_RESULT, "arena_new(chunk %zu, limit %zu) returned NULL (errno %d)", chunk,
               (size_t)op->b, err);
      }
    }
    if (n->a != NULL) check_arena_info(n, "after new");
    return;
  }
  case SPEC_ARENA_ALLOC: {
    if (a == NULL || !model_slot_free(op->slot)) return;
    size_t size = op->a, align = op->b;
    errno = 0;
    uint8_t *p = M.api->arena_alloc(a->a, size, align);
    int err = errno;
    bool bad = align != 0 && !model_is_pow2(align); /* 0 means the default, 16 */
    bool may_fail = a->fixed || a->limit != 0;
    if (bad && model_must_fail(size) && p == NULL && err == ENOMEM) return;
    if (p != NULL && a->fixed && (p < a->buffer || size > a->buffer_size ||
                                  p + size > a->buffer + a->buffer_size)) {
      model_fail(SPEC_FAIL_BOUNDS, "arena_alloc(%zu) = %p outside the fixed buffer [%p, +%zu)", size, (void *)p,
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
      if (M.blocks[s].src == SRC_ARENA && M.blocks[s].obj == obj) model_verify_block(s, "after rewind");
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
        model_fail(SPEC_FAIL_ACCOUNTING, "arena_info.used = %zu after reset", M.api->arena_info(a->a).used);
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
    model_fail(SPEC_FAIL_ACCOUNTING, "pool_in_use = %zu, the model has %zu blocks live %s", in_use, p->live, when);
}

void model_exec_pool(const spec_op_t *op) {
  unsigned obj = op->obj % SPEC_POOLS;
  pool_t *pool = &M.pools[obj];
  switch (op->kind) {
  case SPEC_POOL_NEW: {
    if (pool->p != NULL) return;
    size_t size = op->a, align = op->b;
    errno = 0;
    kiln_pool_t *p = M.api->pool_new(size, align);
    int err = errno;
    bool bad = size == 0 || (align != 0 && !model_is_pow2(align));
    if (bad || model_must_fail(size)) {
      model_expect_failure(p, err, bad ? EINVAL : ENOMEM, "pool_new", size);
      if (p != NULL) M.api->pool_destroy(p);
      return;
    }
    if (p == NULL) {
      model_fail(SPEC_FAIL_NULL_RESULT, "pool_new(%zu, %zu) returned NULL (errno %d)", size, align, err);
      return;
    }
    *pool = (pool_t){.p = p, .block_size = size, .align = align ? align : 1};
    check_pool(pool, "after new");
    return;
  }
  case SPEC_POOL_ALLOC: {
    if (pool->p == NULL || !model_slot_free(op->slot)) return;
    errno = 0;
    void *p = M.api->pool_alloc(pool->p);
    after_alloc(p, errno, "pool_alloc", op->slot, pool->block_size, pool->align, false, false, false,
                false, SRC_POOL, obj, FREE_PLAIN);
    if (!M.failed) check_pool(pool, "after alloc");
    return;
  }
  case SPEC_POOL_FREE: {
    block_t *b = model_slot_block(op->slot);
    if (b->src != SRC_POOL) return;
    if (!model_verify_block(op->slot, "before pool_free")) return;
    pool = &M.pools[b->obj];
    void *p = b->p;
    model_remove_block(op->slot);
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

void model_exec_op(const spec_op_t *op) {
  switch (model_op_family(op->kind)) {
  case SRC_HEAP:
    if (M.api->heap_new != NULL) model_exec_heap(op);
    return;
  case SRC_ARENA:
    if (M.api->arena_new != NULL) model_exec_arena(op);
    return;
  case SRC_POOL:
    if (M.api->pool_new != NULL) model_exec_pool(op);
    return;
  default:
    break;
  }
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
  case SPEC_FREE_ALIGNED_SIZED: model_exec_free(op); break;
  case SPEC_USABLE_SIZE: exec_usable(op); break;
  case SPEC_CHECK_ALL: exec_check_all(); break;
  case SPEC_THREAD_EXIT: /* handled by run_op */
  default: break;       /* heaps, arenas and pools: above */
  }
}

