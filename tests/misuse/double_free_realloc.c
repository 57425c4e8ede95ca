/* double_free_realloc — realloc moves a block, then the old pointer is freed.
 * EXPECT realloc: kiln: double free of @P@ (32-byte block) — allocated at double_free_realloc.c:@L:ALLOC@ (main), first freed at double_free_realloc.c:@L:REALLOC@ (main)
 */
#include "misuse.h"

int main(int argc, char **argv) {
  char *p = malloc(32); /* @ALLOC */
  memset(p, 'a', 32);
  char *q = realloc(p, 4096); /* @REALLOC */
  if (q == p) return 1; /* it must move (grows past the block) */
  if (!has_arg(argc, argv, "clean")) free(p);
  free(q);
  return 0;
}
