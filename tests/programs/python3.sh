#!/bin/bash
# python3 under Kiln: JSON, dicts, sorting, regular expressions, big buffers.
. "$(dirname "$0")/common.sh"
require python3
python3 -c 'pass' 2>/dev/null || { echo "SKIP: python3 does not run"; exit 77; }

workload() {
  python3 - <<'PY'
import collections, hashlib, json, random, re
random.seed(42)
data = [{"id": i, "name": "item%d" % i, "tags": [random.randrange(1000) for _ in range(random.randrange(20))]}
        for i in range(15000)]
text = json.dumps(data, sort_keys=True)
print(len(text), hashlib.sha256(text.encode()).hexdigest())
back = json.loads(text)
assert back == data
counts = collections.Counter(t for d in back for t in d["tags"])
print(sorted(counts.most_common(5)))
words = re.findall(r"item\d+7\b", text)
print(len(words), sorted(set(words))[:3])
big = bytearray(30_000_000)
big[-1] = 7
print(sum(big[-10:]), len(bytes(big[:1000]) * 1000))
strings = [str(i) * (i % 40) for i in range(60000)]
strings.sort()
print(strings[30000][:20], len("".join(strings)))
d = {}
for i in range(80000):
    d[i] = [i] * (i % 5)
for i in range(0, 80000, 2):
    del d[i]
print(len(d), sum(len(v) for v in d.values()))
PY
}
run_workload
