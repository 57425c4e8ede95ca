"""catalog.py — what bench/run measures: the allocators and THE workload
table (the one list of what runs).  bench/run does the building, running
and measuring; bench/report.py the tables, Markdown and chart."""
import dataclasses

# --------------------------------------------------------------------------
# The allocators.  `sonames`: the library files to look for; `package`: the
# Debian package that ships them.  Kiln's library comes from our own build.
# --------------------------------------------------------------------------
@dataclasses.dataclass
class Allocator:
    name: str
    package: str | None
    sonames: tuple
    color: str                      # for the chart
    path: str | None = None         # the library to preload (None: glibc, none)
    env: dict = dataclasses.field(default_factory=dict)  # e.g. Kiln's modes


# kiln-check and kiln-secure are Kiln in its checking and hardened modes
# (issue 5 wants their cost in this table); they are not peers.
ALLOCATORS = [
    Allocator("glibc", "libc6", (), "#8c8c8c"),
    Allocator("jemalloc", "libjemalloc2", ("libjemalloc.so.2", "libjemalloc.so"), "#3b75af"),
    Allocator("tcmalloc", "libtcmalloc-minimal4", ("libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so"), "#4e9a3d"),
    Allocator("mimalloc", "libmimalloc2.0", ("libmimalloc.so.2", "libmimalloc.so"), "#ef8a17"),
    Allocator("kiln", None, ("libkiln.so",), "#c0282d"),
    Allocator("kiln-secure", None, ("libkiln.so",), "#e07b7e", env={"KILN_SECURE": "1"}),
    Allocator("kiln-check", None, ("libkiln.so",), "#f2b8ba", env={"KILN_CHECK": "1"}),
]
PEERS = ("glibc", "jemalloc", "tcmalloc", "mimalloc")  # what Kiln's targets compare with
REFERENCES = ("mimalloc", "glibc")   # the ratio columns, in this order
MODE_TARGETS = {"kiln-secure": 1.10, "kiln-check": 3.0}  # issue 5: geomean time x the fast mode


# --------------------------------------------------------------------------
# THE workload table: the one list of what runs.  `binary` and the arguments
# are templates:
#   {bin}        the bench build's workloads/ folder (our C workloads)
#   {src}        bench/ itself (scripts under programs/)
#   {threads}    --threads (default 2);  {pairs}: max(1, threads / 2)
#   {lines:N}    a generated text of N lines of words (cached, deterministic)
#   {csource:N}  a generated C file of N functions (cached, deterministic)
# driver "redis": `binary` is the server, run under the allocator on a free
# loopback port; the arguments are redis-benchmark's, which runs as a plain
# client; time is the client's wall time, CPU and RSS are the server's.
# --------------------------------------------------------------------------
@dataclasses.dataclass
class Workload:
    name: str
    binary: str
    quick: str
    full: str
    about: str
    driver: str = "plain"
    env: dict = dataclasses.field(default_factory=dict)
    packages: tuple = ()            # Debian packages the program needs
    in_time_mean: bool = True       # False: its time is mostly waiting
    scaling_of: str | None = None   # the 1-thread workload this one scales


W = Workload
WORKLOADS = [
    #  name             binary                quick args                       full args
    W("larson",         "{bin}/larson",        "{threads} 4 50000 1000 8 1000", "{threads} 20 400000 2000 8 1000",
      "server simulation: threads replace random blocks of 8-1000 B; blocks outlive their thread"),
    W("xmalloc",        "{bin}/xmalloc",       "{pairs} 5000 100 16 512",       "{pairs} 50000 100 16 512",
      "producer/consumer pairs: one thread allocates, the other frees"),
    W("cache-scratch",  "{bin}/cache-scratch", "{threads} 100 8 20000",         "{threads} 1000 8 50000",
      "passive false sharing: threads reuse small blocks freed from the main thread"),
    W("cache-thrash",   "{bin}/cache-thrash",  "{threads} 100 8 20000",         "{threads} 1000 8 50000",
      "active false sharing: threads allocate and write small blocks concurrently"),
    W("mstress",        "{bin}/mstress",       "{threads} 4 25000 4000",        "{threads} 20 200000 4000",
      "16 B-64 KiB, mixed lifetimes, cross-thread frees, threads come and go"),
    W("simple",         "{bin}/simple",        "1 100 1000",                    "1 1000 1000",
      "tight malloc/free loops, 16-1024 B, one thread"),
    W("simple-mt",      "{bin}/simple",        "{threads} 100 1000",            "{threads} 1000 1000",
      "the same loops on every thread (same work per thread)", scaling_of="simple"),
    W("realloc",        "{bin}/realloc-growth", "{threads} 100000 256 1048576", "{threads} 1000000 256 1048576",
      "buffers grown by realloc, 256 B-1 MiB"),
    W("large-blocks",   "{bin}/large-blocks",  "{threads} 30 4 1 32",           "{threads} 150 4 1 32",
      "1-32 MiB blocks, every page touched"),
    W("memory-return",  "{bin}/memory-return", "256 256 1000 64",               "1024 256 1000 64",
      "1 GiB (quick: 256 MiB) in 256 KiB blocks, freed; RSS after 1 s", in_time_mean=False),
    W("redis",          "redis-server",
      "-n 5000 -c 20 -d 64 -r 10000 -t set,get,incr,lpush,lpop,sadd,hset,mset",
      "-n 25000 -c 50 -d 256 -r 100000 -t set,get,incr,lpush,lpop,sadd,hset,mset",
      "redis-server driven by redis-benchmark on loopback", driver="redis",
      packages=("redis-server", "redis-tools")),
    W("python",         "python3",             "{src}/programs/alloc_heavy.py 5000", "{src}/programs/alloc_heavy.py 40000",
      "python3 building dicts, lists, strings (PYTHONMALLOC=malloc)",
      env={"PYTHONMALLOC": "malloc"}, packages=("python3",)),
    W("gcc",            "gcc",                 "-O1 -w -c -o /dev/null {csource:40}", "-O1 -w -c -o /dev/null {csource:300}",
      "gcc -O1 compiling a generated C file", packages=("gcc",)),
    W("sort",           "sort",                "-o /dev/null {lines:100000}",   "-o /dev/null {lines:1000000}",
      "GNU sort of a generated text", env={"LC_ALL": "C"}, packages=("coreutils",)),
    W("perl",           "perl",                "{src}/programs/wordfreq.pl {lines:30000}", "{src}/programs/wordfreq.pl {lines:300000}",
      "perl counting words and bigrams", packages=("perl",)),
]
del W
