/* model_gen.c — sequences for the reference model: the generator, the
 * fuzz input decoder, the shrinker and the printer of replayable cases
 * (model.c runs them, model_internal.h says what is shared). */
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

static uint64_t gen_below(gen_t *g, uint64_t n) { return n ? model_splitmix(&g->rng) % n : 0; }

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
      g.live[op.slot] = model_must_fail(op.a) ? SRC_NONE : SRC_MALLOC;
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
        if (op.a == 0 || model_must_fail(op.a)) {
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
      if (!__builtin_mul_overflow(op.a, op.b, &total) && total > ((size_t)64 << 20) && !model_must_fail(total))
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
  bool was_quiet = model_quiet_children;
  model_quiet_children = true;
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
  model_quiet_children = was_quiet;
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
