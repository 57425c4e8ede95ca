/* invalid_free — free a pointer Kiln never handed out (argv[1] says which).
 * EXPECT stack: kiln: invalid free of @P@ (stack memory)
 * EXPECT static: kiln: invalid free of @P@ (static data: static_buffer in @MOD@)
 * EXPECT interior: kiln: invalid free of @P@ (interior pointer, 16 bytes into a 64-byte block) — allocated at invalid_free.c:@L:INTERIOR@ (main)
 * EXPECT interior_huge: kiln: invalid free of @P@ (interior pointer, 4096 bytes into a 2097152-byte block) — allocated at invalid_free.c:@L:HUGE@ (main)
 * EXPECT foreign: kiln: invalid free of @P@ (not allocated by Kiln)
 * EXPECT destroyed: kiln: invalid free of @P@ (100-byte block of a destroyed heap) — allocated at invalid_free.c:@L:HEAP_ALLOC@ (main), heap destroyed at invalid_free.c:@L:DESTROY@ (main)
 */
#include <sys/mman.h>

#include "misuse.h"

static char static_buffer[64];

int main(int argc, char **argv) {
  bool clean = has_arg(argc, argv, "clean");
  if (has_arg(argc, argv, "stack")) {
    char local[64];
    memset(local, 0, sizeof local);
    if (!clean) free(opaque(local));
  } else if (has_arg(argc, argv, "static")) {
    if (!clean) free(opaque(static_buffer));
  } else if (has_arg(argc, argv, "interior")) {
    char *p = malloc(64); /* @INTERIOR */
    memset(p, 1, 64);
    free(clean ? p : p + 16);
  } else if (has_arg(argc, argv, "interior_huge")) {
    char *p = malloc((size_t)2 << 20); /* @HUGE */
    memset(p, 1, (size_t)2 << 20);
    free(clean ? p : p + 4096);
  } else if (has_arg(argc, argv, "foreign")) {
    /* Memory of another allocator: an anonymous mapping. */
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 1;
    if (!clean) free(m + 64);
    munmap(m, 4096);
  } else if (has_arg(argc, argv, "destroyed")) {
    kiln_heap_t *heap = kiln_heap_new();
    char *p = kiln_heap_malloc(heap, 100); /* @HEAP_ALLOC */
    memset(p, 2, 100);
    if (clean) free(p);
    kiln_heap_destroy(heap); /* @DESTROY */
    if (!clean) free(p);
  }
  return 0;
}
