"""classifier.probe on synthetic embeddings, no Django (docs/architecture.md#probe): an
untrained probe is zero-shot, the fit is deterministic, folds group an item's examples and a
fold's head does not depend on its own fold, the caption tower gets its own head, and the
refusals."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from classifier import engine, probe

pytestmark = pytest.mark.torch

D, K, SCALE = 16, 5, 20.0
FAST = {"folds": 3, "max_iter": 30}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Problems this small run several times faster without torch's thread pool on a busy
    machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def world(n: int = 60, seed: int = 0, captions: bool = False):
    """n items of K classes around their own means, label prompts unrelated to the classes
    (zero-shot near chance), and one positive example per item (its true class)."""
    rng = np.random.default_rng(seed)
    means = unit(rng.normal(size=(K, D)))
    truth = np.arange(n) % K
    image = unit(means[truth] + 0.4 * rng.normal(size=(n, D)))
    features = probe.Features(image=image)
    if captions:
        caption = unit(means[truth][:, ::-1] + 0.4 * rng.normal(size=(n, D)))
        has = rng.random(n) < 0.8
        features = probe.Features(image=image, caption=caption, has_caption=has)
    zero_shot = probe.Head.zero_shot(unit(rng.normal(size=(K, D))), SCALE)
    examples = probe.Examples(np.arange(n), truth, np.ones(n, bool))
    basis = probe.basis_from(image if not captions else np.concatenate([image, caption]))
    return features, examples, zero_shot, basis, truth


def top(features, head, ensemble: probe.Ensemble | None = None) -> np.ndarray:
    return probe.probabilities(features, head, ensemble or probe.Ensemble()).argmax(axis=1)


def full_scores(scores: engine.Scores) -> np.ndarray:
    """The [n, K] probabilities back from a top-K engine.score."""
    p = np.zeros(scores.top_probs.shape, np.float64)
    np.put_along_axis(p, scores.top_labels, scores.top_probs, axis=1)
    return p


@pytest.mark.parametrize("mode", ["image", "weighted", "conditional"])
def test_the_zero_shot_head_scores_as_the_engine_does(mode) -> None:
    features, _, zero_shot, _, _ = world(captions=True)
    labels = zero_shot.weight / SCALE
    ensemble = probe.Ensemble(mode, 0.6, 0.4, 0.3)
    scores = engine.score(
        features.image, labels, SCALE, caption_features=features.caption,
        has_caption=features.has_caption, mode=mode, w_img=0.6, w_txt=0.4, tau=0.3, k=K,
    )  # fmt: skip
    mine = probe.probabilities(features, zero_shot, ensemble)
    np.testing.assert_allclose(mine, full_scores(scores), atol=1e-5)


def test_a_probe_allowed_no_change_is_zero_shot() -> None:
    features, examples, zero_shot, basis, _ = world()
    fitted = probe.fit(
        features, examples, zero_shot, probe.Ensemble(), basis, alphas=(0.0,), **FAST
    )
    assert fitted.alpha == 0.0
    assert fitted.fold_alphas == [0.0] * 3
    for head in [fitted.head, *fitted.fold_heads]:
        np.testing.assert_array_equal(head.weight, zero_shot.weight)
        np.testing.assert_array_equal(head.bias, np.zeros(K))
    expected = probe.probabilities(features, zero_shot, probe.Ensemble())
    np.testing.assert_allclose(fitted.cross_fitted, expected, atol=1e-6)
    assert fitted.trainings == 1 + 3 + 3


def test_a_probe_learns_and_its_cross_fitted_figure_is_below_the_leaky_one() -> None:
    """Held-out (cross-fitted) accuracy is well above zero-shot's and below the in-sample
    accuracy of the head trained on everything (measured: zero-shot ~0.2, cross-fitted
    ~0.6 with 3 folds and 30 iterations, in-sample 1.0 on 60 items)."""
    features, examples, zero_shot, basis, truth = world()
    fitted = probe.fit(features, examples, zero_shot, probe.Ensemble(), basis, **FAST)
    zero = (top(features, zero_shot) == truth).mean()
    crossed = (fitted.cross_fitted.argmax(axis=1) == truth).mean()
    leaky = (top(features, fitted.head) == truth).mean()
    assert crossed >= zero + 0.25, (zero, crossed)
    assert leaky > crossed, (leaky, crossed)
    assert fitted.alpha > 0


def test_the_fit_is_deterministic_from_its_seed() -> None:
    features, examples, zero_shot, basis, _ = world()
    a, b, c = (
        probe.fit(features, examples, zero_shot, probe.Ensemble(), basis, seed=seed, **FAST)
        for seed in (7, 7, 8)
    )
    np.testing.assert_array_equal(a.fold_of, b.fold_of)
    np.testing.assert_array_equal(a.head.weight, b.head.weight)
    np.testing.assert_array_equal(a.head.bias, b.head.bias)
    np.testing.assert_array_equal(a.cross_fitted, b.cross_fitted)
    assert (a.alpha, a.fold_alphas) == (b.alpha, b.fold_alphas)
    assert not np.array_equal(a.fold_of, c.fold_of)


def test_folds_group_an_items_examples_and_a_fold_head_ignores_its_fold() -> None:
    """Folds are dealt per item (sizes differ by at most one), so all of an item's examples
    fall in its fold; a fold's items are predicted by its own head; and rewriting a fold's
    examples leaves that fold's head and its predictions exactly unchanged (no fit behind it
    saw the fold: not its warm start, not its active labels), while the other heads move."""
    features, examples, zero_shot, basis, _truth = world(n=45)
    # Each item also says "not" the label after its own: two examples per item.
    both = probe.Examples(
        np.concatenate([examples.item, examples.item]),
        np.concatenate([examples.label, (examples.label + 1) % K]),
        np.concatenate([examples.positive, ~examples.positive]),
    )
    fold_of = probe.fold_assignment(45, 4, seed=3)
    assert sorted(np.bincount(fold_of)) == [11, 11, 11, 12]
    options = {"folds": 4, "seed": 3, "max_iter": 30}
    a = probe.fit(features, both, zero_shot, probe.Ensemble(), basis, **options)
    np.testing.assert_array_equal(a.fold_of, fold_of)
    for f, head in enumerate(a.fold_heads):
        rows = np.flatnonzero(fold_of == f)
        np.testing.assert_allclose(
            a.cross_fitted[rows], probe.probabilities(features.take(rows), head, probe.Ensemble())
        )
    # Fold 0's items now claim the wrong class.
    moved = both.label.copy()
    in_zero = fold_of[both.item] == 0
    moved[in_zero] = (moved[in_zero] + 2) % K
    b = probe.fit(
        features, probe.Examples(both.item, moved, both.positive), zero_shot,
        probe.Ensemble(), basis, **options,
    )  # fmt: skip
    change = [
        np.abs(x.weight - y.weight).max() for x, y in zip(a.fold_heads, b.fold_heads, strict=True)
    ]
    assert change[0] == 0, change
    assert min(change[1:]) > 0.05, change
    zero = np.flatnonzero(fold_of == 0)
    np.testing.assert_array_equal(
        a.cross_fitted[zero].argmax(axis=1), b.cross_fitted[zero].argmax(axis=1)
    )


def test_the_caption_tower_gets_a_head_of_its_own() -> None:
    """With a mixing ensemble the caption rows are trained apart from the image rows; items
    without a caption are scored by the image head alone."""
    features, examples, zero_shot, basis, truth = world(captions=True)
    weighted = probe.Ensemble("weighted", 0.5, 0.5)
    fitted = probe.fit(features, examples, zero_shot, weighted, basis, **FAST)
    head = fitted.head
    assert head.caption_weight is not None
    assert head.caption_bias is not None
    assert not np.allclose(head.caption_weight, head.weight)
    assert head.for_captions[0] is head.caption_weight
    p = probe.probabilities(features, head, weighted)
    alone = ~features.has_caption
    np.testing.assert_allclose(
        p[alone], probe.probabilities(features.take(alone), head, probe.Ensemble())[:], atol=1e-6
    )
    assert (p.argmax(axis=1) == truth).mean() > (top(features, zero_shot, weighted) == truth).mean()
    image_only = probe.fit(features, examples, zero_shot, probe.Ensemble(), basis, **FAST)
    assert image_only.head.caption_weight is None


def test_alpha_ties_go_to_the_smaller_alpha() -> None:
    """A change that changes nothing scores the same at every α: the smallest wins (no
    evidence, no change), whatever order the candidates come in."""
    features, examples, zero_shot, basis, _ = world(n=20)
    problem = probe._Problem(features, zero_shot, basis, probe.Ensemble())
    nothing = problem.train(probe.Examples([], [], []), l2=0.01, max_iter=5)
    assert len(nothing.active) == 0
    assert all(t.numel() == 0 for t in nothing.params)
    for alphas in (probe.ALPHAS, tuple(reversed(probe.ALPHAS)), (0.7, 0.3, 0.5)):
        chosen, scores = probe._choose_alpha(problem, [(nothing, examples)], alphas)
        assert chosen == min(alphas)
        assert len(set(scores.values())) == 1


def test_refusals() -> None:
    features, examples, zero_shot, basis, _ = world(n=10)
    ensemble = probe.Ensemble()
    with pytest.raises(probe.ProbeError, match="at least 3"):
        probe.fit(features, examples, zero_shot, ensemble, basis, folds=2)
    with pytest.raises(probe.ProbeError, match="cannot fill"):
        probe.fit(features.take(np.arange(4)), examples.where(examples.item < 4), zero_shot,
                  ensemble, basis, folds=5)  # fmt: skip
    with pytest.raises(probe.ProbeError, match="no examples"):
        probe.fit(features, probe.Examples([], [], []), zero_shot, ensemble, basis)
    with pytest.raises(probe.ProbeError, match="outside"):
        probe.fit(features, probe.Examples([10], [0], [True]), zero_shot, ensemble, basis)
    with pytest.raises(probe.ProbeError, match="unknown ensemble"):
        probe.Ensemble("average")
    with pytest.raises(probe.ProbeError, match="two embeddings"):
        probe.basis_from(features.image[:1])
