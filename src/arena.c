/* arena.c — the linear (bump) arena: kiln_arena_* in include/kiln.h.
 *
 * Layout
 *   An arena hands out memory from its *current chunk* by moving an offset
 *   forward (the bump).  Every chunk starts with an arena_chunk_t header;
 *   chunks are linked newest -> oldest through `prev`, ending at the static
 *   empty chunk (the sentinel below), so the chain is also the order in which
 *   the chunks were made: that is what mark/rewind rely on.
 *
 *   - kiln_arena_new: the arena_t lives in a small block from kiln_malloc; the
 *     chunks come from kiln_os_alloc: the first is `chunk_size` bytes, each
 *     next one twice the one before, up to ARENA_GROWTH_MAX (a request that
 *     does not fit gets a chunk sized to fit); their total is capped by
 *     `limit`, and the last chunk is cut down to the room left under it.  The
 *     first chunk is mapped by the first allocation.
 *   - kiln_arena_new_fixed: the arena_t and the one chunk header live at the
 *     start of the caller's buffer (16-byte aligned up), the rest of the
 *     buffer is the chunk's data.  Nothing is ever asked of the OS or of
 *     Kiln's heap.  At most ARENA_FIXED_OVERHEAD bytes of the buffer are
 *     taken (143 on x86-64 Linux); a buffer not larger is refused (EINVAL).
 *
 * Invariants (each chunk c on the chain, h = CHUNK_HEADER):
 *   h <= c->offset <= c->size; [c + h, c + offset) has been handed out (with
 *   its alignment padding) and [c + offset, c + size) is free.
 *   arena->held == sum of c->size over the chain (OS arenas), <= limit if set.
 *   used == sum of (c->offset - h) over the chain; high_water >= every `used`
 *   seen before the last rewind/reset; `used` only grows between rewinds, so
 *   max(high_water, used) is the exact high-water mark (kiln_arena_info).
 *
 * Size 0: served as 1 byte, so every call returns a distinct, non-NULL
 * pointer (the byte must not be used).  Alignment 0 means 16.
 *
 * Thread safety (KILN_ARENA_THREAD_SAFE)
 *   The bump in a chunk is a compare-and-swap loop on that chunk's own
 *   offset (arena_bump_mt).  Keeping the offset in the chunk, not in the
 *   arena, means a thread that read an old `current` can never apply an offset
 *   computed for one chunk to another: a late CAS on an older chunk still
 *   claims free bytes of that (still held) chunk, which is fine.  Growing takes
 *   arena->lock; a thread that finds `current` already replaced by the time it
 *   holds the lock drops the lock and retries the bump in the new chunk.  The
 *   grower carves its own block out of the new chunk before publishing it, so
 *   the thread that paid for the mmap always gets its memory.
 *   The Promela model tests/model/arena_bump.pml (written separately) mirrors
 *   kiln_arena_alloc's CAS loop: arena_bump_mt, and the bump-or-grow-or-retry
 *   loop in arena_alloc_generic with arena_alloc_slow_mt.  Keep them small,
 *   and keep the model in step with any change to them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* 64 KiB: one mmap amortised over many small requests, yet small enough that
 * a per-request arena does not hold much; the header documents this default. */
#define ARENA_DEFAULT_CHUNK ((size_t)64 << 10)
/* The default and minimum alignment of a block (alignof(max_align_t)). */
#define ARENA_MIN_ALIGN ((size_t)16)
/* New chunks double in size up to this: an arena that is reset and refilled
 * with the same work then settles, after a few rounds, on one chunk (the one
 * reset keeps) that holds a whole round: no mmap and no page fault per round.
 * With fixed-size chunks, reset would unmap and re-fault all but one of them
 * every round (measured: 20 mmaps and 330 page faults per 10000 allocations,
 * 4x slower than malloc).  The cap bounds what a chunk charges against the
 * limits beyond what is used (chunks are counted as committed when mapped). */
