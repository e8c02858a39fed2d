"""classifier.search on synthetic vectors (no database, no model): exact search, the
approximate index (recall on clustered vectors, determinism, save/load) and near-duplicate
groups, exact and through the index."""

import numpy as np
import pytest

from classifier.search import (
    EXACT_DUPLICATES_MAX,
    AnnIndex,
    Vectors,
    duplicate_groups,
    exact_search,
    normalise,
    recall_at_k,
)


def clustered(n: int, dim: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit rows around `clusters` random centres (the shape of real embeddings, unlike
    uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((clusters, dim)))
    which = rng.integers(0, clusters, n)
    return normalise(centres[which] + 0.35 * normalise(rng.standard_normal((n, dim))))


def test_exact_search_is_the_brute_force_top_k() -> None:
    matrix = clustered(2000)
    query = matrix[17]
    scores, rows = exact_search(matrix, query, 10)
    expected = np.argsort(-(matrix @ query), kind="stable")[:10]
    assert rows[0] == 17
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert set(rows.tolist()) == set(expected.tolist())
    assert np.all(np.diff(scores) <= 0)
    assert len(exact_search(matrix, query, 5000)[1]) == 2000


def test_vectors_row_of() -> None:
    vectors = Vectors(np.array([3, 8, 20], np.int64), normalise(np.eye(3)))
    assert vectors.row_of(8) == 1
    assert vectors.row_of(9) is None
    assert vectors.row_of(99) is None
    assert len(vectors) == 3


def test_recall_at_k() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(np.array([[1, 2, 9, 9], [8, 7, 6, 5]]), exact) == pytest.approx(0.75)
    assert recall_at_k(np.array([[-1, -1, -1, -1]]), exact[:1]) == 0.0
    assert recall_at_k(np.array([1, 2]), np.array([2, 3])) == 0.5


def test_ann_index_recall_on_clustered_vectors(tmp_path) -> None:
    matrix = clustered(30_000)
    index = AnnIndex.build(matrix, seed=0)
    assert index.kind == f"IVF{index.nlist},SQ8"
    assert len(index) == 30_000
    assert index.memory_bytes < matrix.nbytes / 2  # 8-bit codes, not float32
    queries = matrix[np.random.default_rng(1).choice(len(matrix), 100, replace=False)]
    exact_rows = np.stack([exact_search(matrix, q, 50)[1] for q in queries])
    _, rows = index.search(queries, 50)
    assert rows.shape == (100, 50)
    recall = recall_at_k(rows, exact_rows)
    assert recall >= 0.95, recall
    # One query: 1-d answers, best first, the item itself on top.
    one_scores, one_rows = index.search(queries[0], 50)
    assert one_rows.shape == (50,)
    assert one_rows[0] == exact_rows[0][0]
    assert np.all(np.diff(one_scores) <= 1e-6)
    # Saved and loaded: the same answers, the same nprobe.
    index.save(tmp_path / "sub" / "x.faiss")
    loaded = AnnIndex.load(tmp_path / "sub" / "x.faiss")
    assert (loaded.kind, loaded.nprobe, len(loaded)) == (index.kind, index.nprobe, len(index))
    assert np.array_equal(loaded.search(queries, 50)[1], rows)
    assert not list((tmp_path / "sub").glob(".*tmp"))


def test_ann_index_is_deterministic_for_a_seed() -> None:
    matrix = clustered(8000, seed=3)
    queries = matrix[:20]
    first = AnnIndex.build(matrix, seed=5).search(queries, 10)[1]
    second = AnnIndex.build(matrix, seed=5).search(queries, 10)[1]
    assert np.array_equal(first, second)


def test_ann_index_takes_float16_and_small_inputs() -> None:
    matrix = clustered(300).astype(np.float16)
    index = AnnIndex.build(matrix)
    _, rows = index.search(matrix[4].astype(np.float32), 500)
    assert len(rows) <= 300
    assert rows[0] == 4
    with pytest.raises(ValueError, match="no vectors"):
        AnnIndex.build(np.zeros((0, 8), np.float32))


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """Clustered rows with planted groups: exact copies, near copies (cosine ≈ 0.995) and a
    chain a~b~c where a and c are further apart than the threshold."""
    rng = np.random.default_rng(seed)
    matrix = clustered(n, seed=seed)
    groups = [[10, 500, 900, 1500, 1999], [20, 21], [30, 700, 1200]]
    for g in groups[:2]:
        for m in g[1:]:
            matrix[m] = matrix[g[0]]
    base = matrix[30]
    step = normalise(rng.standard_normal(base.shape[0]) - (rng.standard_normal(1) * base))
    step -= (step @ base) * base
    step = normalise(step)
    for row, angle in ((700, 0.14), (1200, 0.28)):  # cosines 0.990 and 0.961 to row 30
        matrix[row] = np.cos(angle) * base + np.sin(angle) * step
    return matrix, sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))


