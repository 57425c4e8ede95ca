/* write_after_free — write through a pointer after free.  Caught when the
 * block leaves the quarantine: at exit, or ("churn") when later frees push it
 * out (KILN_QUARANTINE small).
 * EXPECT exit: kiln: write after free on @P@ (64-byte block): byte 8 written after it was freed — allocated at write_after_free.c:@L:ALLOC@ (main), freed at write_after_free.c:@L:FREE@ (main)
 * EXPECT churn: kiln: write after free on @P@ (64-byte block): byte 8 written after it was freed — allocated at write_after_free.c:@L:ALLOC@ (main), freed at write_after_free.c:@L:FREE@ (main)
 */
#include "misuse.h"

int main(int argc, char **argv) {
  char *p = malloc(64); /* @ALLOC */
  memset(p, 'w', 64);
  free(p); /* @FREE */
  if (!has_arg(argc, argv, "clean")) p[8] = 'W';
  if (has_arg(argc, argv, "churn")) {
    for (int i = 0; i < 10000; i++) free(malloc(64 + (size_t)(i % 7) * 16));
  }
  return 0;
}