#define ARENA_GROWTH_MAX ((size_t)16 << 20)
/* Larger alignments are refused (ENOMEM): kiln_align_up's no-wrap proof
 * needs alignment <= 2^62, and no memory could satisfy them anyway. */
#define ARENA_MAX_ALIGN ((size_t)1 << 62)

typedef struct arena_chunk_s {
  struct arena_chunk_s *prev; /* the chunk made before this one; the sentinel for the first */
  size_t size;                /* bytes of the chunk, header included (mapped size for OS chunks) */
  _Atomic size_t offset;      /* bump offset from the chunk's start: see the invariants above */
} arena_chunk_t;

/* Where a chunk's data starts: the header rounded up to 16, so the first
 * block of a chunk needs no padding for the default alignment. */
#define CHUNK_HEADER ((sizeof(arena_chunk_t) + ARENA_MIN_ALIGN - 1) & ~(ARENA_MIN_ALIGN - 1))

struct kiln_arena_s {
  _Atomic(arena_chunk_t *) current; /* the chunk to bump in; the sentinel when none */
  unsigned flags;                   /* KILN_ARENA_* */
  bool fixed;                       /* over a caller's buffer: never grows, never freed */
  size_t chunk_size;                /* bytes of a new chunk (page multiple) */
  size_t limit;                     /* cap on `held` (0 = none) */
  size_t held;                      /* bytes of chunks on the chain (written under lock) */
  size_t fixed_size;                /* fixed arena: the caller's buffer size (its capacity) */
  size_t high_water;                /* see the invariants: max `used` before the last rewind/reset */
  pthread_mutex_t lock;             /* serialises growth of a thread-safe arena */
};

/* The bytes of a fixed buffer an arena takes for itself (worst case, with
 * the 16-byte alignment of the buffer's start). */
#define ARENA_FIXED_HEADER \
  (kiln_align_up(sizeof(struct kiln_arena_s), ARENA_MIN_ALIGN) + CHUNK_HEADER)
#define ARENA_FIXED_OVERHEAD (ARENA_FIXED_HEADER + ARENA_MIN_ALIGN - 1)

/* The empty chunk: `current` of an arena with no chunk.  Its size is 0, so no
 * request fits and the fast path needs no NULL test: the first allocation
 * falls into the slow path, which maps the first chunk.  Never written (a
 * CAS happens only after a fit), shared by all arenas. */
static alignas(ARENA_MIN_ALIGN) arena_chunk_t arena_empty_chunk = {NULL, 0, 0};

/* --- the bump ------------------------------------------------------------ */

/* The offset at which a block of `size` bytes aligned to `alignment` would
 * start in `chunk` if the bump offset is `offset`, or 0 if it does not fit.
 * No wrap: chunk addresses and sizes are < 2^47 on x86-64 Linux, offset <=
 * chunk->size, alignment <= 2^62 (kiln_align_up's precondition); the size
 * test subtracts instead of adding, so a size up to PTRDIFF_MAX cannot wrap. */
kiln_inline size_t arena_fit(const arena_chunk_t *chunk, size_t offset, size_t size, size_t alignment) {
  uintptr_t base = (uintptr_t)chunk;
  size_t start = (size_t)(kiln_align_up(base + offset, alignment) - base);
  if (start > chunk->size || size > chunk->size - start) return 0;
  return start; /* never 0 for a fit: start >= offset >= CHUNK_HEADER */
}

/* Single-threaded bump: the relaxed load and store compile to plain moves;
 * they are atomic only because the field is shared with the _mt variant. */
kiln_inline void *arena_bump(arena_chunk_t *chunk, size_t size, size_t alignment) {
  size_t offset = atomic_load_explicit(&chunk->offset, memory_order_relaxed);
  size_t start = arena_fit(chunk, offset, size, alignment);
  if (start == 0) return NULL;
  atomic_store_explicit(&chunk->offset, start + size, memory_order_relaxed);
  return (uint8_t *)chunk + start;
}

