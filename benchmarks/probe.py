"""Benchmark: training a probe run from verdicts and writing its predictions, end to end.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/probe.py [--items 1000000]
        [--labels 365] [--verdicts 10000] [--folds 5] [--sample-classes 100] [--json]

Builds what benchmarks/rescore.py builds (a throwaway database, N items, the first `--labels`
Places365 labels, a ViT-B-32 embedding cache in float16 chunk files), but with embeddings a
probe can learn from: each item has a synthetic true label c and its embedding is
normalize(centre_c + noise), centre_c = normalize(prompt_c + a class offset in a 32-d
subspace), prompt_c being the label's prompt embedding from the run's own text tower (random
ViT-B-32 weights, seeded, so every load gives the same tower). Zero-shot gets about 65% of
the items right, the nearest true centre nearly all. Then, timed:

1. the parent run: `run_create` + `run_rescore` from the cache (the floor: the probe writes
   the same rows), as benchmarks/rescore.py times it;
2. a balanced sample of the parent (`sample_draw`, `--sample-classes` labels) and one verdict
   per sample item (not timed): a hit where the parent is right, else a miss with the true
   label as its correction for 80% of the misses, no correction for the others;
3. the probe: `probe_request` + `probe_train` (load the cache, the model and its prompts,
   verdict facts to examples, 1 + k + k(k-1)/2 fits, every prediction written with COPY).

Both timed parts start with no model in memory (a fresh worker). The task message that
`probe_request` sends goes to an in-memory broker, nothing consumes it: the benchmark runs
the task's work in this process, as rescore.py does. Target: 10,000 verdicts, 5 folds,
512-d, 365 labels, 1,000,000 items in under 60 s.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off
# Never a real broker: a worker would train the probe at the same time as the benchmark.
os.environ["CELERY_BROKER_URL"] = "memory://"
MODEL_SEED = 0  # random ViT-B-32 weights: the same text tower at every load
OFFSET_RANK, OFFSET, NOISE = 32, 0.6, 1.4  # about 65% zero-shot (see the docstring)
CORRECTED = 0.8  # share of misses whose annotator names the right label


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cold_model() -> None:
    """Forget the loaded model and the encoded prompts, as in a fresh worker, and seed the
    random initialisation of the next load."""
    import torch

    from classifier import engine, tasks

    engine._MODELS.clear()
    tasks._LABELS.clear()
    torch.manual_seed(MODEL_SEED)


def learnable_cache(run, n_labels: int, seed: int = 0):
    """Replace the run's embedding cache with items of known true labels (see the module
    docstring); the same chunks as benchmarks/rescore.py, so the same files are overwritten.
    Returns (item ids, true label position of each, zero-shot accuracy of the first 100,000
    items)."""
    import numpy as np

    from benchmarks.rescore import CHUNK
    from classifier.cache import cache_dir, cache_write
    from classifier.services import dataset_item_ids, run_model_load
    from classifier.tasks import label_features_of

    cold_model()
    _, prompts = label_features_of(run_model_load(run, "cpu"), run)
    rng = np.random.default_rng(seed)
    dim = prompts.shape[1]
    subspace, _ = np.linalg.qr(rng.standard_normal((dim, OFFSET_RANK)))
    offsets = rng.standard_normal((n_labels, OFFSET_RANK)) @ subspace.T / math.sqrt(OFFSET_RANK)
    centres = prompts + OFFSET * offsets
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    ids = dataset_item_ids(run.dataset_id)
    truth = rng.integers(0, n_labels, len(ids))
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    right = checked = 0
    for start in range(0, len(ids), CHUNK):
        part = slice(start, start + CHUNK)
        vectors = centres[truth[part]] + NOISE / math.sqrt(dim) * rng.standard_normal(
            (len(ids[part]), dim), dtype=np.float32
        )
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        if checked < 100_000:
            right += int((np.argmax(vectors @ prompts.T, axis=1) == truth[part]).sum())
            checked += len(vectors)
        cache_write(
            folder, item_ids=ids[part], image=vectors, caption=vectors,
            has_caption=np.ones(len(vectors), bool), failed_ids=np.zeros(0, np.int64),
            failed_reasons=[],
        )  # fmt: skip
    return ids, truth, right / checked


def verdicts_create(run, ids, truth, *, verdicts: int, classes: int, seed: int = 0) -> dict:
    """A balanced sample of the run and one verdict per sample item from the synthetic truth
    (bulk inserted: the verdict service's per-request checks are not what is measured)."""
    import numpy as np
    from django.contrib.auth.models import User

    from annotate.validation.models import SampleItem, Verdict
    from annotate.validation.sampling import sample_draw

    label_ids = np.array(
        run.taxonomy.labels.order_by("position", "key").values_list("id", flat=True)
    )
    per_class = math.ceil(verdicts / classes)
    sample = sample_draw(run=run, classes=classes, per_class=per_class, seed=seed, overlap=0.0)
    rows = list(
        SampleItem.objects.filter(sample=sample)
        .order_by("position")
        .values_list("id", "prediction__item_id", "prediction__label_id")[:verdicts]
    )
    annotator = User.objects.create_user("probe-annotator", password="x")
    rng = np.random.default_rng(seed)
    counts = {"hit": 0, "corrected": 0, "miss": 0}
    objects = []
    for sample_item, item_id, label_id in rows:
        true = int(label_ids[truth[np.searchsorted(ids, item_id)]])
        if label_id == true:
            value, corrected, kind = Verdict.Value.HIT, None, "hit"
        elif rng.random() < CORRECTED:
            value, corrected, kind = Verdict.Value.MISS, true, "corrected"
        else:
            value, corrected, kind = Verdict.Value.MISS, None, "miss"
        counts[kind] += 1
        objects.append(
            Verdict(
                sample_item_id=sample_item, annotator=annotator, value=value,
                corrected_label_id=corrected,
            )
        )  # fmt: skip
    Verdict.objects.bulk_create(objects, batch_size=5000)
    SampleItem.objects.filter(id__in=[r[0] for r in rows]).update(verdict_count=1)
    return {"sample": sample.pk, "classes": classes, "per_class": per_class, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=365)
    parser.add_argument("--verdicts", type=int, default=10_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sample-classes", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="sieve-bench-probe-")
    os.environ["SIEVE_MEDIA_ROOT"] = media
    import django

    django.setup()
    from django.db import connection

    from annotate.validation.probing import probe_request, probe_train
    from benchmarks.common import throwaway_database
    from benchmarks.rescore import build
    from classifier import tasks
    from classifier.services import run_create

    if connection.vendor != "postgresql":
        sys.exit("benchmarks/probe.py needs PostgreSQL (DATABASE_URL=postgres://...)")
    try:
        with throwaway_database("probe"):
            log(f"building: {args.items} items, {args.labels} labels")
            dataset, taxonomy = build(args.items, args.labels)
            import classifier.engine  # noqa: F401 - a warm worker has torch imported already

            started = time.perf_counter()
            parent = run_create(
                dataset=dataset, taxonomy=taxonomy, model="ViT-B-32", weights="",
                send=False, random_weights=True,
            )  # fmt: skip
            created = time.perf_counter() - started
            assert parent.source == "cache", parent.source
            started = time.perf_counter()
            ids, truth, zero_shot_truth = learnable_cache(parent, args.labels)
            log(
                f"learnable cache written in {time.perf_counter() - started:.1f} s (zero-shot "
                f"right on {zero_shot_truth:.1%} of the first 100,000 items)"
            )

            log("parent: re-scoring from the cache...")
            cold_model()
            parent_phases: dict[str, float] = {}
            started = time.perf_counter()
            status = tasks.run_rescore(run_id=parent.pk, send=False, timings=parent_phases)
            parent_seconds = created + time.perf_counter() - started
            parent.refresh_from_db()
            assert status == "done", status
            assert parent.status == "succeeded", parent.error

            started = time.perf_counter()
            sample = verdicts_create(
                parent, ids, truth, verdicts=args.verdicts, classes=args.sample_classes
            )
            log(f"sample and verdicts in {time.perf_counter() - started:.1f} s: {sample}")

            log("probe: request + train...")
            cold_model()
            probe_phases: dict[str, float] = {}
            started = time.perf_counter()
            probe_run = probe_request(run=parent, folds=args.folds)
            requested = time.perf_counter() - started
            status = probe_train(run_id=probe_run.pk, timings=probe_phases)
            probe_seconds = time.perf_counter() - started
            probe_run.refresh_from_db()
            assert status == "done", status
            assert probe_run.status == "succeeded", probe_run.error
            stored = probe_run.predictions.count()
            assert stored == args.items, stored
            figures = probe_run.probe
            keys = (
                "verdict_items", "examples", "judged_items", "cross_validated_accuracy",
                "zero_shot_accuracy", "probe_only", "zero_shot_only", "mcnemar_p", "alpha",
                "fold_alphas", "rank", "active_labels", "trainings",
            )  # fmt: skip
            result = {
                "database": connection.vendor,
                "items": args.items,
                "labels": args.labels,
                "verdicts": sample["hit"] + sample["corrected"] + sample["miss"],
                "folds": args.folds,
                "load": os.getloadavg()[0],
                "sample": sample,
                "zero_shot_on_truth": round(zero_shot_truth, 4),
                "parent_seconds": round(parent_seconds, 1),
                "parent_phases": parent_phases,
                "probe_seconds": round(probe_seconds, 1),
                "probe_request_seconds": round(requested, 2),
                "probe_phases": probe_phases,
                "probe_vs_parent": round(probe_seconds / parent_seconds, 2),
                "figures": {key: figures.get(key) for key in keys},
                "target_seconds": 60,
            }
            p_value = "n/a" if figures["mcnemar_p"] is None else f"{figures['mcnemar_p']:.2g}"
            accuracy, zero_shot = (
                figures["cross_validated_accuracy"], figures["zero_shot_accuracy"]
            )  # fmt: skip
            print(
                f"probe of {args.items} items x {args.labels} labels from {result['verdicts']} "
                f"verdicts, {args.folds} folds: {probe_seconds:.1f} s end to end (request "
                f"{requested:.2f} s, then {probe_phases}); target < 60 s: "
                f"{'met' if probe_seconds < 60 else 'NOT met'}\n"
                f"parent re-scored from the cache (the floor): {parent_seconds:.1f} s "
                f"({parent_phases}); probe / parent = {result['probe_vs_parent']}x\n"
                f"on {figures['judged_items']} judged verdict items: cross-validated "
                f"{accuracy:.1%} vs zero-shot {zero_shot:.1%} (probe only "
                f"{figures['probe_only']}, zero-shot only {figures['zero_shot_only']}, McNemar "
                f"p={p_value}), alpha {figures['alpha']}, "
                f"{figures['active_labels']} active labels, {figures['trainings']} fits; "
                f"load average {result['load']:.2f}"
            )
            if args.json:
                print(json.dumps(result))
    finally:
        import shutil

        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
