"""Benchmark: approximate search and near-duplicate scans over synthetic CLIP-like embeddings.

    .venv/bin/python benchmarks/search.py ann [--items 10000000] [--queries 100] [--json]
    .venv/bin/python benchmarks/search.py duplicates [--items 1000000] [--json]
    .venv/bin/python benchmarks/search.py api [...]   (benchmarks/search_api.py: the REST API)

No database, no Django: classifier.search only (numpy + faiss).

Vectors (`clustered`): 512-d, unit length, x = normalise(0.6·m + 0.6·c_k + spread), where m is
one direction shared by every item (CLIP image embeddings are far from centred: unrelated
images score well above 0), c_k the direction of cluster k out of N/1000 (10,000 at 10^7; sizes
Zipf-like, weight ∝ rank^-0.5), and the spread mostly in 64 directions shared by all clusters
(0.45·B·z, z Gaussian) plus a little isotropic noise (0.15·g): real embeddings have a low
intrinsic dimension. Two unrelated items score about 0.4, two of one cluster about 0.75, and an
item's nearest neighbours are clearly nearer than the rest of its cluster, but may lie in
other lists of the index than the query's (the spread directions are shared by all clusters):
the harder case for an inverted file. `--rank 0` spreads the items isotropically instead
(0.5·g): each cluster falls in one or two lists (easy for the inverted file), but within a
cluster every item is about as near as any other, so the 8-bit codes' rounding decides the
last places of the top 50. Generated in blocks of 100,000 from a seed, kept
as float16 like the cache, never all in memory at once: 10^7 x 512 float32 is 20 GB.

`ann`: builds the index (AnnIndex: IVF + 8-bit scalar quantisation) over all N items, streaming
blocks; records build time and index memory; picks `--queries` items at random as queries;
exact top-50 ground truth by streaming the blocks again (a running top-k per query); recall@50
and per-query latency (median, p95, one query at a time) at the chosen nprobe and over an
nprobe sweep. Baseline, same run, same data: exact numpy search of one query (float32
matrix-vector product and partial sort) over every block, summed over the blocks (the time the
exact path would take with all N rows in memory, which do not fit here).

`duplicates`: N clustered items with planted groups of near-copies (1,000 groups of 2 to 6
members: exact copies and copies with noise at cosine ≈ 0.99); times the index build and the
scan at 0.97 (duplicate_groups through the index) and the peak resident memory; checks that
every planted group comes back as one group and counts groups that were not planted.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.search import AnnIndex, duplicate_groups, exact_search, recall_at_k  # noqa: E402

DIM = 512
BLOCK = 100_000
K = 50
SWEEP = (8, 16, 32, 64, 128, 160, 192, 256)


class Clustered:
    """Deterministic clustered vectors: block b of the stream is the same for the same seed."""

    def __init__(self, n: int, *, seed: int = 0, dim: int = DIM, clusters: int = 0, rank: int = 64):
        self.n, self.seed, self.dim = n, seed, dim
        clusters = clusters or max(10, n // 1000)
        self.clusters = clusters
        rng = np.random.default_rng(seed)
        shared = rng.standard_normal(dim).astype(np.float32)
        self.shared = shared / np.linalg.norm(shared)
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        weights = np.arange(1, clusters + 1, dtype=np.float64) ** -0.5
        self.weights = weights / weights.sum()
        self.basis = None
        if rank:
            basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)).astype(np.float32))
            self.basis = np.ascontiguousarray(basis.T)

    @property
    def blocks(self) -> int:
        return (self.n + BLOCK - 1) // BLOCK

    def block(self, b: int) -> np.ndarray:
        count = min(BLOCK, self.n - b * BLOCK)
        rng = np.random.default_rng([self.seed, b])
        which = rng.choice(len(self.centres), size=count, p=self.weights)
        noise = rng.standard_normal((count, self.dim), dtype=np.float32)
        if self.basis is None:  # isotropic spread: every direction alike
            noise *= 0.5 / np.sqrt(self.dim)
        else:  # most of the spread in a few directions (low intrinsic dimension)
            noise *= 0.15 / np.sqrt(self.dim)
            latent = rng.standard_normal((count, len(self.basis)), dtype=np.float32)
            noise += (0.45 / np.sqrt(len(self.basis))) * (latent @ self.basis)
        noise += 0.6 * self.centres[which]
        noise += 0.6 * self.shared
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        return noise.astype(np.float16)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_ann(items: int, queries: int, seed: int, rank: int) -> dict:
    data = Clustered(items, seed=seed, rank=rank)
    started = time.perf_counter()
    nlist = AnnIndex.nlist_for(items)
    train_rows = min(items, 64 * nlist)
    parts, got = [], 0
    for b in range(data.blocks):
        if got >= train_rows:
            break
        part = data.block(b)[: train_rows - got]
        parts.append(part)
        got += len(part)
    index = AnnIndex.trained(np.concatenate(parts), n_total=items, seed=seed, nlist=nlist)
    del parts
    trained_s = time.perf_counter() - started
    gen_s = 0.0
    query_rows = np.sort(np.random.default_rng(seed + 1).choice(items, size=queries, replace=False))
    qvec = np.zeros((queries, DIM), np.float32)
    for b in range(data.blocks):
        t0 = time.perf_counter()
        block = data.block(b)
        gen_s += time.perf_counter() - t0
        index.add(block)
        inside = (query_rows >= b * BLOCK) & (query_rows < b * BLOCK + len(block))
        qvec[inside] = block[query_rows[inside] - b * BLOCK]
        print(f"  added {min(items, (b + 1) * BLOCK):,}/{items:,}", end="\r", file=sys.stderr)
    build_s = time.perf_counter() - started - gen_s
    print(file=sys.stderr)

    # Exact ground truth, one pass over the blocks; the exact baseline timed on each block.
    best_s = np.full((queries, K), -np.inf, np.float32)
    best_r = np.full((queries, K), -1, np.int64)
    exact_ms = np.zeros(queries)
    for b in range(data.blocks):
        block = data.block(b).astype(np.float32)
        for q in range(queries):
            t0 = time.perf_counter()
            s, r = exact_search(block, qvec[q], K)
            exact_ms[q] += (time.perf_counter() - t0) * 1000
            cs = np.concatenate([best_s[q], s])
            cr = np.concatenate([best_r[q], r + b * BLOCK])
            top = np.lexsort((cr, -cs))[:K]
            best_s[q], best_r[q] = cs[top], cr[top]
    # the exact path would also merge per-block top-k: negligible next to the products

    def timed(nprobe: int) -> dict:
        out: dict = {"nprobe": nprobe}
        # parallel_mode 0: one query on one thread; 1: its lists split over the threads.
        for mode, suffix in ((0, ""), (1, "_2threads")):
            index._index.parallel_mode = mode
            rows, lat = [], []
            index.search(qvec[0], K, nprobe=nprobe)  # warm
            for q in range(queries):
                t0 = time.perf_counter()
                _, r = index.search(qvec[q], K, nprobe=nprobe)
                lat.append((time.perf_counter() - t0) * 1000)
                rows.append(np.pad(r, (0, K - len(r)), constant_values=-1))
            out["recall_at_50"] = round(recall_at_k(np.array(rows), best_r), 4)
            out[f"median_ms{suffix}"] = round(statistics.median(lat), 2)
            out[f"p95_ms{suffix}"] = round(percentile(lat, 0.95), 2)
        index._index.parallel_mode = 0
        return out

    sweep = [timed(p) for p in SWEEP if p <= index.nlist]
    chosen = timed(index.nprobe)
    exact = {
        "median_ms": round(float(np.median(exact_ms)), 1),
        "p95_ms": round(float(percentile(list(exact_ms), 0.95)), 1),
    }
    return {
        "benchmark": "ann",
        "items": items,
        "dim": DIM,
        "vectors": (
            f"clustered: {data.clusters} clusters, Zipf-like sizes, shared direction, "
            + (f"spread in {rank} directions" if rank else "isotropic spread")
            + ", float16"
        ),
        "queries": queries,
        "kind": index.kind,
        "nprobe": index.nprobe,
        "train_seconds": round(trained_s, 1),
        "build_seconds": round(build_s, 1),
        "generate_seconds_excluded": round(gen_s, 1),
        "index_memory_mb": round(index.memory_bytes / 2**20, 1),
        "float32_matrix_mb": round(items * DIM * 4 / 2**20, 1),
        "chosen": chosen,
        "sweep": sweep,
        "exact_numpy_per_query": exact,
        "speedup_p95": round(exact["p95_ms"] / max(chosen["p95_ms"], 1e-6), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": int(os.cpu_count() or 1),
    }


def run_duplicates(items: int, seed: int, min_similarity: float) -> dict:
    data = Clustered(items, seed=seed)
    matrix = np.empty((items, DIM), np.float16)
    for b in range(data.blocks):
        matrix[b * BLOCK : b * BLOCK + BLOCK] = data.block(b)
    rng = np.random.default_rng(seed + 2)
    planted: list[np.ndarray] = []
    rows = rng.permutation(items)
    used = 0
    for g in range(1000):
        size = 2 + g % 5
        members = rows[used : used + size]
        used += size
        source = matrix[members[0]].astype(np.float32)
        for m in members[1:]:
            if g % 2:  # a byte-identical repost
                matrix[m] = source.astype(np.float16)
            else:  # a re-encoded, slightly cropped repost
                noisy = source + rng.standard_normal(DIM).astype(np.float32) * (0.1 / np.sqrt(DIM))
                matrix[m] = (noisy / np.linalg.norm(noisy)).astype(np.float16)
        planted.append(np.sort(members))
    # The scan works on float32 rows, as the search worker holds them.
    matrix32 = matrix.astype(np.float32)
    del matrix
    t0 = time.perf_counter()
    index = AnnIndex.build(matrix32, seed=seed)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    groups = duplicate_groups(matrix32, min_similarity, index=index)
    scan_s = time.perf_counter() - t0
    found = {int(rows_[0]): rows_ for rows_, _ in groups}
    whole = sum(1 for p in planted if int(p[0]) in found and np.array_equal(found[int(p[0])], p))
    planted_firsts = {int(p[0]) for p in planted}
    extra = sum(1 for first in found if first not in planted_firsts)
    return {
        "benchmark": "duplicates",
        "items": items,
        "min_similarity": min_similarity,
        "kind": index.kind,
        "planted_groups": len(planted),
        "planted_found_exactly": whole,
        "other_groups": extra,
        "groups": len(groups),
        "index_build_seconds": round(build_s, 1),
        "scan_seconds": round(scan_s, 1),
        "total_minutes": round((build_s + scan_s) / 60, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "float32_matrix_mb": round(items * DIM * 4 / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=["ann", "duplicates", "api"])
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--min-similarity", type=float, default=0.97)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rank", type=int, default=64, help="spread directions per item; 0 = isotropic noise"
    )
    parser.add_argument("--json", action="store_true")
    args, rest = parser.parse_known_args(argv)
    if args.which == "api":
        try:
            from benchmarks import search_api
        except ImportError:
            print("benchmarks/search_api.py is not there", file=sys.stderr)
            return 1
        return search_api.main(rest) or 0
    if args.which == "ann":
        result = run_ann(args.items or 10_000_000, args.queries, args.seed, args.rank)
    else:
        result = run_duplicates(args.items or 1_000_000, args.seed, args.min_similarity)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if key == "sweep":
                print("sweep (nprobe, recall@50, median ms, p95 ms; two threads: median, p95):")
                for row in value:
                    print(
                        f"  {row['nprobe']:>4}  {row['recall_at_50']:.4f}  "
                        f"{row['median_ms']:>7}  {row['p95_ms']:>7}  "
                        f"{row['median_ms_2threads']:>7}  {row['p95_ms_2threads']:>7}"
                    )
            else:
                print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
