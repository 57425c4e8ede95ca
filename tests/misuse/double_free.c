/* double_free — free a block twice: small, medium, huge, or over-aligned
 * (argv[1]; its pointer starts its block).  aligned_secure is `aligned` with
 * the hardened mode on as well: the checking mode must still see the frees.
 * EXPECT small: kiln: double free of @P@ (48-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT medium: kiln: double free of @P@ (20000-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT huge: kiln: double free of @P@ (3145728-byte block) — allocated at double_free.c:@L:ALLOC@ (make_block), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT aligned: kiln: double free of @P@ (100-byte block) — allocated at double_free.c:@L:ALIGNED@ (make_aligned), first freed at double_free.c:@L:FREE@ (main)
 * EXPECT aligned_secure: kiln: double free of @P@ (100-byte block) — allocated at double_free.c:@L:ALIGNED@ (make_aligned), first freed at double_free.c:@L:FREE@ (main)
 */
#include "misuse.h"

__attribute__((noinline)) static char *make_block(size_t size) {
  char *p = malloc(size); /* @ALLOC */
  memset(p, 'x', size);
  return p;
}

__attribute__((noinline)) static char *make_aligned(void) {
  char *p = aligned_alloc(4096, 100); /* @ALIGNED */
  memset(p, 'x', 100);
  return p;
}

int main(int argc, char **argv) {
  size_t size = has_arg(argc, argv, "huge") ? (size_t)3 << 20 : has_arg(argc, argv, "medium") ? 20000 : 48;
  bool aligned = has_arg(argc, argv, "aligned") || has_arg(argc, argv, "aligned_secure");
  char *p = aligned ? make_aligned() : make_block(size);
  free(p); /* @FREE */
  if (!has_arg(argc, argv, "clean")) free(p);
  return 0;
}
