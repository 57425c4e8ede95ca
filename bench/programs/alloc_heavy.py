"""alloc_heavy.py RECORDS — an allocation-heavy Python program for bench/run.

Does what data-processing scripts do, in rounds of bounded size: builds
records (dicts of strings, numbers, lists and tuples), keeps some alive and
drops others at random (mixed lifetimes), formats, splits and joins strings,
groups records into an index, round-trips part of the data through JSON,
sorts and deduplicates.  bench/run runs it with PYTHONMALLOC=malloc so that
every object goes through the malloc under test (pymalloc would otherwise
serve objects up to 512 bytes itself).  Deterministic: the checksum it
prints is the same under every allocator.
"""
import json
import random
import sys


def make_record(rng, i):
    name = "user%06d" % rng.randrange(1_000_000)
    tags = [rng.choice(("red", "green", "blue", "amber", "violet")) + str(rng.randrange(50))
            for _ in range(rng.randrange(1, 8))]
    return {
        "id": i,
        "name": name,
        "email": name + "@example.org",
        "score": rng.random() * 100,
        "tags": tags,
        "point": (rng.randrange(1000), rng.randrange(1000)),
        "note": " ".join(rng.choice(("lorem", "ipsum", "dolor", "sit", "amet", "consectetur"))
                         for _ in range(rng.randrange(2, 30))),
    }


def main():
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(1)
    checksum = 0
    kept = []
    round_size = 10_000
    for start in range(0, records, round_size):
        batch = [make_record(rng, i) for i in range(start, min(records, start + round_size))]
        # Mixed lifetimes: a random third survives into later rounds, and old
        # survivors are dropped at random.
        kept.extend(r for r in batch if rng.random() < 0.33)
        if len(kept) > 20_000:
            rng.shuffle(kept)
            del kept[10_000:]
        index = {}
        for r in batch:
            for t in r["tags"]:
                index.setdefault(t, []).append(r["id"])
        lines = ["%d,%s,%s,%.3f,%s" % (r["id"], r["name"], r["email"], r["score"], "|".join(r["tags"]))
                 for r in batch]
        text = "\n".join(lines)
        fields = [line.split(",") for line in text.split("\n")]
        words = set()
        for r in batch:
            words.update(r["note"].split())
        blob = json.dumps(batch[:2000])
        back = json.loads(blob)
        ranked = sorted(batch, key=lambda r: (r["score"], r["name"]))
        checksum = (checksum * 31 + len(text) + len(index) + len(fields) + len(words)
                    + len(back) + ranked[0]["id"] + sum(len(v) for v in index.values())) % (1 << 61)
    checksum = (checksum + sum(r["id"] for r in kept)) % (1 << 61)
    print("alloc_heavy: records=%d kept=%d checksum=%d check=ok" % (records, len(kept), checksum))


if __name__ == "__main__":
    main()
