"""The probe: a linear head learned from verdicts over a run's cached CLIP embeddings
(docs/architecture.md#probe). numpy and torch only, no Django: `annotate.validation.probing`
turns verdicts into `Examples`, calls `fit`, and stores what it returns as a run.

The head gives logits z_k(x) = W_k·x + b_k over an L2-normalised embedding x. The zero-shot
head is W = s·T (the label prompt embeddings times the logit scale), b = 0, so an untrained
probe IS the zero-shot classifier; probabilities are softmax(z), mixed over the image and
caption towers exactly as the parent run's ensemble mixes them.

A fit moves only the rows of labels that its own examples name ("active" labels), and only
within a `basis`: the leading principal directions of the dataset's own embeddings, whitened
(found without any verdict, so it leaks nothing). That keeps a fit over 10,000 verdicts and
365 labels around a second on two CPU cores, which nested cross-validation needs 16 times:

    W = W0 + scatter_active(A · basisᵀ),  b = scatter_active(c)

Loss, averaged over examples: a confirmed or corrected label is a positive (-log p_label); a
plain miss says only "not this label" (-log(1 - p_label)); plus l2/2·(|A|² + |c|²), the pull
toward the zero-shot head. The stored head is α·trained + (1-α)·zero-shot.

Honesty (cross-fitting): verdict items are split into k folds (grouped by item: an item's
examples share its fold). Fold f's items are predicted by a head trained without fold f,
whose α was chosen by an inner cross-validation that never saw fold f either (each pair of
folds f, g gets one head trained without both). Only items without a verdict get the head
trained on everything. Deterministic: folds come from the seed, L-BFGS has no randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from classifier.engine import ENSEMBLES, mix_ensemble

ALPHAS = tuple(round(a / 10, 1) for a in range(11))  # 0.0, 0.1, ..., 1.0
DEFAULT_L2 = 0.01
DEFAULT_RANK = 128
DEFAULT_MAX_ITER = 60
MIN_FOLDS = 3  # with 2 folds, a pair of folds leaves nothing to choose alpha from
DTYPE = torch.float32


class ProbeError(ValueError):
    """The inputs cannot give a probe (too few items for the folds, bad options)."""


@dataclass(frozen=True)
class Ensemble:
    """How the parent run mixes the towers (classifier.engine's ensembles)."""

    mode: str = "image"
    w_img: float = 0.8
    w_txt: float = 0.2
    tau: float = 0.6

    def __post_init__(self) -> None:
        if self.mode not in ENSEMBLES:
            raise ProbeError(f"unknown ensemble {self.mode!r}")

    @property
    def uses_captions(self) -> bool:
        return self.mode != "image"


@dataclass
class Features:
    """L2-normalised embeddings of some items: image [n, D]; caption [n, D] and has_caption
    [n] for the ensembles that use captions (None for `image`)."""

    image: np.ndarray
    caption: np.ndarray | None = None
    has_caption: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.image)

    def take(self, rows: np.ndarray) -> Features:
        return Features(
            image=self.image[rows],
            caption=None if self.caption is None else self.caption[rows],
            has_caption=None if self.has_caption is None else self.has_caption[rows],
        )


@dataclass
class Examples:
    """What the verdicts say, one row per (item, label): `item` indexes the verdict items'
    Features, `label` the label columns; positive False means "not this label"."""

    item: np.ndarray  # int64 [m]
    label: np.ndarray  # int64 [m]
    positive: np.ndarray  # bool [m]

    def __post_init__(self) -> None:
        self.item = np.asarray(self.item, np.int64)
        self.label = np.asarray(self.label, np.int64)
        self.positive = np.asarray(self.positive, bool)

    def __len__(self) -> int:
        return len(self.item)

    def where(self, mask: np.ndarray) -> Examples:
        return Examples(self.item[mask], self.label[mask], self.positive[mask])


@dataclass
class Head:
    """Logits = features @ weight.T + bias; weight [K, D] includes the logit scale. Captions
    get a head of their own once trained: the two towers embed differently enough that one
    head cannot serve both (docs/architecture.md#probe)."""

    weight: np.ndarray
    bias: np.ndarray
    # The caption tower's own head (weighted and conditional ensembles); None: the same.
    caption_weight: np.ndarray | None = None
    caption_bias: np.ndarray | None = None

    @property
    def for_captions(self) -> tuple[np.ndarray, np.ndarray]:
        if self.caption_weight is None or self.caption_bias is None:
            return self.weight, self.bias
        return self.caption_weight, self.caption_bias

    @classmethod
    def zero_shot(cls, label_features: np.ndarray, logit_scale: float) -> Head:
        weight = np.asarray(label_features, np.float32) * np.float32(logit_scale)
        return cls(weight=weight, bias=np.zeros(len(weight), np.float32))


