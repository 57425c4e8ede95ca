#!/usr/bin/env python3
"""gen_corpus.py — write the seed inputs of fuzz/corpus/.

Each seed is a small hand-made operation sequence in the byte format that
spec_decode (tests/spec/model_gen.c) reads:
  kind byte (index in SPEC_OPS of tests/spec/model.h, read from that file),
  a byte: thread (bits 0-1) | flags << 2 | obj << 4, a slot byte,
  then the arguments (ARENA_NEW: size, then limit >> 16 as one byte;
  POOL_NEW: block size as 2 bytes, then an alignment): sizes as a selector byte (0x00: 0; 0x01 n: n < 256;
  0x40 lo hi: < 65536; 0x80 lo hi: value << 6; 0xC0|i: edge size i, or a
  size that must fail for i >= 21), alignments as one byte (< 200: 1 << (b % 21)).
Run: python3 fuzz/gen_corpus.py   (rewrites fuzz/corpus/seed_*.bin)
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_H = os.path.join(HERE, "..", "tests", "spec", "model.h")

def kinds():
    text = open(MODEL_H).read()
    block = text[text.index("#define SPEC_OPS(X)"):text.index("typedef enum spec_kind_e")]
    return {name: i for i, name in enumerate(re.findall(r"X\((\w+)\)", block))}

K = kinds()
FAIL = 0xC0 | 21          # first of the must-fail sizes (PTRDIFF_MAX + 1)
SIZE_MAX_SEL = 0xC0 | 22  # SIZE_MAX

def size(n):
    if n == 0:
        return [0x00]
    if n < 256:
        return [0x01, n]
    if n < 65536:
        return [0x40, n & 255, n >> 8]
    v = (n + 63) >> 6          # rounded up to a multiple of 64
    assert v < 65536
    return [0x80, v & 255, v >> 8]

def align(shift):
    return [shift]

def op(kind, slot=0, thread=0, flags=0, obj=0, args=()):
    out = [K[kind], thread | flags << 2 | obj << 4, slot]
    for a in args:
        out += a
    return out

def sz(n):
    return size(n)

SEEDS = {
    "seed_malloc_free": sum([
        op("MALLOC", 1, args=[sz(16)]), op("MALLOC", 2, args=[sz(100)]),
        op("MALLOC", 3, args=[sz(5000)]), op("MALLOC", 4, args=[sz(70000)]),
        op("MALLOC", 5, args=[sz(2 << 20)]), op("MALLOC", 6, args=[sz(0)]),
        op("USABLE_SIZE", 3), op("FREE", 2), op("FREE_SIZED", 1), op("FREE", 3),
        op("FREE", 4), op("FREE", 5), op("FREE", 6), op("CHECK_ALL"),
    ], []),
    "seed_realloc": sum([
        op("MALLOC", 1, args=[sz(10)]), op("REALLOC", 1, args=[sz(200)]),
        op("REALLOC", 1, args=[sz(9000)]), op("REALLOC", 1, args=[sz(3 << 20)]),
        op("REALLOC", 1, args=[[SIZE_MAX_SEL]]), op("REALLOC", 1, args=[sz(24)]),
        op("REALLOCARRAY", 1, args=[sz(8), sz(100)]), op("REALLOC", 1, args=[sz(0)]),
        op("REALLOC", 2, args=[sz(64)]), op("FREE", 2),
    ], []),
    "seed_errors": sum([
        op("MALLOC", 1, args=[[FAIL]]), op("MALLOC", 1, args=[[SIZE_MAX_SEL]]),
        op("CALLOC", 1, args=[[SIZE_MAX_SEL], sz(2)]), op("CALLOC", 2, args=[sz(0), sz(0)]),
        op("ALIGNED_ALLOC", 3, args=[sz(16), [203]]), op("ALIGNED_ALLOC", 3, args=[sz(16), [200]]),
        op("POSIX_MEMALIGN", 4, args=[sz(16), align(2)]), op("POSIX_MEMALIGN", 4, args=[[FAIL], align(6)]),
        op("PVALLOC", 5, args=[[SIZE_MAX_SEL]]), op("FREE", 2),
    ], []),
    "seed_aligned": sum([
        op("ALIGNED_ALLOC", 1, args=[sz(1), align(6)]), op("POSIX_MEMALIGN", 2, args=[sz(100), align(12)]),
        op("MEMALIGN", 3, args=[sz(3000), align(10)]), op("ALIGNED_ALLOC", 4, args=[sz(16), align(20)]),
        op("VALLOC", 5, args=[sz(10)]), op("PVALLOC", 6, args=[sz(5000)]),
        op("FREE_ALIGNED_SIZED", 1), op("FREE_ALIGNED_SIZED", 2), op("FREE", 3), op("FREE", 4),
        op("FREE", 5), op("FREE", 6),
    ], []),
    "seed_threads": sum([
        op("MALLOC", 1, thread=1, args=[sz(48)]), op("MALLOC", 2, thread=1, args=[sz(48)]),
        op("MALLOC", 3, thread=2, args=[sz(4000)]), op("FREE", 1, thread=2),
        op("FREE", 3, thread=0), op("THREAD_EXIT", 0, thread=1), op("FREE", 2, thread=2),
        op("MALLOC", 4, thread=1, args=[sz(48)]), op("FREE", 4, thread=0),
    ], []),
    "seed_heap": sum([
        op("HEAP_NEW", obj=1), op("HEAP_MALLOC", 1, obj=1, args=[sz(32)]),
        op("HEAP_CALLOC", 2, obj=1, args=[sz(4), sz(100)]), op("HEAP_ALIGNED", 3, obj=1, args=[sz(64), align(8)]),
        op("REALLOC", 1, args=[sz(500)]), op("FREE", 2, thread=1), op("HEAP_RESET", obj=1),
        op("HEAP_MALLOC", 4, obj=1, args=[sz(16)]), op("HEAP_DESTROY", obj=1),
    ], []),
    "seed_arena": sum([
        op("ARENA_NEW", obj=0, args=[sz(4096), [0]]), op("ARENA_ALLOC", 1, obj=0, args=[sz(10), align(3)]),
        op("ARENA_MARK", obj=0), op("ARENA_ALLOC", 2, obj=0, args=[sz(5000), align(6)]),
        op("ARENA_ALLOC", 3, obj=0, args=[sz(70000), align(4)]), op("ARENA_REWIND", obj=0),
        op("ARENA_ALLOC", 4, obj=0, args=[sz(1), align(0)]), op("ARENA_RESET", obj=0),
        op("ARENA_NEW", obj=1, flags=3, args=[sz(8192), [0]]), op("ARENA_ALLOC", 5, obj=1, thread=1, args=[sz(100), align(4)]),
        op("ARENA_ALLOC", 6, obj=1, args=[sz(9000), align(4)]), op("ARENA_DESTROY", obj=1),
        op("ARENA_DESTROY", obj=0),
    ], []),
    "seed_pool": [K["POOL_NEW"], 2 << 4, 0, 48, 0, 4] + sum([
        op("POOL_ALLOC", 1, obj=2), op("POOL_ALLOC", 2, obj=2, thread=1), op("POOL_FREE", 1, thread=2),
        op("POOL_ALLOC", 3, obj=2), op("POOL_FREE", 2), op("POOL_DESTROY", obj=2),
    ], []),
}

def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(bytes(data))
    print("wrote %d seeds to %s" % (len(SEEDS), out))

if __name__ == "__main__":
    main()
