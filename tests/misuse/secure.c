/* secure — the defences of the hardened mode (KILN_SECURE=1), one per
 * argument; exit 0 when the defence works.  Also holds the messages expected
 * when the hardened mode catches the bugs of double_free and invalid_free
 * (a freed huge block's mapping is gone at once: its second free is an
 * invalid one).
 *
 * EXPECT double_free_small: kiln: double free of @P@ (48-byte block, already free)
 * EXPECT double_free_medium: kiln: double free of @P@ (@N@-byte block, already free)
 * EXPECT double_free_huge: kiln: invalid free of @P@
 * EXPECT invalid_free_stack: kiln: invalid free of @P@
 * EXPECT invalid_free_static: kiln: invalid free of @P@
 * EXPECT invalid_free_interior: kiln: invalid free of @P@
 * EXPECT invalid_free_foreign: kiln: invalid free of @P@
 * EXPECT double_free_delayed: kiln: double free of @P@ (80-byte block, already free)
 * EXPECT double_free_delayed_remote: kiln: double free of @P@ (80-byte block, already free)
 * EXPECT forged_link: kiln: heap corruption detected: the free list of the 80-byte page @P@ leads to @P@, not a block of its page (use after free or overflow into a freed block)
 * EXPECT forged_link_delayed: kiln: heap corruption detected: the free list of the 80-byte page @P@ leads to @P@, not a block of its page (use after free or overflow into a freed block)
 * EXPECT forged_link_collect: kiln: heap corruption detected: the free list of the 80-byte page @P@ leads to @P@, not a block of its page (use after free or overflow into a freed block)
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln.h"

#define PAGE 4096u
#define SEGMENT ((uintptr_t)4 << 20)

static int fail(const char *what) {
  fprintf(stderr, "secure: FAIL: %s\n", what);
  return 1;
}

/* Write `max` bytes from `from` on in a child, upwards (step 1) or
 * downwards (step -1); returns the address of the byte whose write faulted
 * (0 if the child never faulted). */
static uintptr_t first_fault(volatile uint8_t *from, size_t max, int step) {
  volatile uintptr_t *progress = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (progress == MAP_FAILED) return 0;
  *progress = 0;
  pid_t pid = fork();
  if (pid == 0) {
    for (size_t i = 0; i < max; i++) {
      volatile uint8_t *at = from + (ptrdiff_t)i * step;
      *progress = (uintptr_t)at;
      *at = 1;
    }
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  uintptr_t at = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV ? *progress : 0;
  munmap((void *)progress, PAGE);
  return at;
}

/* Whether the OS page at addr is mapped PROT_NONE (a guard page), from
 * /proc/self/maps: a fault alone would not tell a guard from the end of a
 * mapping with nothing after it. */
static int is_guard_page(uintptr_t addr) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return 0;
  char line[512];
  int guard = 0;
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
    if (addr >= lo && addr < hi) {
      guard = strncmp(perms, "---", 3) == 0;
      break;
    }
  }
  fclose(maps);
  return guard;
}

