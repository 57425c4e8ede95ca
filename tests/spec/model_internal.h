/* model_internal.h — what the three parts of the reference model share
 * (model.c: state, bookkeeping, workers and running; model_ops.c: one
 * function per operation; model_gen.c: generator, fuzz decoder, shrinker
 * and printer).  Not part of the model's interface (model.h). */
#ifndef KILN_SPEC_MODEL_INTERNAL_H
#define KILN_SPEC_MODEL_INTERNAL_H

#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Sizes above this must fail with ENOMEM: 2^47 bytes is the whole user
 * address space of x86-64 (and more than any aarch64 configuration Linux
 * gives a process), so no mapping can satisfy them.  Generated "normal"
 * requests stay below SPEC_MUST_SUCCEED, where a failure is a bug. */
#define SPEC_MUST_FAIL ((size_t)1 << 47)
#define SPEC_MUST_SUCCEED ((size_t)1 << 30)

/* A value posix_memalign must leave in *out when it fails. */
#define OUT_SENTINEL ((void *)(uintptr_t)0x5a5a5a5a5a5a5a50ull)

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

struct model_s {
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
};

/* The family of an operation kind: SRC_HEAP, SRC_ARENA, SRC_POOL, or
 * SRC_MALLOC for the rest (the kinds of a family are consecutive in
 * SPEC_OPS, model.h). */
static inline int model_op_family(unsigned kind) {
  if (kind >= SPEC_HEAP_NEW && kind <= SPEC_HEAP_LIMIT) return SRC_HEAP;
  if (kind >= SPEC_ARENA_NEW && kind <= SPEC_ARENA_DESTROY) return SRC_ARENA;
  if (kind >= SPEC_POOL_NEW && kind <= SPEC_POOL_DESTROY) return SRC_POOL;
  return SRC_MALLOC;
}

/* The model's state: one instance (model.c), one short name as the code
 * reads it. */
extern struct model_s spec_model;
#define M spec_model

bool model_add_block(unsigned slot, void *ptr, size_t size, size_t align, int src, unsigned obj,
                      bool zeroed, size_t usable, int free_how);
void model_expect_failure(void *p, int err, int expected, const char *what, size_t size);
bool model_is_pow2(size_t x);
bool model_must_fail(size_t size);
size_t model_pattern_check(const uint8_t *p, size_t n, uint64_t seed);
void model_pattern_fill(uint8_t *p, size_t n, uint64_t seed);
size_t model_first_nonzero(const uint8_t *p, size_t n);
extern bool model_quiet_children;
void model_remove_block(unsigned slot);
size_t model_reported_usable(void *p, size_t requested);
block_t *model_slot_block(unsigned slot);
bool model_slot_free(unsigned slot);
uint64_t model_splitmix(uint64_t *state);
bool model_verify_block(unsigned slot, const char *when);
__attribute__((format(printf, 2, 3))) void model_fail(spec_failure_t failure, const char *fmt, ...);
void model_exec_op(const spec_op_t *op);
void model_exec_free(const spec_op_t *op);
void model_exec_pool(const spec_op_t *op);
void model_exec_arena(const spec_op_t *op);
void model_exec_heap(const spec_op_t *op);

#endif /* KILN_SPEC_MODEL_INTERNAL_H */
