/* broken.c — the toy allocators of broken.h.
 *
 * A bump allocator over one 4 GiB MAP_NORESERVE mapping: each block is
 * preceded by a 16-byte header {usable, alignment}; free only forgets.
 * Operations run one at a time (the model serialises its threads), so the
 * bump needs no atomics.  Errors follow kiln.h (ENOMEM above PTRDIFF_MAX or
 * when the region is full, EINVAL for a bad alignment) except where a bug is
 * planted on purpose.
 */
#define _GNU_SOURCE
#include "broken.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TOY_REGION ((size_t)4 << 30)

static spec_broken_t bug;
static uint8_t *region, *bump;

typedef struct header_s {
  size_t usable;
  size_t align;
} header_t;

static header_t *header_of(const void *p) { return (header_t *)((uint8_t *)p - sizeof(header_t)); }

static void *toy_alloc(size_t size, size_t align) {
  if (region == NULL) {
    void *r = mmap(NULL, TOY_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (r == MAP_FAILED) {
      errno = ENOMEM;
      return NULL;
    }
    region = bump = r;
  }
  if (align < 16) align = 16;
  size_t usable = size ? (size + 15) & ~(size_t)15 : 16; /* malloc(0): a unique 16-byte block */
  size_t left = (size_t)(region + TOY_REGION - bump);
  if (size > PTRDIFF_MAX || usable < size || align > left || usable > left - align - 16) {
    errno = ENOMEM;
    return NULL;
  }
  uintptr_t start = ((uintptr_t)bump + sizeof(header_t) + align - 1) & ~(uintptr_t)(align - 1);
  uint8_t *p = (uint8_t *)start;
  *header_of(p) = (header_t){.usable = usable, .align = align};
  size_t advance = usable;
  if (bug == SPEC_BROKEN_OVERLAP && size > 32 && size <= 48) advance = 16; /* the planted bug */
  bump = p + advance;
  return p;
}

static bool pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

static void *toy_malloc(size_t size) { return toy_alloc(size, 16); }

static void *toy_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    if (bug != SPEC_BROKEN_ERRNO) errno = ENOMEM; /* the planted bug: errno untouched */
    return NULL;
  }
  uint8_t *p = toy_alloc(total, 16);
  if (p != NULL && bug == SPEC_BROKEN_ZERO && total >= 64) p[total - 1] = 0xa5;
  return p; /* fresh mmap'd memory, never reused: already zero */
}

static size_t toy_usable(const void *p) { return p ? header_of(p)->usable : 0; }

static void *toy_realloc(void *p, size_t size) {
  if (p == NULL) return toy_malloc(size);
  if (size == 0) return NULL; /* frees p (kiln.h: glibc's choice) */
  if (size <= toy_usable(p)) return p;
  uint8_t *q = toy_alloc(size, 16);
  if (q == NULL) return NULL;
  size_t keep = toy_usable(p) < size ? toy_usable(p) : size;
  if (bug == SPEC_BROKEN_REALLOC) /* the planted bug: byte 0 is not copied */
    memcpy(q + 1, (uint8_t *)p + 1, keep - 1);
  else
    memcpy(q, p, keep);
  return q;
}

static void *toy_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return toy_realloc(p, total);
}

static void *toy_aligned_alloc(size_t align, size_t size) {
  if (!pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  if (bug == SPEC_BROKEN_ALIGN && align > 64) align = 64; /* the planted bug */
  return toy_alloc(size, align);
}

static int toy_posix_memalign(void **out, size_t align, size_t size) {
  if (!pow2(align) || align % sizeof(void *) != 0) {
    if (bug == SPEC_BROKEN_OUT) *out = NULL; /* the planted bug */
    return EINVAL;
  }
  int saved = errno;
  void *p = toy_alloc(size, align);
  if (p == NULL) {
    errno = saved;
    if (bug == SPEC_BROKEN_OUT) *out = NULL;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

static void *toy_memalign(size_t align, size_t size) { return toy_aligned_alloc(align, size); }

static void *toy_valloc(size_t size) { return toy_alloc(size, (size_t)sysconf(_SC_PAGESIZE)); }

static void *toy_pvalloc(size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (size > SIZE_MAX - page) {
    errno = ENOMEM;
    return NULL;
  }
  return toy_alloc((size + page - 1) & ~(page - 1), page);
}

static void toy_free(void *p) { (void)p; }
static void toy_free_sized(void *p, size_t size) { (void)p, (void)size; }
static void toy_free_aligned_sized(void *p, size_t align, size_t size) { (void)p, (void)align, (void)size; }

static bool toy_owns(const void *p) {
  return region != NULL && (const uint8_t *)p >= region && (const uint8_t *)p < region + TOY_REGION;
}

static const spec_api_t toy_api = {
    .name = "broken-toy",
    .malloc = toy_malloc,
    .calloc = toy_calloc,
    .realloc = toy_realloc,
    .reallocarray = toy_reallocarray,
    .aligned_alloc = toy_aligned_alloc,
    .posix_memalign = toy_posix_memalign,
    .memalign = toy_memalign,
    .valloc = toy_valloc,
    .pvalloc = toy_pvalloc,
    .free = toy_free,
    .free_sized = toy_free_sized,
    .free_aligned_sized = toy_free_aligned_sized,
    .usable_size = toy_usable,
    .owns = toy_owns,
    /* heaps, arenas and pools: not modelled by the toy (families off) */
};

static const struct {
  const char *name;
  spec_failure_t expected;
} bugs[SPEC_BROKEN_COUNT] = {
    [SPEC_BROKEN_NONE] = {"none", SPEC_FAIL_NONE},
    [SPEC_BROKEN_OVERLAP] = {"overlap", SPEC_FAIL_OVERLAP},
    [SPEC_BROKEN_REALLOC] = {"realloc", SPEC_FAIL_CONTENT},
    [SPEC_BROKEN_ERRNO] = {"errno", SPEC_FAIL_ERRNO},
    [SPEC_BROKEN_ZERO] = {"zero", SPEC_FAIL_ZERO},
    [SPEC_BROKEN_OUT] = {"out", SPEC_FAIL_OUT_TOUCHED},
    [SPEC_BROKEN_ALIGN] = {"align", SPEC_FAIL_ALIGN},
};

const spec_api_t *spec_broken_api(spec_broken_t which) {
  bug = which;
  return &toy_api;
}

spec_failure_t spec_broken_expected(spec_broken_t which) {
  return which < SPEC_BROKEN_COUNT ? bugs[which].expected : SPEC_FAIL_NONE;
}

const char *spec_broken_name(spec_broken_t which) { return which < SPEC_BROKEN_COUNT ? bugs[which].name : "?"; }

spec_broken_t spec_broken_parse(const char *name) {
  for (unsigned i = 0; i < SPEC_BROKEN_COUNT; i++)
    if (strcmp(name, bugs[i].name) == 0) return (spec_broken_t)i;
  return SPEC_BROKEN_COUNT;
}
