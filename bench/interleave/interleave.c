/* kiln-bench-interleave — A/B of Kiln builds or settings inside one process,
 * in slices of a few milliseconds, for differences of a few percent.
 *
 *   kiln-bench-interleave [-k KERNEL] [-s SLICES] [-i ITERATIONS] NAME=LIB[:VAR=VALUE,...] ...
 *
 * Each configuration is a Kiln shared library (a build, or a copy of one:
 * dlopen loads a path once, so the same build twice needs two paths) and the
 * environment it starts with: VAR=VALUE pairs are set while it is loaded and
 * makes its first call, which is when Kiln reads its options, and taken away
 * after.  Every library keeps its own heap; the kernel calls its `malloc` and
 * `free` through function pointers (RTLD_LOCAL, so none of them replaces the
 * process's own malloc).
 *
 * A slice runs every configuration in turn (the order reversed every other
 * slice): one warm-up iteration of the kernel, then ITERATIONS timed ones.
 * The report gives each configuration's 10th percentile and median
 * iteration, the ratio of medians to the first configuration, and the
 * median of per-slice ratios (each slice's median against the first
 * configuration's in the same slice).  Why: bench/ab times whole runs,
 * seconds apart, and on a shared machine the speed moves between them by
 * more than the effect under test (docs/CHECKING.md); here both sides of a
 * ratio run within milliseconds of each other, and a second copy of the
 * baseline measures what is left of the noise (it should read 1.00).
 *
 * Kernels:
 *   simple  the loop of workloads/simple.c (one thread, 9 sizes from 16 to
 *           1024 bytes; pairs, then a batch of 1000 freed in order);
 *   churn   a 4096-slot table, each step frees a random slot and refills it
 *           with a random size from 16 to 1024 bytes (200000 steps).
 *
 * Example (the hardened mode's cost, with a copy of the baseline):
 *   cp build/libkiln.so /tmp/a.so; cp build/libkiln.so /tmp/b.so; cp build/libkiln.so /tmp/c.so
 *   build/bench/kiln-bench-interleave fast=/tmp/a.so secure=/tmp/b.so:KILN_SECURE=1 again=/tmp/c.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIGS 8
#define MAX_VARS 8

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

typedef struct {
  const char *name;
  malloc_fn malloc;
  free_fn free;
  double *times;  /* every timed iteration, slice by slice */
  double *slices; /* each slice's median */
} config_t;

typedef void kernel_fn(const config_t *config);

static _Noreturn __attribute__((format(printf, 1, 2))) void die(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "kiln-bench-interleave: ");
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(2);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* --- kernels --------------------------------------------------------------- */
static const size_t SIMPLE_SIZES[] = {16, 32, 48, 64, 96, 128, 256, 512, 1024};
enum { SIMPLE_BATCH = 1000, CHURN_SLOTS = 4096, CHURN_STEPS = 200000 };
static void *blocks[CHURN_SLOTS > SIMPLE_BATCH ? CHURN_SLOTS : SIMPLE_BATCH];

/* Keep the compiler from dropping a block's write and read. */
static void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void kernel_simple(const config_t *c) {
  for (size_t s = 0; s < sizeof SIMPLE_SIZES / sizeof SIMPLE_SIZES[0]; s++) {
    size_t size = SIMPLE_SIZES[s];
    for (size_t i = 0; i < SIMPLE_BATCH; i++) {
      unsigned char *p = c->malloc(size);
      p[0] = (unsigned char)i;
      escape(p);
      if (p[0] != (unsigned char)i) die("%s: lost a byte", c->name);
      c->free(p);
    }
    for (size_t i = 0; i < SIMPLE_BATCH; i++) {
      blocks[i] = c->malloc(size);
      *(size_t *)blocks[i] = i;
    }
    for (size_t i = 0; i < SIMPLE_BATCH; i++) {
      if (*(size_t *)blocks[i] != i) die("%s: a block was corrupted", c->name);
      c->free(blocks[i]);
    }
  }
}

static void kernel_churn(const config_t *c) {
  uint64_t state = 0x9e3779b97f4a7c15u; /* the same sequence for every configuration */
  for (size_t i = 0; i < CHURN_SLOTS; i++) blocks[i] = NULL;
  for (size_t step = 0; step < CHURN_STEPS; step++) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17; /* xorshift64 */
    size_t slot = (size_t)(state % CHURN_SLOTS), size = 16 + (size_t)((state >> 32) % 1009);
    if (blocks[slot] != NULL) {
      if (*(size_t *)blocks[slot] != slot) die("%s: a block was corrupted", c->name);
      c->free(blocks[slot]);
    }
    blocks[slot] = c->malloc(size);
    *(size_t *)blocks[slot] = slot;
  }
  for (size_t i = 0; i < CHURN_SLOTS; i++) c->free(blocks[i]);
}

