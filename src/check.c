/* check.c — the checking mode (KILN_CHECK=1).  Placeholder wiring: the mode
 * is recognised but its checks land with issue 5; until then it is refused
 * with a message instead of silently doing nothing. */
#include "check.h"
#include "internal.h"

bool kiln_check_mode;

void kiln_check_init(void) {
  if (kiln_option(KILN_OPTION_CHECK) || kiln_option(KILN_OPTION_LEAKS))
    kiln_message("kiln: KILN_CHECK is not available in this build yet; running unchecked");
}

void *kiln_check_malloc(kiln_heap_t *heap, size_t size, size_t alignment, bool zero) {
  (void)heap; (void)size; (void)alignment; (void)zero;
  kiln_fatal("kiln: internal error: checking mode entered while disabled");
}
void kiln_check_page_init(kiln_heap_t *heap, kiln_page_t *page) { (void)heap; (void)page; }
void kiln_check_page_freed(kiln_page_t *page) { (void)page; }
bool kiln_check_free(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size_hint,
                     size_t alignment_hint) {
  (void)page; (void)block; (void)p; (void)size_hint; (void)alignment_hint;
  return true;
}
void kiln_check_report(const char *what, const void *p, size_t size) {
  kiln_fatal("kiln: %s of %p (%zu bytes)", what, p, size);
}
size_t kiln_check_usable_size(kiln_page_t *page, kiln_block_t *block, size_t usable) {
  (void)page; (void)block;
  return usable;
}
bool kiln_check_resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size) {
  (void)page; (void)block; (void)p; (void)size;
  return false;
}
void kiln_check_at_exit(void) {}
