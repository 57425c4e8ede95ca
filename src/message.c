/* message.c — formatted messages to stderr that never allocate.
 *
 * Kiln reports errors from inside malloc and free, where stdio (which may
 * allocate its buffers, and takes locks that a signal handler or a forked
 * child may find held) is off limits.  A small formatter into a stack buffer
 * and one write(2) keep messages safe from any context.
 */
#include <stdlib.h>

#include "internal.h"
#include "os.h"

typedef struct out_s {
  char *buf;
  size_t size;
  size_t len;
} out_t;

static void out_char(out_t *out, char c) {
  if (out->len + 1 < out->size) out->buf[out->len] = c;
  out->len++;
}

static void out_str(out_t *out, const char *s) {
  if (s == NULL) s = "(null)";
  while (*s) out_char(out, *s++);
}

static void out_unsigned(out_t *out, unsigned long long v, unsigned base) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0) out_char(out, digits[--n]);
}

static void out_signed(out_t *out, long long v) {
  if (v < 0) {
    out_char(out, '-');
    out_unsigned(out, 0ull - (unsigned long long)v, 10);
  } else {
    out_unsigned(out, (unsigned long long)v, 10);
  }
}

size_t kiln_format(char *buf, size_t size, const char *fmt, va_list args) {
  out_t out = {buf, size, 0};
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') { out_char(&out, *f); continue; }
    f++;
    int longs = 0;
    bool size_t_arg = false;
    while (*f == 'l') { longs++; f++; }
    if (*f == 'z') { size_t_arg = true; f++; }
    switch (*f) {
      case 's': out_str(&out, va_arg(args, const char *)); break;
      case 'c': out_char(&out, (char)va_arg(args, int)); break;
      case 'd': case 'i':
        if (size_t_arg) out_signed(&out, (long long)va_arg(args, ptrdiff_t));
        else if (longs >= 2) out_signed(&out, va_arg(args, long long));
        else if (longs == 1) out_signed(&out, va_arg(args, long));
        else out_signed(&out, va_arg(args, int));
        break;
      case 'u': case 'x': {
        unsigned base = *f == 'x' ? 16 : 10;
        if (size_t_arg) out_unsigned(&out, va_arg(args, size_t), base);
        else if (longs >= 2) out_unsigned(&out, va_arg(args, unsigned long long), base);
        else if (longs == 1) out_unsigned(&out, va_arg(args, unsigned long), base);
        else out_unsigned(&out, va_arg(args, unsigned), base);
        break;
      }
      case 'p':
        out_str(&out, "0x");
        out_unsigned(&out, (uintptr_t)va_arg(args, void *), 16);
        break;
      case '%': out_char(&out, '%'); break;
      case '\0': f--; break;
      default: out_char(&out, '%'); out_char(&out, *f); break;
    }
  }
  if (size > 0) buf[out.len < size ? out.len : size - 1] = '\0';
  return out.len < size ? out.len : (size > 0 ? size - 1 : 0);
}

void kiln_vmessage(const char *fmt, va_list args) {
  char buf[1024];
  size_t len = kiln_format(buf, sizeof buf - 1, fmt, args);
  buf[len++] = '\n';
  kiln_os_write_stderr(buf, len);
}

void kiln_message(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  kiln_vmessage(fmt, args);
  va_end(args);
}

void kiln_verbose(const char *fmt, ...) {
  if (!kiln_option(KILN_OPTION_VERBOSE)) return;
  va_list args;
  va_start(args, fmt);
  kiln_vmessage(fmt, args);
  va_end(args);
}

void kiln_fatal(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  kiln_vmessage(fmt, args);
  va_end(args);
  abort();
}