/* The first OS page at or after p + size. */
static uintptr_t end_page(const void *p, size_t size) {
  return ((uintptr_t)p + size + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
}

/* NULL if the page right after [p, p + size) is a PROT_NONE guard and a
 * write running off the end faults exactly there; else what is wrong. */
static const char *guard_problem(uint8_t *p, size_t size) {
  uintptr_t end = end_page(p, size);
  if (!is_guard_page(end)) return "not a PROT_NONE guard";
  if (first_fault(p + size, 2 * PAGE, 1) != end) return "no fault at the guard page";
  return NULL;
}

/* NULL if the page right before p (a page boundary) is a PROT_NONE guard
 * and a write running down from p faults exactly at p - 1. */
static const char *front_guard_problem(uint8_t *p) {
  if (!is_guard_page((uintptr_t)p - PAGE)) return "not a PROT_NONE guard";
  if (first_fault(p - 1, 2 * PAGE, -1) != (uintptr_t)p - 1) return "no fault at the guard page";
  return NULL;
}

/* side: "after" or "before". */
static int fail_guard(const char *side, const char *where, const char *problem) {
  fprintf(stderr, "secure: FAIL: the page %s %s: %s\n", side, where, problem);
  return 1;
}

static void *free_on_thread(void *p) {
  free(p);
  return NULL;
}

/* Free p on a thread of its own; false if no thread could run. */
static bool free_remotely(void *p) {
  pthread_t t;
  return pthread_create(&t, NULL, free_on_thread, p) == 0 && pthread_join(t, NULL) == 0;
}

/* Fill the first pages with n blocks of `size` bytes (each byte 0x11), then
 * free p[0] on another thread: its page is full, so the block waits on the
 * owner's delayed-free list. */
static bool first_block_delayed(uint8_t **p, int n, size_t size) {
  for (int i = 0; i < n; i++) memset(p[i] = malloc(size), 0x11, size);
  return free_remotely(p[0]);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "guard_huge") == 0) {
    /* A write past the last page of a huge block faults at once. */
    size_t size = (3u << 20) + 100;
    uint8_t *p = malloc(size);
    const char *problem = guard_problem(p, size);
    free(p);
    return problem != NULL ? fail_guard("after", "a huge block", problem) : 0;
  }
  if (strcmp(what, "guard_huge_front") == 0) {
    /* An underflow from a huge block faults at the page right before it
     * instead of rewriting its header: in a fresh mapping, in one the huge
     * cache hands out again, for over-aligned blocks laid out in such a
     * mapping (the guard moves up), in that mapping reused for plain blocks
     * (the guard moves back, out of the block or from past its end), and
     * after realloc moved the block's pages.  (A kept guard that a trim of
     * the mapping unmapped: secure_test_api's test_valloc_pvalloc.) */
    static const struct { size_t alignment, size; const char *what; } steps[] = {
      {0, (3u << 20) + 100, "a fresh huge block"},
      {0, (3u << 20) + 100, "a huge block in a cached mapping"},
      {64u << 10, (3u << 20) + 100, "a 64 KiB-aligned huge block"},
      {0, (3u << 20) + 100, "a huge block in a mapping a 64 KiB-aligned one used"},
      {2u << 20, (3u << 20) + 100, "a 2 MiB-aligned huge block"},
      {0, 1u << 20, "a smaller huge block in a mapping a 2 MiB-aligned one used"},
    };
    uint8_t *p = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
      free(p);
      size_t size = steps[i].size;
      p = steps[i].alignment ? aligned_alloc(steps[i].alignment, size) : malloc(size);
      if (p == NULL) return fail("malloc failed");
      memset(p, 1, size); /* no guard kept from another layout inside the block */
      const char *problem = front_guard_problem(p);
      if (problem != NULL) return fail_guard("before", steps[i].what, problem);
    }
    size_t size = steps[sizeof steps / sizeof steps[0] - 1].size, grown_size = 64u << 20;
    uint8_t *q = realloc(p, grown_size);
    if (q == NULL) return fail("realloc failed");
    for (size_t i = 0; i < size; i += 512)
      if (q[i] != 1) return fail("contents lost by the grow");
    memset(q, 2, grown_size);
    const char *problem = front_guard_problem(q);
    free(q);
    return problem != NULL ? fail_guard("before", "a huge block grown by realloc", problem) : 0;
  }
  if (strcmp(what, "guard_huge_realloc") == 0) {
    /* A huge block grown by realloc (in place or by moving its pages) keeps
     * its contents, and the guard page moves to the end of its usable size,
     * which has at most 1/8 of headroom past the bytes asked for (each end
     * rounded up to a page). */
    size_t size = (3u << 20) + 100, grown_size = (7u << 20) + 300;
    uint8_t *p = malloc(size);
    for (size_t i = 0; i < size; i += PAGE) p[i] = (uint8_t)(i / PAGE);
    p[size - 1] = 0x5a;
    uint8_t *q = realloc(p, grown_size);
    if (q == NULL) return fail("realloc failed");
    for (size_t i = 0; i < size; i += PAGE)
      if (q[i] != (uint8_t)(i / PAGE)) return fail("contents lost by the grow");
    if (q[size - 1] != 0x5a) return fail("last byte lost by the grow");
    size_t usable = malloc_usable_size(q);
    if (usable < grown_size || usable > grown_size + grown_size / 8 + 2 * PAGE)
      return fail("a grown huge block's headroom is not within 1/8 of its size");
    memset(q + size, 1, usable - size); /* the new room is writable */
    const char *problem = guard_problem(q, usable);
    free(q);
    return problem != NULL ? fail_guard("after", "a grown huge block", problem) : 0;
  }
  if (strcmp(what, "guard_huge_reuse") == 0) {
    /* A freed huge block's mapping keeps its guard in the huge cache.  A
     * smaller block of that mapping keeps it too, at the mapping's last
     * page: a write running off the block crosses only the mapping's slack
     * and faults there, within the big block's reach.  A later, larger
     * block of that mapping must not find the old guard inside itself
     * (calloc writes all of it), and gets its own right after it. */
    size_t big = (3u << 20) + 8 * PAGE, small = (3u << 20) + 100;
    free(malloc(big));
    uint8_t *p = malloc(small); /* the same mapping */
    uintptr_t fault = first_fault(p + small, big, 1);
    if (fault == 0 || !is_guard_page(fault)) return fail("no guard after a block in a reused mapping");
    if (fault > (uintptr_t)p + big + PAGE) return fail("the guard of a reused mapping lies past the mapping");
    free(p);
    uint8_t *q = calloc(1, big); /* the old guard would lie inside this one */
    for (size_t i = 0; i < big; i += 64)
      if (q[i] != 0) return fail("calloc of a reused mapping is not zero");
    memset(q, 2, big);
    if (!is_guard_page(end_page(q, big))) return fail("no guard after a block that reused a guarded mapping");
    /* realloc by a few bytes at a time: the guard follows the end of the
     * usable size, which stays within 1/8 of the bytes asked for. */
    size_t size = big;
    for (int step = 0; step < 300; step++) {
      size += 40;
      q = realloc(q, size);
      if (q == NULL) return fail("realloc failed");
      q[size - 1] = 3;
      size_t usable = malloc_usable_size(q);
      if (usable < size || usable > size + size / 8 + 2 * PAGE) return fail("headroom not within 1/8 of the size");
      if (!is_guard_page(end_page(q, usable))) return fail("the guard did not follow a block grown in small steps");
    }
    free(q);
    return 0;
  }
  if (strcmp(what, "guard_huge_headroom") == 0) {
    /* A buffer grown 64 bytes at a time across 64 pages: its guard moves
     * with the headroom, a few times, not at every page (each move is two
     * mprotect calls).  The usable size changes only when the guard moves. */
    size_t size = 2u << 20;
    uint8_t *p = malloc(size);
    size_t usable = malloc_usable_size(p), moves = 0;
    for (int step = 0; step < 64 * (int)PAGE / 64; step++) {
      size += 64;
      p = realloc(p, size);
      if (p == NULL) return fail("realloc failed");
      p[size - 1] = 4;
      if (malloc_usable_size(p) != usable) moves++, usable = malloc_usable_size(p);
    }
    const char *problem = guard_problem(p, usable);
    free(p);
    if (moves > 4) return fail("the guard moved at (nearly) every page a growing buffer crossed");
    return problem != NULL ? fail_guard("after", "a buffer grown in small steps", problem) : 0;
  }
  if (strcmp(what, "guard_segment") == 0 || strcmp(what, "guard_segment_front") == 0) {
    /* Fill segments with 1 KiB blocks.  The one closest to a segment's end
     * overflows into the guard page there.  The lowest one starts right
     * after a guard page, so an underflow from it faults there instead of
     * reaching the segment's header (all its pages' metadata). */
    bool front = strcmp(what, "guard_segment_front") == 0;
    enum { N = 20000 };
    static uint8_t *blocks[N];
    uint8_t *edge = NULL;
    for (int i = 0; i < N; i++) {
      blocks[i] = malloc(1024);
      uintptr_t off = (uintptr_t)blocks[i] & (SEGMENT - 1), edge_off = (uintptr_t)edge & (SEGMENT - 1);
      if (edge == NULL || (front ? off < edge_off : off > edge_off)) edge = blocks[i];
    }
    uintptr_t guard = front ? (uintptr_t)edge - PAGE : ((uintptr_t)edge & ~(SEGMENT - 1)) + SEGMENT - PAGE;
    int guarded = is_guard_page(guard);
    uintptr_t at = front ? first_fault(edge - 1, 2 * PAGE, -1) : first_fault(edge, 2 * PAGE + 2048, 1);
    for (int i = 0; i < N; i++) free(blocks[i]);
    if (!guarded) return fail(front ? "the page before a segment's first block is not a PROT_NONE guard"
                                    : "a segment's last page is not a PROT_NONE guard");
    if (at != (front ? (uintptr_t)edge - 1 : guard))
      return fail(front ? "no fault at the guard page before a segment's first block"
                        : "no fault at the guard page at a segment's end");
    return 0;
  }
  if (strcmp(what, "segment_kinds") == 0) {
    /* Empty segments wait in a cache and come back as any kind, with
     * another header size: the front guard must lie where no kind's header
     * is written (a first version, right after each kind's own header, made
     * a medium segment's guard part of a small segment's header, and the
     * header's set-up faulted).  Medium, small, large and medium again,
     * every block written in full. */
    static const size_t sizes[] = {32 << 10, 64, 200 << 10, 32 << 10};
    enum { BYTES = 12 << 20, MAX = (12 << 20) / 64 };
    static uint8_t *p[MAX];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t n = BYTES / sizes[s];
      for (size_t i = 0; i < n; i++) memset(p[i] = malloc(sizes[s]), 0x5a, sizes[s]);
      for (size_t i = 0; i < n; i++) free(p[i]);
    }
    return 0;
  }
  if (strcmp(what, "shuffle") == 0) {
    /* Consecutive allocations from a fresh page are not in address order. */
    enum { N = 1000 };
    static uint8_t *p[N];
    int ascending = 0;
    for (int i = 0; i < N; i++) {
      p[i] = malloc(48);
      if (i > 0 && p[i] == p[i - 1] + 48) ascending++;
    }
    for (int i = 0; i < N; i++) free(p[i]);
    if (ascending > N / 10) return fail("allocation order is not randomised");
    return 0;
  }
  if (strcmp(what, "zero_on_free") == 0) {
    /* A freed block keeps no trace of its first 32 bytes (beyond the free
     * list's link in its first word), whatever its size: all of a small
     * block, the front of a larger one; the bytes after them stay as they
     * were.  (Reading a freed block is this test's use after free on
     * purpose: nothing reuses it in between.) */
    static const size_t sizes[] = {16, 32, 48, 100, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t n = sizes[s], zeroed = n < 32 ? n : 32;
      uint8_t *p = malloc(n);
      memset(p, 0xaa, n);
      free(p);
      volatile uint8_t *stale = p;
      for (size_t i = 8; i < n; i++)
        if (stale[i] != (i < zeroed ? 0 : 0xaa))
          return fail(i < zeroed ? "a freed block's first 32 bytes not zeroed" : "a byte past the first 32 zeroed");
    }
    return 0;
  }
  if (strcmp(what, "zero_bound") == 0 || strcmp(what, "zero_off") == 0) {
    /* KILN_SECURE_ZERO=16 (zero_bound): the first 16 bytes of a freed block
     * are zeroed and the rest keeps its bytes, in a 48-byte block and in a
     * 1000-byte one; =0 (zero_off): nothing is zeroed. */
    bool bound = strcmp(what, "zero_bound") == 0;
    size_t zeroed = bound ? 16 : 8; /* (the first word is the link either way) */
    uint8_t *small = malloc(48), *large = malloc(1000);
    memset(small, 0xaa, 48);
    memset(large, 0xbb, 1000);
    free(small);
    free(large);
    volatile uint8_t *stale_small = small, *stale_large = large;
    for (size_t i = 8; i < 48; i++)
      if (stale_small[i] != (i < zeroed ? 0 : 0xaa))
        return fail(i < zeroed ? "a byte below the KILN_SECURE_ZERO bound not zeroed"
                               : "a byte past the KILN_SECURE_ZERO bound zeroed");
    for (size_t i = 8; i < 1000; i++)
      if (stale_large[i] != (i < zeroed ? 0 : 0xbb))
        return fail(i < zeroed ? "a byte below the KILN_SECURE_ZERO bound not zeroed (large block)"
                               : "a byte past the KILN_SECURE_ZERO bound zeroed (large block)");
    return 0;
  }
  if (strcmp(what, "live_link") == 0) {
    /* A live block whose first word happens to look like a free-list link
     * passes the O(1) double-free screen (secure.h); the search of the
     * page's lists must then clear it: no report, and the heap stays sound.
     * The words are made so on purpose, with the page's key read through a
     * use after free: the first block freed on a fresh page links to NULL,
     * so its first word is the key itself.  Three such words, each in a
     * block of its own: one that decodes to the live block b, and two that
     * the screen cannot tell from links because it reads only their high
     * half: one into b's 4 GiB region, not at a block, and one that decodes
     * to a small number, not NULL. */
    enum { SIZE = 208, N = 64, FORMS = 3 };
    uint8_t *probe = malloc(SIZE), *b = malloc(SIZE), *a[FORMS];
    for (int f = 0; f < FORMS; f++) a[f] = malloc(SIZE);
    memset(b, 0x5b, SIZE);
    free(probe);
    uintptr_t key = *(volatile uintptr_t *)probe;
    if ((key & 31) != 16) return fail("no page key in a freed block's first word");
    const uintptr_t words[FORMS] = {key ^ (uintptr_t)b, key ^ ((uintptr_t)b | 0xffffff8u), key ^ 0x1238u};
    for (int f = 0; f < FORMS; f++) {
      *(volatile uintptr_t *)a[f] = words[f];
      free(a[f]);
    }
    static uint8_t *p[N];
    for (int i = 0; i < N; i++) memset(p[i] = malloc(SIZE), i, SIZE);
    for (int i = 0; i < N; i++)
      for (int j = 0; j < SIZE; j++)
        if (p[i][j] != (uint8_t)i) return fail("blocks overlap after a free that passed the screen");
    for (int j = 0; j < SIZE; j++)
      if (b[j] != 0x5b) return fail("a live block changed after a free that passed the screen");
    for (int i = 0; i < N; i++) free(p[i]);
    free(b);
    return 0;
  }
  if (strcmp(what, "forged_link") == 0) {
    /* A use after free overwrites a freed block's free-list link with a
     * plain pointer (tcache poisoning: "hand out this address next").  The
     * link is stored xor the page's secret, so the forged word decodes to
     * no block of the page, and the malloc that would follow it aborts. */
    enum { SIZE = 80, N = 4096 };
    static uint8_t target[SIZE];
    static uint8_t *p[N];
    uint8_t *victim = malloc(SIZE);
    free(victim);
    *(uint8_t *volatile *)victim = target;
    for (int i = 0; i < N; i++) {
      p[i] = malloc(SIZE);
      if (p[i] == target) return fail("malloc handed out the forged address");
    }
    return fail("a forged free-list link was not detected");
  }
  if (strcmp(what, "forged_link_delayed") == 0) {
    /* Another thread frees a block of a page that is full: the block waits
     * on its heap's delayed-free list, linked like the free lists, until the
     * owner takes it.  A use after free forges its link to a live block:
     * following it would free that block while the program holds it. */
    enum { SIZE = 80, N = 4096 };
    static uint8_t *p[N];
    if (!first_block_delayed(p, N, SIZE)) return fail("no thread");
    ((uint8_t *volatile *)p[0])[1] = p[1]; /* a live block (the link is the second word there: page.h) */
    kiln_collect(false);
    for (int i = 0; i < N; i++) {
      uint8_t *q = malloc(SIZE);
      if (q == p[1]) return fail("malloc handed out a live block");
      memset(q, 0x22, SIZE);
    }
    for (int j = 0; j < SIZE; j++)
      if (p[1][j] != 0x11) return fail("a live block was overwritten");
    return fail("a forged link on the delayed-free list was not detected");
  }
  if (strcmp(what, "double_free_delayed") == 0 || strcmp(what, "double_free_delayed_remote") == 0) {
    /* The first block another thread frees into a full page waits on the
     * owner's delayed-free list, not on a list of its page.  A second free
     * while it waits (by the owner, or by another thread) is still a double
     * free: passed as a valid one, the block would sit on two lists and two
     * mallocs would hand it out. */
    enum { SIZE = 80, N = 4096 };
    static uint8_t *p[N];
    if (!first_block_delayed(p, N, SIZE)) return fail("no thread");
    if (strcmp(what, "double_free_delayed") == 0) free(p[0]);
    else if (!free_remotely(p[0])) return fail("no thread");
    return fail("a double free of a block on the delayed-free list was not detected");
  }
  if (strcmp(what, "forged_link_collect") == 0) {
    /* The same forgery in a block that waits on the owner's local list
     * while the page still has blocks to hand out: collecting the lists
     * walks the local list to its end, and must not follow the forged link
     * (to read it, and to write the end's link). */
    enum { SIZE = 80, N = 16 };
    static uint8_t target[SIZE];
    static uint8_t *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    free(p[1]);
    free(p[2]); /* local list: p[2] -> p[1] */
    *(uint8_t *volatile *)p[2] = target;
    kiln_collect(false);
    for (int i = 0; i < 4096; i++)
      if (malloc(SIZE) == target) return fail("malloc handed out the forged address");
    return fail("a forged link on a local free list was not detected");
  }
  return fail("unknown case");
}
