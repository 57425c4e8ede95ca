/* object_pool.c — a game-like loop that spawns and despawns entities from a
 * fixed-size pool.
 *
 * Every tick, entities move; some die (despawn: kiln_pool_free) and new ones
 * are spawned (kiln_pool_alloc), in waves, so the population swells and
 * shrinks.  The pool hands out and takes back one entity in O(1) with no
 * fragmentation, and gives pages back to the OS when a wave recedes.  The
 * live list is an array from kiln_malloc.
 *
 * Checked: the pool's in_use equals the live count every tick; every entity's
 * integrity tag survives while it lives; capacity falls back after the
 * largest wave.  Exits 0 when all hold.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

typedef struct entity_s {
  uint64_t id;
  float x, y, vx, vy;
  int32_t hp;
  uint32_t tag; /* id scrambled: checked every tick to catch corruption */
  char name[32];
} entity_t;

static uint32_t tag_of(uint64_t id) { return (uint32_t)(id * 2654435761u) ^ 0xa5a5a5a5u; }

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

int main(void) {
  enum { TICKS = 2750, MAX_LIVE = 60000 }; /* ends in a trough of the waves */
  kiln_pool_t *pool = kiln_pool_new(sizeof(entity_t), _Alignof(entity_t));
  entity_t **live = kiln_malloc(MAX_LIVE * sizeof *live);
  if (pool == NULL || live == NULL) { perror("object_pool"); return 1; }
  size_t count = 0, peak = 0, peak_capacity = 0, spawned = 0, despawned = 0;
  uint64_t next_id = 1;

  for (int tick = 0; tick < TICKS; tick++) {
    /* Waves: the spawn rate follows a slow sine, so the population swells
     * to tens of thousands and recedes to a few hundred. */
    double wave = 0.5 + 0.5 * sin(tick * 2 * 3.14159265 / 1000.0);
    size_t spawn = (size_t)(wave * 400);
    for (size_t i = 0; i < spawn && count < MAX_LIVE; i++) {
      entity_t *e = kiln_pool_alloc(pool);
      if (e == NULL) { perror("object_pool: spawn"); return 1; }
      e->id = next_id++;
      e->x = (float)(next() % 1000);
      e->y = (float)(next() % 1000);
      e->vx = (float)(next() % 21) - 10.0f;
      e->vy = (float)(next() % 21) - 10.0f;
      e->hp = 20 + (int32_t)(next() % 100);
      e->tag = tag_of(e->id);
      snprintf(e->name, sizeof e->name, "mob-%llu", (unsigned long long)e->id);
      live[count++] = e;
      spawned++;
    }
    /* Move, take damage, despawn the dead (swap-remove from the live list). */
    for (size_t i = 0; i < count;) {
      entity_t *e = live[i];
      if (e->tag != tag_of(e->id)) { fprintf(stderr, "object_pool: entity %p corrupted\n", (void *)e); return 1; }
      e->x += e->vx;
      e->y += e->vy;
      e->hp -= (int32_t)(next() % 4);
      if (e->hp <= 0) {
        kiln_pool_free(pool, e);
        live[i] = live[--count];
        despawned++;
      } else {
        i++;
      }
    }
    if (kiln_pool_in_use(pool) != count) {
      fprintf(stderr, "object_pool: in_use %zu != live %zu\n", kiln_pool_in_use(pool), count);
      return 1;
    }
    if (count > peak) peak = count;
    size_t cap = kiln_pool_capacity_bytes(pool);
    if (cap > peak_capacity) peak_capacity = cap;
  }
  size_t final_capacity = kiln_pool_capacity_bytes(pool);
  printf("object_pool: %zu spawned, %zu despawned, peak %zu live; pool capacity peak %zu KiB, "
         "now %zu KiB for %zu live\n", spawned, despawned, peak, peak_capacity >> 10, final_capacity >> 10,
         count);
  /* Everything left despawns at once with the pool. */
  kiln_pool_destroy(pool);
  kiln_free(live);
  if (spawned - despawned != count || final_capacity >= peak_capacity) return 1;
  return 0;
}
