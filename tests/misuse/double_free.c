/* double_free — free a block twice: small, medium or huge (argv[1]).
 * EXPECT small: kiln: double free of @P@ (48-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT medium: kiln: double free of @P@ (20000-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT huge: kiln: double free of @P@ (3145728-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 */
#include "misuse.h"

__attribute__((noinline)) static char *make_block(size_t size) {
  char *p = malloc(size); /* @ALLOC */
  memset(p, 'x', size);
  return p;
}

int main(int argc, char **argv) {
  size_t size = has_arg(argc, argv, "huge") ? (size_t)3 << 20 : has_arg(argc, argv, "medium") ? 20000 : 48;
  char *p = make_block(size);
  free(p); /* @FREE */
  if (!has_arg(argc, argv, "clean")) free(p);
  return 0;
}
