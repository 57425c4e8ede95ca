/* model.c — the reference model behind tests/spec/model.h.
 *
 * Layout: this file holds the block table and address treap, content
 * patterns, worker threads and running (in process and forked);
 * model_ops.c has one function per operation (exec_*), model_gen.c the
 * generator, fuzz decoder, shrinker and printer; model_internal.h what
 * they share.
 *
 * Nothing here calls malloc: blocks, heaps and marks live in static arrays,
 * op buffers and fixed-arena buffers come from mmap.  (stdio, used only to
 * print, may allocate; the printed report is written by the parent of a
 * forked run, whose allocator has not run the failing sequence.)
 */
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

struct model_s spec_model;

/* When non-NULL, spec_run stores the index of each step here before it runs
 * it (a page shared with the parent of a forked run). */
static volatile size_t *progress;

uint64_t model_splitmix(uint64_t *state) {
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

__attribute__((format(printf, 2, 3))) void model_fail(spec_failure_t failure, const char *fmt, ...) {
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

void model_pattern_fill(uint8_t *p, size_t n, uint64_t seed) {
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    __builtin_memcpy(p + 8 * i, &w, 8);
  }
  uint64_t w = pattern_word(seed, words);
  for (size_t k = 0; k < n % 8; k++) p[8 * words + k] = (uint8_t)(w >> (8 * k));
}

/* Offset of the first byte in [0, n) that differs from the pattern, or n. */
size_t model_pattern_check(const uint8_t *p, size_t n, uint64_t seed) {
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

size_t model_first_nonzero(const uint8_t *p, size_t n) {
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

block_t *model_slot_block(unsigned slot) { return &M.blocks[slot % SPEC_SLOTS]; }

/* Verify a live block's whole usable range. */
bool model_verify_block(unsigned slot, const char *when) {
  block_t *b = model_slot_block(slot);
  size_t bad = model_pattern_check(b->p, b->usable, b->seed);
  if (bad != b->usable) {
    model_fail(SPEC_FAIL_CONTENT, "block in slot %u (%p, size %zu, usable %zu) changed at offset %zu %s", slot,
         (void *)b->p, b->size, b->usable, bad, when);
    return false;
  }
  return true;
}

/* Record a block the allocator just returned, after checking it: alignment,
 * usable size, ownership, disjointness, zeroing; then fill it. */
bool model_add_block(unsigned slot, void *ptr, size_t size, size_t align, int src, unsigned obj,
                      bool zeroed, size_t usable, int free_how) {
  block_t *b = model_slot_block(slot);
  uint8_t *p = ptr;
  /* kiln.h: a block always fits alignment 16 (arena and pool blocks too). */
  if ((uintptr_t)p % 16 != 0) {
    model_fail(SPEC_FAIL_ALIGN, "%p not 16-byte aligned (size %zu)", ptr, size);
    return false;
  }
  if (src == SRC_MALLOC || src == SRC_HEAP) {
    if (M.api->owns != NULL && !M.api->owns(p)) {
      model_fail(SPEC_FAIL_OWNS, "kiln_owns(%p) is false for a block just allocated", ptr);
      return false;
    }
  }
  if (align > 1 && (uintptr_t)p % align != 0) {
    model_fail(SPEC_FAIL_ALIGN, "%p not aligned to %zu (size %zu)", ptr, align, size);
    return false;
  }
  if (usable < size) {
    model_fail(SPEC_FAIL_USABLE, "usable size %zu < requested %zu (%p)", usable, size, ptr);
    return false;
  }
  if (usable == 0 && (src == SRC_MALLOC || src == SRC_HEAP) && M.api->usable_size != NULL) {
    /* kiln.h: usable_size is 0 only for NULL and pointers Kiln did not hand
     * out, so even a 0-byte block must report more. */
    model_fail(SPEC_FAIL_USABLE, "usable size 0 for a block just allocated (%p, size %zu): not recognised", ptr, size);
    return false;
  }
  if ((uintptr_t)p + (usable ? usable : 1) < (uintptr_t)p) {
    model_fail(SPEC_FAIL_BOUNDS, "%p + usable %zu wraps around", ptr, usable);
    return false;
  }
  block_t probe = {.p = p, .usable = usable};
  uint32_t other = treap_overlap((uintptr_t)p, extent(&probe));
  if (other != 0) {
    block_t *o = &NODE(other);
    model_fail(SPEC_FAIL_OVERLAP, "new block [%p, +%zu) overlaps slot %u [%p, +%zu)", ptr, usable,
         (unsigned)(other - 1), (void *)o->p, o->usable);
    return false;
  }
  if (zeroed) {
    size_t nz = model_first_nonzero(p, size);
    if (nz != size) {
      model_fail(SPEC_FAIL_ZERO, "byte %zu of %zu not zero (%p)", nz, size, ptr);
      return false;
    }
  }
  *b = (block_t){.p = p,
                 .size = size,
                 .align = align ? align : 1,
                 .usable = usable,
                 .seed = model_splitmix(&M.rng),
                 .src = (uint8_t)src,
                 .free_how = (uint8_t)free_how,
                 .obj = (uint16_t)obj,
                 .prio = (uint32_t)model_splitmix(&M.rng) | 1u};
  M.root = treap_insert(M.root, slot % SPEC_SLOTS + 1);
  M.live++;
  if (src == SRC_HEAP) M.heaps[obj].live_bytes += size;
  if (src == SRC_POOL) M.pools[obj].live++;
  if (src == SRC_ARENA) b->seq = M.arenas[obj].seq++;
  model_pattern_fill(p, usable, b->seed);
  return true;
}

void model_remove_block(unsigned slot) {
  block_t *b = model_slot_block(slot);
  if (b->src == SRC_NONE) return;
  M.root = treap_remove(M.root, slot % SPEC_SLOTS + 1);
  M.live--;
  if (b->src == SRC_HEAP) M.heaps[b->obj].live_bytes -= b->size;
  if (b->src == SRC_POOL) M.pools[b->obj].live--;
  b->src = SRC_NONE;
  b->p = NULL;
}

bool model_slot_free(unsigned slot) { return model_slot_block(slot)->src == SRC_NONE; }

/* The usable size the allocator reports for a malloc-family block. */
size_t model_reported_usable(void *p, size_t requested) {
  return M.api->usable_size != NULL ? M.api->usable_size(p) : requested;
}

/* A failed allocation: NULL and errno must say why. */
void model_expect_failure(void *p, int err, int expected, const char *what, size_t size) {
  if (p != NULL) {
    model_fail(SPEC_FAIL_NOT_NULL, "%s(%zu) returned %p; it must fail", what, size, p);
    return;
  }
  if (err != expected)
    model_fail(SPEC_FAIL_ERRNO, "%s(%zu) failed with errno %d, expected %d", what, size, err, expected);
}

bool model_must_fail(size_t size) { return size > SPEC_MUST_FAIL; }
bool model_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

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
    model_exec_op(op);
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
    model_exec_op(op); /* no thread to be had: still run it */
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
  int family = model_op_family(op->kind);
  if (family == SRC_HEAP || (family == SRC_ARENA && op->kind != SPEC_ARENA_ALLOC)) return 0;
  switch ((spec_kind_t)op->kind) {
  case SPEC_CHECK_ALL:
    return 0;
  case SPEC_ARENA_ALLOC: {
    arena_t *a = &M.arenas[op->obj % SPEC_ARENAS];
    return a->a != NULL && a->thread_safe ? t : 0;
  }
  case SPEC_REALLOC:
    return model_slot_block(op->slot)->src == SRC_HEAP ? 0 : t;
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
    model_exec_op(op);
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
      model_exec_free(&op);
      M.op = &end_op;
    }
  }
  for (unsigned i = 0; i < SPEC_POOLS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_POOL_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.pools[i].p != NULL) model_exec_pool(&op);
  }
  for (unsigned i = 0; i < SPEC_ARENAS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_ARENA_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.arenas[i].a != NULL) model_exec_arena(&op);
  }
  for (unsigned i = 0; i < SPEC_HEAPS && !M.failed; i++) {
    spec_op_t op = {.kind = SPEC_HEAP_DESTROY, .obj = (uint16_t)i};
    M.op = &op;
    if (M.heaps[i].h != NULL) model_exec_heap(&op);
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

bool model_quiet_children;

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
    if (model_quiet_children) {
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