/* Thread-safe bump: claim [start, start + size) with one CAS on the offset.
 * Memory order: relaxed for the load and both CAS outcomes.  The CAS only has
 * to make the claims disjoint, which atomicity alone guarantees: every
 * successful CAS moves the offset forward from the exact value it replaced
 * (one total modification order), so no two threads get overlapping ranges.
 * No data is published through the offset: the bytes claimed are not read by
 * anyone else, and the chunk header fields read here (`size`) were published
 * by the release store of arena->current, which the caller loaded with
 * acquire.  A failed CAS reloads `offset` and recomputes the fit. */
static void *arena_bump_mt(arena_chunk_t *chunk, size_t size, size_t alignment) {
  size_t offset = atomic_load_explicit(&chunk->offset, memory_order_relaxed);
  for (;;) {
    size_t start = arena_fit(chunk, offset, size, alignment);
    if (start == 0) return NULL;
    if (atomic_compare_exchange_weak_explicit(&chunk->offset, &offset, start + size,
                                              memory_order_relaxed, memory_order_relaxed))
      return (uint8_t *)chunk + start;
  }
}

/* --- growth (the slow path) ---------------------------------------------- */

/* Bytes of a chunk that can hold `size` bytes at `alignment` (in the worst
 * placement), rounded to the OS page; 0 if that overflows.  No wrap:
 * size <= PTRDIFF_MAX and alignment <= 2^62 (checked by the caller). */
static size_t arena_chunk_need(size_t size, size_t alignment) {
  size_t need = CHUNK_HEADER + (alignment - 1) + size;
  if (need > KILN_MAX_ALLOC_SIZE) return 0;
  return (size_t)kiln_align_up(need, kiln_os_page_size());
}

/* Map a chunk for the request, carve the request out of it, link it as the
 * new current chunk.  Called with the lock held (thread-safe arenas) and only
 * when `seen` is still current.  On failure nothing has changed: NULL, errno
 * ENOMEM (the arena's limit, the process limit, or the OS). */
static kiln_cold void *arena_add_chunk(kiln_arena_t *arena, arena_chunk_t *seen, size_t size,
                                       size_t alignment) {
  size_t need = arena_chunk_need(size, alignment);
  if (need == 0 || arena->fixed) { errno = ENOMEM; return NULL; }
  /* Each new chunk doubles the one it follows (from chunk_size, up to
   * ARENA_GROWTH_MAX), and a request that needs more gets what it needs. */
  size_t grown_max = arena->chunk_size > ARENA_GROWTH_MAX ? arena->chunk_size : ARENA_GROWTH_MAX;
  size_t chunk_size = seen->size < grown_max / 2 ? seen->size * 2 : grown_max;
  if (chunk_size < arena->chunk_size) chunk_size = arena->chunk_size;
  if (chunk_size < need) chunk_size = need;
  if (arena->limit != 0) {
    size_t room = arena->held < arena->limit ? arena->limit - arena->held : 0;
    /* Use the room left under the limit rather than fail while the request
     * itself would fit: a limited arena can fill up to its limit. */
    if (chunk_size > room) chunk_size = kiln_align_down(room, kiln_os_page_size());
    if (chunk_size < need) { errno = ENOMEM; return NULL; }
  }
  arena_chunk_t *chunk = kiln_os_alloc(chunk_size);
  if (chunk == NULL) return NULL; /* errno is ENOMEM (os.h) */
  chunk->prev = seen;
  chunk->size = chunk_size;
  atomic_init(&chunk->offset, CHUNK_HEADER);
  void *block = arena_bump(chunk, size, alignment); /* not yet shared: no CAS needed */
  arena->held += chunk_size;
  /* Release: a thread that loads this pointer with acquire sees the header
   * initialised above (prev, size, offset). */
  atomic_store_explicit(&arena->current, chunk, memory_order_release);
  return block;
}

