"""Nearest neighbours over cached image embeddings (docs/architecture.md#search).

numpy for exact search; faiss (imported lazily) for the approximate index over large caches
and for near-duplicate scans. No Django, no torch: a search worker keeps `Vectors` in memory
and calls these functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Vectors:
    """One embedding cache in memory: item ids (int64, sorted) and their L2-normalised image
    embeddings as float32 rows (C-contiguous), row i belonging to item_ids[i]."""

    item_ids: np.ndarray
    matrix: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def row_of(self, item_id: int) -> int | None:
        i = int(np.searchsorted(self.item_ids, item_id))
        return i if i < len(self.item_ids) and self.item_ids[i] == item_id else None


def normalise(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (a zero row stays zero)."""
    out = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def exact_search(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows by cosine similarity to one normalised query vector: (scores, rows), best
    first. One float32 matrix-vector product (BLAS) and a partial sort."""
    scores = matrix @ np.asarray(query, np.float32).reshape(-1)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]  # score descending, then row: deterministic
    return scores[top], top.astype(np.int64)


def recall_at_k(approx_rows: np.ndarray, exact_rows: np.ndarray) -> float:
    """Mean over queries of |approximate top-k ∩ exact top-k| / |exact top-k|. Both arguments are
    row arrays of one query (k,) or of many (Q, k); -1 (no result) never counts as a hit."""
    approx = np.atleast_2d(np.asarray(approx_rows))
    exact = np.atleast_2d(np.asarray(exact_rows))
    hits = [
        len(np.intersect1d(a[a >= 0], e[e >= 0])) / max(1, int((e >= 0).sum()))
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else 1.0


def _as_float32_rows(block: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(block, dtype=np.float32)


class AnnIndex:
    """An inverted-file index with 8-bit scalar quantisation (faiss `IVF{nlist},SQ8`, inner
    product on normalised rows): a quarter of the float32 memory, and a query scans only the
    `nprobe` closest lists. Rows returned index the matrix the index was built from (rows are
    added in order). Deterministic for one seed: the k-means training sample and faiss's
    k-means initialisation both come from it."""

    # nprobe as a share of nlist: 192 of 4,096 lists at 10M items. Measured on clustered
    # vectors (benchmarks/search.py ann, 10M x 512, two cores): recall@50 0.976 against exact
    # at p95 78 ms a query (128 lists: 0.935; 256: 0.989 at 111 ms).
    NPROBE_SHARE = 3 / 64

    def __init__(self, index, *, nprobe: int) -> None:
        self._index = index
        self.nprobe = int(nprobe)

    # -- construction --------------------------------------------------------------------------

    @staticmethod
    def nlist_for(n: int) -> int:
        """About 4·sqrt(N) lists, at least 1, at most 4096 (training and assignment cost grow
        with nlist; 4096 keeps a 10M build near ten minutes on two cores)."""
        return int(max(1, min(4096, round(4 * np.sqrt(max(n, 1))))))

    @classmethod
    def trained(
        cls,
        sample: np.ndarray,
        *,
        n_total: int,
        seed: int = 0,
        nlist: int | None = None,
        nprobe: int | None = None,
    ) -> AnnIndex:
        """An empty index trained on `sample` (normalised rows) for about `n_total` items; fill
        it with `add` (a caller streaming a large cache builds this way)."""
        import faiss

        sample = _as_float32_rows(sample)
        dim = sample.shape[1]
        nlist = min(nlist or cls.nlist_for(n_total), max(1, len(sample) // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = int(seed)
        index.cp.niter = 10
        index.cp.max_points_per_centroid = 64
        index.train(sample)
        if nprobe is None:
            nprobe = max(1, min(nlist, int(np.ceil(nlist * cls.NPROBE_SHARE)), 256))
            nprobe = max(nprobe, min(nlist, 8))
        return cls(index, nprobe=nprobe)

    @classmethod
    def build(
        cls,
        matrix: np.ndarray,
        *,
        seed: int = 0,
        nlist: int | None = None,
        nprobe: int | None = None,
        train_size: int | None = None,
        block: int = 65536,
        progress=None,
    ) -> AnnIndex:
        """Train on a seeded sample of the rows (64 per list by default) and add every row,
        converting `block` rows at a time to float32 (the matrix may be float16)."""
        n = len(matrix)
        if n == 0:
            raise ValueError("no vectors to index")
        nl = nlist or cls.nlist_for(n)
        size = min(n, train_size or 64 * nl)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
        index = cls.trained(matrix[pick], n_total=n, seed=seed, nlist=nl, nprobe=nprobe)
        for start in range(0, n, block):
            index.add(matrix[start : start + block])
            if progress is not None:
                progress(min(n, start + block), n)
        return index

    def add(self, rows: np.ndarray) -> None:
        self._index.add(_as_float32_rows(rows))

    # -- use -----------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return f"IVF{self._index.nlist},SQ8"

    @property
    def nlist(self) -> int:
        return int(self._index.nlist)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Codes and row ids in the inverted lists, plus the centroids and quantiser ranges."""
        ix = self._index
        return int(ix.ntotal * (ix.code_size + 8) + ix.nlist * ix.d * 4 + 2 * ix.d * 4)

    def search(
        self, query: np.ndarray, k: int, *, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k by inner product: for one query (D,) → (scores (k,), rows (k,));
        for many (Q, D) → (Q, k) each. Missing results (fewer than k reachable) are dropped
        for one query and left as row -1 for many."""
        q = np.asarray(query, np.float32)
        single = q.ndim == 1
        q = np.ascontiguousarray(q.reshape(1, -1) if single else q)
        k = max(0, min(int(k), len(self)))
        if k == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        self._index.nprobe = int(nprobe or self.nprobe)
        scores, rows = self._index.search(q, k)
        if single:
            keep = rows[0] >= 0
            return scores[0][keep], rows[0][keep].astype(np.int64)
        return scores, rows.astype(np.int64)

    def save(self, path) -> None:
        """Write atomically (temp file + rename). The file keeps the index's nprobe."""
        import os
        from pathlib import Path

        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._index.nprobe = self.nprobe
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> AnnIndex:
        import faiss

        index: Any = faiss.read_index(str(path))
        return cls(index, nprobe=int(index.nprobe))


# -- near-duplicates (docs/architecture.md#near-duplicates) -------------------------------------

EXACT_DUPLICATES_MAX = 20_000  # below this, all pairs by blocked matrix products


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _groups_from_edges(
    n: int, left: np.ndarray, right: np.ndarray, sims: np.ndarray
) -> list[tuple[np.ndarray, float]]:
    """Connected components over the edges (single linkage); a group's similarity is the lowest
    cosine among the edges of its spanning forest (the weakest link that joined it). Largest
    groups first, then by their first row."""
    if len(left) == 0:
        return []
    order = np.argsort(-sims, kind="stable")  # Kruskal: strongest edges first
    uf = _UnionFind(n)
    weakest: dict[int, float] = {}
    for e in order:
        a, b = int(left[e]), int(right[e])
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        low = min(float(sims[e]), weakest.pop(ra, 1.0), weakest.pop(rb, 1.0))
        uf.union(ra, rb)
        weakest[uf.find(ra)] = low
    members = np.unique(np.concatenate([left, right]))
    roots = np.array([uf.find(int(m)) for m in members], np.int64)
    out = []
    for root in np.unique(roots):
        rows = np.sort(members[roots == root])
        if len(rows) >= 2:
            out.append((rows, float(min(1.0, weakest[int(root)]))))
    out.sort(key=lambda g: (-len(g[0]), int(g[0][0])))
    return out


def duplicate_groups(
    matrix: np.ndarray,
    min_similarity: float,
    *,
    index: AnnIndex | None = None,
    neighbours: int = 16,
    progress=None,
    block: int = 4096,
    nprobe: int = 8,
    nearest: np.ndarray | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Groups of rows whose embeddings are linked by cosine ≥ `min_similarity` (connected
    components, so a chain a~b~c is one group): [(rows, lowest linking cosine)], groups of two
    or more, largest first.

    Links are each row's `neighbours` most similar rows at or above the threshold (a low
    threshold must not make every pair an edge). Up to EXACT_DUPLICATES_MAX rows (and no index
    given), found by comparing every pair (blocked float32 matrix products). Above: through the
    approximate index (built here if not given), each candidate pair rescored exactly from the
    matrix, so similarities are exact and only a pair the index misses can be lost. A group
    of more than `neighbours` copies still joins through chains. A near-copy sits next to its
    original, so a few lists (`nprobe`, default 8) suffice where a top-50 search needs more.
    `progress(done, total)` is called after each block of rows. `nearest` (float32 [n], if
    given) receives each row's highest cosine to another row (through the index: its best
    approximate score), which says how close this model puts distinct images."""
    n = len(matrix)
    threshold = float(min_similarity)
    lefts: list[np.ndarray] = []
    rights: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    if n < 2:
        return []
    if index is None and n <= EXACT_DUPLICATES_MAX:
        full = _as_float32_rows(matrix)
        k = min(neighbours, n - 1)
        rows_per_block = max(64, min(block, 25_000_000 // n))  # a block of scores ≤ 100 MB
        for start in range(0, n, rows_per_block):
            part = full[start : start + rows_per_block] @ full.T
            own = np.arange(len(part))
            part[own, own + start] = -np.inf  # not its own neighbour
            # Each row's k most similar rows (a low threshold must not make every pair an
            # edge: components of this k-nearest graph are the groups, as with the index).
            cand = np.argpartition(-part, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(part, cand, axis=1)
            if nearest is not None:
                nearest[start : start + len(part)] = scores.max(axis=1)
            hit, col = np.nonzero(scores >= threshold)
            b = cand[hit, col]
            a = hit + start
            lefts.append(np.minimum(a, b))
            rights.append(np.maximum(a, b))
            sims.append(scores[hit, col])
            if progress is not None:
                progress(min(n, start + rows_per_block), n)
    else:
        if index is None:
            index = AnnIndex.build(matrix)
        k = min(n, neighbours + 1)
        # The SQ8 codes perturb scores by ~1e-3; keep candidates a little under the threshold
        # and decide on the exact cosine.
        slack = 0.01
        for start in range(0, n, block):
            rows_q = _as_float32_rows(matrix[start : start + block])
            approx, cand = index.search(rows_q, k, nprobe=min(nprobe, index.nlist))
            qi = np.repeat(np.arange(start, start + len(rows_q)), k).reshape(len(rows_q), k)
            others = (cand >= 0) & (cand != qi)
            if nearest is not None:
                nearest[start : start + len(rows_q)] = np.where(others, approx, -1.0).max(axis=1)
            mask = others & (approx >= threshold - slack)
            a, b = np.minimum(qi[mask], cand[mask]), np.maximum(qi[mask], cand[mask])
            if len(a):
                exact = np.einsum(
                    "ij,ij->i", _as_float32_rows(matrix[a]), _as_float32_rows(matrix[b])
                )
                keep = exact >= threshold
                lefts.append(a[keep])
                rights.append(b[keep])
                sims.append(exact[keep])
            if progress is not None:
                progress(min(n, start + block), n)
    if not lefts:
        return []
    return _groups_from_edges(
        n, np.concatenate(lefts), np.concatenate(rights), np.concatenate(sims).astype(np.float64)
    )