@dataclass
class ProbeFit:
    """`head`: trained on every verdict item, α applied (for items without a verdict).
    `fold_of[i]`: the fold of verdict item i; `fold_heads[f]`: the head for fold f's items,
    trained without them, with its own α `fold_alphas[f]`. `cross_fitted`: each verdict item's
    probabilities [n, K] from its fold's head. `trainings`: how many fits were run."""

    head: Head
    alpha: float
    fold_of: np.ndarray
    fold_heads: list[Head]
    fold_alphas: list[float]
    cross_fitted: np.ndarray
    active_labels: np.ndarray
    trainings: int


def basis_from(vectors: np.ndarray, rank: int = DEFAULT_RANK) -> np.ndarray:
    """[D, r]: the `rank` leading principal directions of `vectors` (a sample of the dataset's
    embeddings, no labels), each divided by its spread, so one unit of a coordinate is one
    standard deviation whatever the model: the same l2 suits every model."""
    x = np.asarray(vectors, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ProbeError("the basis needs at least two embeddings")
    x = x - x.mean(axis=0)
    # The eigenvectors of the D x D covariance: the SVD's directions, in a sixth of its time
    # for 20,000 x 512.
    variance, directions = np.linalg.eigh(x.T @ x / (len(x) - 1))
    order = np.argsort(variance)[::-1]
    spread = np.sqrt(np.clip(variance[order], 0.0, None))
    keep = min(rank, int((spread > 1e-6 * max(spread[0], 1e-12)).sum()))
    return (directions[:, order[:keep]] / spread[:keep]).astype(np.float32)


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each of n items: a seeded permutation dealt round-robin (sizes differ by ≤ 1)."""
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, np.int64)
    fold_of[order] = np.arange(n) % folds
    return fold_of


def _mixed_log_p(log_p: list[torch.Tensor], w_img: torch.Tensor) -> torch.Tensor:
    """log(w·p_img + (1 - w)·p_txt) from the towers' log p, computed in log space."""
    return torch.logaddexp(
        torch.log(w_img.clamp_min(1e-12)) + log_p[0],
        torch.log((1.0 - w_img).clamp_min(1e-12)) + log_p[1],
    )


@dataclass
class Delta:
    """A trained change: the active labels (those its examples name, and only those: a label
    named by a held-out fold alone must not move), then (A, c) of the image tower and, when
    mixed, of the caption tower."""

    active: torch.Tensor
    params: tuple[torch.Tensor, ...]


@dataclass
class _Batch:
    z0: list[torch.Tensor]  # per tower, zero-shot logits of the examples' items [r, K]
    coords: list[torch.Tensor]  # per tower, their basis coordinates [r, rank]
    has_caption: torch.Tensor  # [r]
    at: torch.Tensor  # [m] each example's row among those items
    labels: torch.Tensor  # [m]
    positive: torch.Tensor  # [m]


class _Problem:
    """The verdict items' fixed quantities as tensors: zero-shot logits per tower and the
    items' coordinates in the basis. A fit only adds (coordinates @ Aᵀ + c) to the active
    columns."""

    def __init__(
        self, features: Features, zero_shot: Head, basis: np.ndarray, ensemble: Ensemble
    ) -> None:
        self.ensemble = ensemble
        basis_t = torch.as_tensor(basis, dtype=DTYPE)
        weight = torch.as_tensor(zero_shot.weight, dtype=DTYPE)
        bias = torch.as_tensor(zero_shot.bias, dtype=DTYPE)
        image = torch.as_tensor(np.asarray(features.image, np.float32), dtype=DTYPE)
        self.z0 = [image @ weight.T + bias]
        self.coords = [image @ basis_t]
        n = len(features)
        self.has_caption = torch.zeros(n, dtype=torch.bool)
        if ensemble.uses_captions and features.caption is not None:
            caption = torch.as_tensor(np.asarray(features.caption, np.float32), dtype=DTYPE)
            self.z0.append(caption @ weight.T + bias)
            self.coords.append(caption @ basis_t)
            if features.has_caption is not None:
                self.has_caption = torch.as_tensor(np.asarray(features.has_caption, bool))
            else:
                self.has_caption = torch.ones(n, dtype=torch.bool)
        total = ensemble.w_img + ensemble.w_txt
        self.w_img = ensemble.w_img / total if total > 0 else 1.0
        self.basis = basis
        self.rank = basis.shape[1]

    def batch(self, examples: Examples) -> _Batch:
        """The examples' rows of the fixed tensors, taken once per fit, not per step."""
        rows, inverse = np.unique(examples.item, return_inverse=True)
        rows_t = torch.as_tensor(rows, dtype=torch.int64)
        return _Batch(
            z0=[z0[rows_t] for z0 in self.z0],
            coords=[coords[rows_t] for coords in self.coords],
            has_caption=self.has_caption[rows_t],
            at=torch.as_tensor(inverse, dtype=torch.int64),
            labels=torch.as_tensor(examples.label, dtype=torch.int64),
            positive=torch.as_tensor(examples.positive),
        )

    def image_weight(self, logits: list[torch.Tensor], batch: _Batch) -> torch.Tensor:
        """Per row, the weight of the image tower in the mixture (1: image only)."""
        n = len(batch.has_caption)
        ones = torch.ones(n, dtype=DTYPE)
        if len(logits) == 1:
            return ones
        weight = torch.where(batch.has_caption, torch.full((n,), self.w_img, dtype=DTYPE), ones)
        if self.ensemble.mode == "conditional":
            with torch.no_grad():
                sure = torch.softmax(logits[0], dim=1).max(dim=1).values >= self.ensemble.tau
            weight = torch.where(sure, ones, weight)
        return weight

    def _logits(self, delta: Delta, batch: _Batch, alpha: float) -> list[torch.Tensor]:
        """Per tower, the batch items' logits [r, K] under zero-shot + α·change."""
        return [
            z0.index_add(
                1,
                delta.active,
                coords @ (alpha * delta.params[2 * t]).T + alpha * delta.params[2 * t + 1],
            )
            for t, (z0, coords) in enumerate(zip(batch.z0, batch.coords, strict=True))
        ]

    def _tower_log_p(
        self, delta: Delta, batch: _Batch, alpha: float
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per tower, log p(label) of every example; and each example's image weight."""
        logits = self._logits(delta, batch, alpha)
        log_p = [z[batch.at, batch.labels] - torch.logsumexp(z, dim=1)[batch.at] for z in logits]
        return log_p, self.image_weight(logits, batch)[batch.at]

    def right(self, delta: Delta, batch: _Batch, alpha: float) -> int:
        """How many positive examples the blend's mixed top label gets right."""
        logits = self._logits(delta, batch, alpha)
        p = torch.softmax(logits[0], dim=1)
        if len(logits) == 2:
            w_img = self.image_weight(logits, batch)[:, None]
            p = w_img * p + (1.0 - w_img) * torch.softmax(logits[1], dim=1)
        top = p.argmax(dim=1)[batch.at]
        return int(((top == batch.labels) & batch.positive).sum())

    @staticmethod
    def _example_terms(log_p: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """log p for positives, log(1 - p) = log(-expm1(log p)) for "not this label" (kept
        finite when p rounds to 1)."""
        return torch.where(positive, log_p, torch.log(-torch.expm1(log_p.clamp_max(-1e-6))))

    def log_likelihood(self, delta: Delta, batch: _Batch, alpha: float = 1.0) -> torch.Tensor:
        """Per example, the log-likelihood under the mixed probabilities (what a run stores):
        log p(label) for positives, log(1 - p(label)) for "not this label"."""
        log_p, w_img = self._tower_log_p(delta, batch, alpha)
        if len(log_p) == 2:
            mixed = _mixed_log_p(log_p, w_img)
            return self._example_terms(mixed, batch.positive)
        return self._example_terms(log_p[0], batch.positive)

    def objective(self, delta: Delta) -> Callable[[_Batch], torch.Tensor]:
        """Training's per-example log-likelihood: each tower's own, weighted as the mixture
        weighs it. A bound on the mixture's (Jensen), and unlike it, a caption head that starts
        far off still gets a gradient while the image tower carries the mixture."""

        def terms(batch: _Batch) -> torch.Tensor:
            log_p, w_img = self._tower_log_p(delta, batch, 1.0)
            own = [self._example_terms(lp, batch.positive) for lp in log_p]
            if len(own) == 1:
                return own[0]
            mixed = _mixed_log_p(log_p, w_img)
            return (
                self._example_terms(mixed, batch.positive) + w_img * own[0] + (1.0 - w_img) * own[1]
            )

        return terms

    def train(
        self, examples: Examples, *, l2: float, max_iter: int, start: Delta | None = None
    ) -> Delta:
        """Minimise the mean loss + l2/2·(|A|² + |c|²) with L-BFGS (full batch); one (A, c)
        per tower."""
        active = torch.as_tensor(np.unique(examples.label), dtype=torch.int64)
        params = [
            tensor
            for _ in self.z0
            for tensor in (
                torch.zeros((len(active), self.rank), dtype=DTYPE),
                torch.zeros(len(active), dtype=DTYPE),
            )
        ]
        if start is not None:
            # The start's rows of the labels both share; the others start at zero-shot.
            mine, theirs = np.intersect1d(
                active.numpy(), start.active.numpy(), return_indices=True
            )[1:]
            for tensor, begun in zip(params, start.params, strict=True):
                tensor[torch.as_tensor(mine)] = begun[torch.as_tensor(theirs)]
        delta = Delta(active, tuple(params))
        if not len(examples):
            return delta
        batch = self.batch(examples)
        for tensor in delta.params:
            tensor.requires_grad_(True)
        optimiser = torch.optim.LBFGS(
            list(delta.params), lr=1.0, max_iter=max_iter, history_size=10,
            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9,
        )  # fmt: skip

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = -self.objective(delta)(batch).mean()
            loss = loss + 0.5 * l2 * sum(t.pow(2).sum() for t in delta.params)
            loss.backward()
            return loss

        optimiser.step(closure)
        return Delta(active, tuple(t.detach() for t in delta.params))

    def head(self, zero_shot: Head, delta: Delta, alpha: float) -> Head:
        """The full head [K, D] per tower: zero-shot plus α times the trained change of the
        active rows."""
        active = delta.active.numpy()
        basis_t = self.basis.T.astype(np.float64)
        parts = []
        for t in range(len(self.z0)):
            weight = np.array(zero_shot.weight, np.float32, copy=True)
            bias = np.array(zero_shot.bias, np.float32, copy=True)
            weight[active] += np.float32(alpha) * (delta.params[2 * t].numpy() @ basis_t).astype(
                np.float32
            )
            bias[active] += np.float32(alpha) * delta.params[2 * t + 1].numpy().astype(np.float32)
            parts.append((weight, bias))
        if len(parts) == 1:
            return Head(weight=parts[0][0], bias=parts[0][1])
        return Head(parts[0][0], parts[0][1], caption_weight=parts[1][0], caption_bias=parts[1][1])


def _choose_alpha(
    problem: _Problem, held_out: list[tuple[Delta, Examples]], alphas: tuple[float, ...]
) -> tuple[float, dict[float, tuple[int, float]]]:
    """The α whose blend gets the most held-out positives right (each example scored by a
    change trained without it), then the highest held-out log-likelihood; remaining ties go
    to the smaller α (nearer zero-shot: no evidence, no change). Accuracy comes first
    because it is what a run is judged by: a blend can gain likelihood and lose labels.
    Returns (α, {α: (right, log-likelihood)})."""
    batches = [(delta, problem.batch(part)) for delta, part in held_out if len(part)]
    scores: dict[float, tuple[int, float]] = {}
    with torch.no_grad():
        for alpha in alphas:
            right, likelihood = 0, 0.0
            for delta, batch in batches:
                right += problem.right(delta, batch, alpha)
                likelihood += float(problem.log_likelihood(delta, batch, alpha).sum())
            scores[alpha] = (right, round(likelihood, 6))
    best = max(scores.values())
    return min(a for a, value in scores.items() if value == best), scores


def fit(
    features: Features,
    examples: Examples,
    zero_shot: Head,
    ensemble: Ensemble,
    basis: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    l2: float = DEFAULT_L2,
    alphas: tuple[float, ...] = ALPHAS,
    max_iter: int = DEFAULT_MAX_ITER,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> ProbeFit:
    """Train the probe on the verdict items (`features`, one row each) with cross-fitting;
    see the module docstring. `progress(done, total)` is called after every fit. `threads`:
    torch's CPU threads for the fits (None: as set), restored afterwards."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    try:
        return _fit(
            features, examples, zero_shot, ensemble, basis, folds=folds, seed=seed, l2=l2,
            alphas=alphas, max_iter=max_iter, progress=progress,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def _fit(
    features: Features,
    examples: Examples,
    zero_shot: Head,
    ensemble: Ensemble,
    basis: np.ndarray,
    *,
    folds: int,
    seed: int,
    l2: float,
    alphas: tuple[float, ...],
    max_iter: int,
    progress: Callable[[int, int], None] | None,
) -> ProbeFit:
    n = len(features)
    if folds < MIN_FOLDS:
        raise ProbeError(f"folds must be at least {MIN_FOLDS}")
    if n < folds:
        raise ProbeError(f"{n} verdict items cannot fill {folds} folds")
    if not len(examples):
        raise ProbeError("no examples to learn from")
    if examples.item.min() < 0 or examples.item.max() >= n:
        raise ProbeError("an example points outside the verdict items")
    problem = _Problem(features, zero_shot, basis, ensemble)
    fold_of = fold_assignment(n, folds, seed)
    example_fold = fold_of[examples.item]
    pairs = list(combinations(range(folds), 2))
    total, done = 1 + folds + len(pairs), 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    def without(*left_out: int) -> Examples:
        return examples.where(~np.isin(example_fold, left_out))

    # Warm starts only ever come from a head that saw less: the pair heads start from zero,
    # fold f's head from a pair head without f, the full head from fold 0's head. L-BFGS
    # stops before full convergence, so a start that had seen fold f would leave a trace of
    # fold f's labels in the head that predicts it.
    inner: dict[tuple[int, int], Delta] = {}
    for f, g in pairs:
        inner[(f, g)] = problem.train(without(f, g), l2=l2, max_iter=max_iter)
        step()
    outer: dict[int, Delta] = {}
    for f in range(folds):
        start = inner[(0, 1)] if f == 0 else inner[(0, f)]
        outer[f] = problem.train(without(f), l2=l2, max_iter=max_iter, start=start)
        step()
    full = problem.train(examples, l2=l2, max_iter=max_iter, start=outer[0])
    step()

    parts = [examples.where(example_fold == f) for f in range(folds)]
    # Fold f's α: from the pair heads, each scored on the one fold it left out besides f.
    fold_alphas = [
        _choose_alpha(
            problem,
            [(inner[min(f, g), max(f, g)], parts[g]) for g in range(folds) if g != f],
            alphas,
        )[0]
        for f in range(folds)
    ]
    # The final head's α: from the outer heads, each scored on its own fold.
    alpha, _ = _choose_alpha(problem, [(outer[f], parts[f]) for f in range(folds)], alphas)

    cross_fitted = np.empty((n, zero_shot.weight.shape[0]), np.float64)
    fold_heads = []
    for f in range(folds):
        rows = np.flatnonzero(fold_of == f)
        fold_heads.append(problem.head(zero_shot, outer[f], fold_alphas[f]))
        cross_fitted[rows] = probabilities(features.take(rows), fold_heads[f], ensemble)
    return ProbeFit(
        head=problem.head(zero_shot, full, alpha),
        alpha=alpha,
        fold_of=fold_of,
        fold_heads=fold_heads,
        fold_alphas=fold_alphas,
        cross_fitted=cross_fitted,
        active_labels=full.active.numpy(),
        trainings=total,
    )


def probabilities(features: Features, head: Head, ensemble: Ensemble) -> np.ndarray:
    """[n, K] probabilities of a head, mixed as the ensemble mixes (for small n: the verdict
    items; a whole dataset goes through classifier.engine.score in blocks)."""
    weight = torch.as_tensor(head.weight, dtype=torch.float32)
    bias = torch.as_tensor(head.bias, dtype=torch.float32)
    with torch.no_grad():
        image = torch.as_tensor(np.asarray(features.image, np.float32))
        p_img = torch.softmax(image @ weight.T + bias, dim=1)
        if not ensemble.uses_captions or features.caption is None:
            return p_img.numpy()
        caption = torch.as_tensor(np.asarray(features.caption, np.float32))
        text_weight, text_bias = (
            torch.as_tensor(a, dtype=torch.float32) for a in head.for_captions
        )
        p_txt = torch.softmax(caption @ text_weight.T + text_bias, dim=1)
        mixed = mix_ensemble(
            p_img, p_txt, mode=ensemble.mode, w_img=ensemble.w_img, w_txt=ensemble.w_txt,
            tau=ensemble.tau,
        )  # fmt: skip
        if features.has_caption is not None:
            has = torch.as_tensor(np.asarray(features.has_caption, bool))[:, None]
            mixed = torch.where(has, mixed, p_img)
        return mixed.numpy()