/* The slow path of a thread-safe arena: the current chunk `seen` has no room.
 * Returns the block, or NULL with errno set, or NULL with `retry` set when
 * another thread replaced `seen` meanwhile (the caller then bumps in the new
 * chunk). */
static kiln_cold void *arena_alloc_slow_mt(kiln_arena_t *arena, arena_chunk_t *seen, size_t size,
                                           size_t alignment, bool *retry) {
  pthread_mutex_lock(&arena->lock);
  void *block = NULL;
  /* Relaxed: every store to `current` is made under this lock, which orders
   * it before our load. */
  if (atomic_load_explicit(&arena->current, memory_order_relaxed) != seen)
    *retry = true; /* lost the race: someone grew the arena already */
  else
    block = arena_add_chunk(arena, seen, size, alignment);
  pthread_mutex_unlock(&arena->lock);
  return block;
}

/* Everything but the fast path below: argument checks, the thread-safe bump,
 * other alignments, growth. */
static kiln_noinline void *arena_alloc_generic(kiln_arena_t *arena, size_t size, size_t alignment) {
  if (alignment == 0) alignment = ARENA_MIN_ALIGN;
  if (kiln_unlikely(!kiln_is_power_of_two(alignment))) { errno = EINVAL; return NULL; }
  if (kiln_unlikely(size > KILN_MAX_ALLOC_SIZE || alignment > ARENA_MAX_ALIGN)) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment < ARENA_MIN_ALIGN) alignment = ARENA_MIN_ALIGN;
  if (size == 0) size = 1; /* a unique pointer per call */

  if (!(arena->flags & KILN_ARENA_THREAD_SAFE)) {
    arena_chunk_t *chunk = atomic_load_explicit(&arena->current, memory_order_relaxed);
    void *block = arena_bump(chunk, size, alignment);
    if (block != NULL) return block;
    return arena_add_chunk(arena, chunk, size, alignment);
  }
  /* The loop the Promela model mirrors: bump; on no room, grow or retry. */
  for (;;) {
    /* Acquire: pairs with the release store in arena_add_chunk, so the
     * header of the chunk we are about to bump in is initialised. */
    arena_chunk_t *chunk = atomic_load_explicit(&arena->current, memory_order_acquire);
    void *block = arena_bump_mt(chunk, size, alignment);
    if (kiln_likely(block != NULL)) return block;
    bool retry = false;
    block = arena_alloc_slow_mt(arena, chunk, size, alignment, &retry);
    if (!retry) return block;
  }
}

/* The fast path: a single-threaded arena, alignment <= 16 (0 included), a
 * size of 1 .. PTRDIFF_MAX, and room in the current chunk.  Every chunk
 * starts 16-aligned (mmap'd, or placed so in a fixed buffer; the sentinel is
 * alignas(16)), so aligning the offset aligns the address.  Anything else
 * goes to arena_alloc_generic, as a tail call. */
void *kiln_arena_alloc(kiln_arena_t *arena, size_t size, size_t alignment) {
  if (kiln_likely(alignment <= ARENA_MIN_ALIGN && (alignment & (alignment - 1)) == 0 &&
                  size - 1 < KILN_MAX_ALLOC_SIZE && !(arena->flags & KILN_ARENA_THREAD_SAFE))) {
    arena_chunk_t *chunk = atomic_load_explicit(&arena->current, memory_order_relaxed);
    size_t start = (size_t)kiln_align_up(atomic_load_explicit(&chunk->offset, memory_order_relaxed),
                                         ARENA_MIN_ALIGN);
    if (kiln_likely(start <= chunk->size && size <= chunk->size - start)) {
      atomic_store_explicit(&chunk->offset, start + size, memory_order_relaxed);
      return (uint8_t *)chunk + start;
    }
  }
  return arena_alloc_generic(arena, size, alignment);
}

/* --- create / destroy ---------------------------------------------------- */