/* --- configurations ---------------------------------------------------------- */
static void load(config_t *config, char *spec) {
  char *equals = strchr(spec, '=');
  if (equals == NULL || equals == spec) die("a configuration is NAME=LIB[:VAR=VALUE,...], not %s", spec);
  *equals = '\0';
  config->name = spec;
  char *path = equals + 1, *vars = strchr(path, ':');
  char *names[MAX_VARS];
  size_t count = 0;
  if (vars != NULL) {
    *vars++ = '\0';
    for (char *pair = strtok(vars, ","); pair != NULL; pair = strtok(NULL, ",")) {
      char *sep = strchr(pair, '=');
      if (sep == NULL || count == MAX_VARS) die("bad or too many VAR=VALUE pairs in %s", config->name);
      *sep = '\0';
      if (setenv(pair, sep + 1, 1) != 0) die("cannot set %s", pair);
      names[count++] = pair;
    }
  }
  char relative[4096];
  if (strchr(path, '/') == NULL) { /* dlopen would search the library path for a bare name */
    snprintf(relative, sizeof relative, "./%s", path);
    path = relative;
  }
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) die("%s", dlerror());
  config->malloc = (malloc_fn)dlsym(handle, "malloc");
  config->free = (free_fn)dlsym(handle, "free");
  if (config->malloc == NULL || config->free == NULL) die("%s exports no malloc and free", path);
  config->free(config->malloc(16)); /* Kiln reads its options now */
  for (size_t i = 0; i < count; i++) unsetenv(names[i]);
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *values, size_t count, double q) {
  qsort(values, count, sizeof *values, compare_doubles);
  return values[(size_t)(q * (double)(count - 1) + 0.5)];
}

int main(int argc, char **argv) {
  kernel_fn *kernel = kernel_simple;
  const char *kernel_name = "simple";
  size_t slices = 60, iterations = 3;
  int opt;
  while ((opt = getopt(argc, argv, "k:s:i:")) != -1) {
    if (opt == 'k' && strcmp(optarg, "simple") == 0) kernel = kernel_simple, kernel_name = "simple";
    else if (opt == 'k' && strcmp(optarg, "churn") == 0) kernel = kernel_churn, kernel_name = "churn";
    else if (opt == 's' && atoi(optarg) > 0) slices = (size_t)atoi(optarg);
    else if (opt == 'i' && atoi(optarg) > 0) iterations = (size_t)atoi(optarg);
    else die("usage: kiln-bench-interleave [-k simple|churn] [-s SLICES] [-i ITERATIONS] NAME=LIB[:VAR=V,...] ...");
  }
  size_t count = (size_t)(argc - optind);
  if (count < 2 || count > MAX_CONFIGS) die("give 2 to 8 configurations, the baseline first");
  config_t configs[MAX_CONFIGS];
  for (size_t i = 0; i < count; i++) {
    load(&configs[i], argv[optind + i]);
    configs[i].times = calloc(slices * iterations, sizeof(double));
    configs[i].slices = calloc(slices, sizeof(double));
    if (configs[i].times == NULL || configs[i].slices == NULL) die("out of memory");
  }
  double scratch[64];
  if (iterations > 64) die("at most 64 iterations a slice");
  for (size_t s = 0; s < slices; s++) {
    for (size_t k = 0; k < count; k++) {
      config_t *c = &configs[s % 2 ? count - 1 - k : k];
      kernel(c); /* warm-up: this configuration's memory back in the caches */
      for (size_t i = 0; i < iterations; i++) {
        double start = now();
        kernel(c);
        scratch[i] = c->times[s * iterations + i] = now() - start;
      }
      c->slices[s] = quantile(scratch, iterations, 0.5);
    }
  }
  printf("kernel %s, %zu slices of %zu iterations; times in microseconds per iteration\n", kernel_name, slices,
         iterations);
  printf("%-16s %10s %10s %12s %12s\n", "config", "p10", "median", "x baseline", "paired");
  double base_median = quantile(configs[0].times, slices * iterations, 0.5);
  double ratios[slices];
  for (size_t k = 0; k < count; k++) {
    config_t *c = &configs[k];
    for (size_t s = 0; s < slices; s++) ratios[s] = c->slices[s] / configs[0].slices[s];
    double median = quantile(c->times, slices * iterations, 0.5);
    printf("%-16s %10.1f %10.1f %12.3f %12.3f\n", c->name, quantile(c->times, slices * iterations, 0.1) * 1e6,
           median * 1e6, median / base_median, quantile(ratios, slices, 0.5));
  }
  return 0;
}