def test_duplicate_groups_exact() -> None:
    matrix, groups = planted(2000)
    progress = []
    found = duplicate_groups(matrix, 0.97, progress=lambda d, t: progress.append((d, t)))
    assert [rows.tolist() for rows, _ in found] == groups  # largest first
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)
    # The chain: 30~700 (0.990), 700~1200 (0.990) joins 1200 though 30~1200 is 0.961.
    assert found[1][0].tolist() == [30, 700, 1200]
    assert found[1][1] == pytest.approx(np.cos(0.14), abs=1e-4)
    assert progress[-1] == (2000, 2000)
    # A threshold above the near copies keeps only the exact copies.
    strict = duplicate_groups(matrix, 0.999)
    assert [rows.tolist() for rows, _ in strict] == [groups[0], groups[2]]
    # Each row's nearest other row, as a brute-force product gives it.
    nearest = np.zeros(2000, np.float32)
    duplicate_groups(matrix, 0.999, nearest=nearest)
    products = matrix @ matrix.T
    np.fill_diagonal(products, -np.inf)
    assert nearest == pytest.approx(products.max(axis=1), abs=1e-5)
    assert duplicate_groups(matrix[:1], 0.97) == []
    assert duplicate_groups(clustered(500, seed=9), 0.99) == []


def test_duplicate_groups_through_the_index_match_exact() -> None:
    matrix, groups = planted(EXACT_DUPLICATES_MAX + 5000, seed=2)
    exact = duplicate_groups(matrix[:EXACT_DUPLICATES_MAX], 0.97)
    assert [rows.tolist() for rows, _ in exact] == groups
    progress = []
    approx = duplicate_groups(
        matrix, 0.97, neighbours=8, progress=lambda d, t: progress.append(d)
    )  # above EXACT_DUPLICATES_MAX: an index is built
    assert [rows.tolist() for rows, _ in approx] == groups
    nearest = np.zeros(len(matrix), np.float32)
    duplicate_groups(matrix, 0.97, neighbours=8, nearest=nearest)
    copied = np.concatenate([np.array(g) for g in groups])
    assert nearest[copied].min() >= 0.96  # approximate scores of the planted copies
    for (_, a_sim), (_, e_sim) in zip(approx, exact, strict=True):
        assert a_sim == pytest.approx(e_sim, abs=1e-5)  # rescored exactly
    assert progress[-1] == len(matrix)
    # A group larger than the neighbours asked for still joins through chains.
    many = matrix.copy()
    copies = list(range(100, 140))
    many[copies] = many[99]
    index = AnnIndex.build(many, seed=0)
    found = duplicate_groups(many, 0.97, index=index, neighbours=4)
    assert found[0][0].tolist() == [99, *copies]


def test_duplicate_groups_low_threshold_and_many_copies_exact() -> None:
    matrix = clustered(3000, seed=4)
    # At 0.5 nearly every pair of a cluster is linked: each row keeps its 16 nearest links, so
    # the scan stays small, and the groups are the clusters.
    groups = duplicate_groups(matrix, 0.5)
    assert sum(len(rows) for rows, _ in groups) == 3000
    assert all(sim >= 0.5 for _, sim in groups)
    copies = list(range(10, 60))
    matrix[copies] = matrix[9]
    found = duplicate_groups(matrix, 0.999, neighbours=4)
    assert [rows.tolist() for rows, _ in found] == [[9, *copies]]