static void arena_init(kiln_arena_t *arena, unsigned flags) {
  memset(arena, 0, sizeof *arena);
  atomic_init(&arena->current, &arena_empty_chunk);
  arena->flags = flags;
  pthread_mutex_init(&arena->lock, NULL); /* default attributes: cannot fail */
}

kiln_arena_t *kiln_arena_new(size_t chunk_size, size_t limit, unsigned flags) {
  if (flags & ~(unsigned)KILN_ARENA_THREAD_SAFE) { errno = EINVAL; return NULL; }
  if (chunk_size == 0) chunk_size = ARENA_DEFAULT_CHUNK;
  if (chunk_size > KILN_MAX_ALLOC_SIZE) { errno = ENOMEM; return NULL; }
  kiln_arena_t *arena = kiln_malloc(sizeof *arena);
  if (arena == NULL) return NULL;
  arena_init(arena, flags);
  arena->chunk_size = (size_t)kiln_align_up(chunk_size, kiln_os_page_size());
  arena->limit = limit;
  return arena;
}

kiln_arena_t *kiln_arena_new_fixed(void *buffer, size_t size, unsigned flags) {
  if (flags & ~(unsigned)KILN_ARENA_THREAD_SAFE) { errno = EINVAL; return NULL; }
  uintptr_t start = kiln_align_up((uintptr_t)buffer, ARENA_MIN_ALIGN);
  /* The buffer must hold the arena, a chunk header and at least one byte. */
  if (buffer == NULL || size <= ARENA_FIXED_OVERHEAD) {
    errno = EINVAL;
    return NULL;
  }
  kiln_arena_t *arena = (kiln_arena_t *)start;
  arena_init(arena, flags);
  arena->fixed = true;
  arena->fixed_size = size;
  arena_chunk_t *chunk = (arena_chunk_t *)(start + kiln_align_up(sizeof *arena, ARENA_MIN_ALIGN));
  chunk->prev = &arena_empty_chunk;
  chunk->size = (size_t)((uintptr_t)buffer + size - (uintptr_t)chunk);
  atomic_init(&chunk->offset, CHUNK_HEADER);
  atomic_init(&arena->current, chunk);
  arena->held = size;
  return arena;
}

/* Unmap the chunks from `from` back to (not including) `to`. */
static void arena_free_chunks(kiln_arena_t *arena, arena_chunk_t *from, arena_chunk_t *to) {
  while (from != to) {
    arena_chunk_t *prev = from->prev;
    arena->held -= from->size;
    kiln_os_free(from, from->size, from->size);
    from = prev;
  }
}

void kiln_arena_destroy(kiln_arena_t *arena) {
  if (arena == NULL) return;
  pthread_mutex_destroy(&arena->lock);
  if (arena->fixed) return; /* the caller owns the buffer */
  arena_free_chunks(arena, atomic_load_explicit(&arena->current, memory_order_relaxed),
                    &arena_empty_chunk);
  kiln_free(arena);
}

/* --- mark / rewind / reset / info ---------------------------------------- */

/* Bytes handed out, over the chain starting at `chunk`. */
static size_t arena_used(const arena_chunk_t *chunk) {
  size_t used = 0;
  for (; chunk != &arena_empty_chunk; chunk = chunk->prev)
    used += atomic_load_explicit(&chunk->offset, memory_order_relaxed) - CHUNK_HEADER;
  return used;
}

static void arena_note_high_water(kiln_arena_t *arena) {
  size_t used = arena_used(atomic_load_explicit(&arena->current, memory_order_relaxed));
  if (used > arena->high_water) arena->high_water = used;
}

kiln_arena_mark_t kiln_arena_mark(kiln_arena_t *arena) {
  /* Acquire: a mark taken after other threads' allocations (the caller has
   * synchronised with them) must see the chunk they published. */
  arena_chunk_t *chunk = atomic_load_explicit(&arena->current, memory_order_acquire);
  kiln_arena_mark_t mark = {chunk, atomic_load_explicit(&chunk->offset, memory_order_relaxed)};
  return mark;
}

