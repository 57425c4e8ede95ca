/* underflow — write before the start of a block.
 * EXPECT underflow: kiln: buffer underflow on @P@ (32-byte block): byte -1 written before the start — allocated at underflow.c:@L:ALLOC@ (main), freed at underflow.c:@L:FREE@ (main)
 */
#include "misuse.h"

int main(int argc, char **argv) {
  char *p = malloc(32); /* @ALLOC */
  memset(p, 'u', 32);
  if (!has_arg(argc, argv, "clean")) p[-1] = 'u';
  free(p); /* @FREE */
  return 0;
}
