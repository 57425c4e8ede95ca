/* overflow — write one byte past the end of a block of argv[1] bytes, then
 * free it (or realloc it, with "realloc": the canary is checked there too;
 * with "grown", first grow the block in place by realloc: the canary moves
 * to the new end, and the record keeps its allocation site).
 * EXPECT 1: kiln: buffer overflow on @P@ (1-byte block): byte 1 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 24: kiln: buffer overflow on @P@ (24-byte block): byte 24 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 48: kiln: buffer overflow on @P@ (48-byte block): byte 48 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 100: kiln: buffer overflow on @P@ (100-byte block): byte 100 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 4096: kiln: buffer overflow on @P@ (4096-byte block): byte 4096 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 100000: kiln: buffer overflow on @P@ (100000-byte block): byte 100000 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT 3000000: kiln: buffer overflow on @P@ (3000000-byte block): byte 3000000 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 * EXPECT realloc: kiln: buffer overflow on @P@ (40-byte block): byte 40 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:REALLOC@ (main)
 * EXPECT grown: kiln: buffer overflow on @P@ (104-byte block): byte 104 written past the end — allocated at overflow.c:@L:ALLOC@ (main), freed at overflow.c:@L:FREE@ (main)
 */
#include "misuse.h"

int main(int argc, char **argv) {
  bool by_realloc = has_arg(argc, argv, "realloc");
  bool grown = has_arg(argc, argv, "grown");
  size_t size = by_realloc ? 40 : grown ? 100 : (size_t)strtoull(argv[1], NULL, 10);
  char *p = malloc(size); /* @ALLOC */
  memset(p, 'o', size);
  if (grown) {
    size = 104; /* within the block: stays in place */
    p = realloc(p, size);
    memset(p, 'g', size);
  }
  if (!has_arg(argc, argv, "clean")) p[size] = '\0'; /* the classic: a terminator one past the end */
  if (by_realloc) {
    p = realloc(p, 5000); /* @REALLOC */
  }
  free(p); /* @FREE */
  return 0;
}