/* Cost: O(chunks made since the mark); each of them is unmapped.  So a mark
 * taken when the current chunk is nearly full makes every rewind to it unmap
 * the chunk grown after it, and the next allocation map one again: for a
 * mark/rewind per line or per frame, give the arena a chunk_size that holds
 * a line's or frame's worth. */
void kiln_arena_rewind(kiln_arena_t *arena, kiln_arena_mark_t mark) {
  arena_chunk_t *current = atomic_load_explicit(&arena->current, memory_order_relaxed);
  arena_chunk_t *target = mark.chunk;
  /* Cheap misuse checks (O(chunks made since the mark), which the rewind
   * walks anyway): the marked chunk must still be on this arena's chain, and
   * the marked offset must not be ahead of that chunk's offset (a mark from a
   * later state, e.g. taken before an earlier rewind or a reset).  Not
   * caught: a mark whose chunk was unmapped and a new chunk mapped at the
   * same address. */
  arena_chunk_t *c = current;
  while (c != target && c != &arena_empty_chunk) c = c->prev;
  if (c != target || (arena->fixed && target != current))
    kiln_fatal("kiln: kiln_arena_rewind(%p) to a mark that is not from this arena "
               "(or whose chunk was freed by a rewind or reset)", (void *)arena);
  if (target != &arena_empty_chunk &&
      (mark.offset < CHUNK_HEADER || mark.offset > atomic_load_explicit(&target->offset, memory_order_relaxed)))
    kiln_fatal("kiln: kiln_arena_rewind(%p) to a mark from a later state of the arena "
               "(offset %zu, chunk at %zu)", (void *)arena, mark.offset,
               atomic_load_explicit(&target->offset, memory_order_relaxed));
  arena_note_high_water(arena);
  arena_free_chunks(arena, current, target);
  if (target != &arena_empty_chunk) atomic_store_explicit(&target->offset, mark.offset, memory_order_relaxed);
  atomic_store_explicit(&arena->current, target, memory_order_release);
}

void kiln_arena_reset(kiln_arena_t *arena) {
  arena_note_high_water(arena);
  arena_chunk_t *current = atomic_load_explicit(&arena->current, memory_order_relaxed);
  if (current == &arena_empty_chunk) return;
  /* Keep the largest chunk (the newest of equals): the next round of the
   * same work then fits without asking the OS again. */
  arena_chunk_t *keep = current;
  for (arena_chunk_t *c = current->prev; c != &arena_empty_chunk; c = c->prev)
    if (c->size > keep->size) keep = c;
  arena_chunk_t *c = current;
  while (c != &arena_empty_chunk) {
    arena_chunk_t *prev = c->prev;
    if (c != keep) {
      arena->held -= c->size;
      kiln_os_free(c, c->size, c->size);
    }
    c = prev;
  }
  keep->prev = &arena_empty_chunk;
  atomic_store_explicit(&keep->offset, CHUNK_HEADER, memory_order_relaxed);
  atomic_store_explicit(&arena->current, keep, memory_order_release);
}

kiln_arena_info_t kiln_arena_info(const kiln_arena_t *arena) {
  /* May run while other threads allocate from a thread-safe arena: the walk
   * reads only the chain published with release (acquire here) and the
   * offsets (relaxed: a figure that is a moment old is fine). */
  kiln_arena_info_t info = {0, 0, 0, 0};
  const arena_chunk_t *c = atomic_load_explicit(&((kiln_arena_t *)arena)->current, memory_order_acquire);
  info.used = arena_used(c);
  for (; c != &arena_empty_chunk; c = c->prev) {
    info.capacity += c->size;
    info.chunks++;
  }
  if (arena->fixed) info.capacity = arena->fixed_size;
  info.high_water = arena->high_water > info.used ? arena->high_water : info.used;
  return info;
}
