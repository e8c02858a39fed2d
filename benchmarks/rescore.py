"""Benchmark: re-scoring a run from the embedding cache (no images, no GPU).

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/rescore.py [--items 1000000]
        [--labels 365] [--ensemble image] [--json]

Builds, in a throwaway database (`bench_<name>`, dropped at the end) and a temporary media
folder, a dataset of N items, a taxonomy of the first `--labels` Places365 categories and an
embedding cache for ViT-B-32 (random unit vectors, float16, 512 dimensions, chunk files of
2,000 items: what GPU runs write). Then it times what `classify` does when the cache covers
the dataset: `run_create` + `run_rescore` (load the cache, encode the 365 prompts with the
ViT-B-32 text tower on the CPU, score, bulk write with COPY), end to end.

Baseline, measured in the same run: writing the same predictions with the ORM
(`bulk_create`, batches of 5,000) for 50,000 of them, extrapolated linearly to N.
Target: 1,000,000 items x 365 labels in under 60 s.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off
CHUNK = 2000
DIM = 512  # ViT-B-32 embedding width


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(n: int, n_labels: int) -> tuple:
    import numpy as np
    from django.db import connection

    from annotate.datasets.models import Dataset, Item
    from annotate.taxonomies.models import Label, Taxonomy
    from classifier.cache import cache_dir, cache_write

    dataset = Dataset.objects.create(name="bench-rescore", image_root="")
    names = []
    data = ROOT / "annotate" / "taxonomies" / "data" / "places365.txt"
    for line in data.read_text().splitlines()[:n_labels]:
        key = line.split()[0]
        names.append((key, key.split("/", 2)[2].replace("/", " ").replace("_", " ")))
    taxonomy = Taxonomy.objects.create(name="places365-bench")
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=k, name=nm, position=i) for i, (k, nm) in enumerate(names)
    )
    started = time.perf_counter()
    rows = ((dataset.pk, f"img{i:07d}.jpg", f"img{i:07d}.jpg", "a caption") for i in range(n))
    if connection.vendor == "postgresql":
        table = Item._meta.db_table
        cols = (
            "dataset_id, external_id, image_path, caption, metadata, status, status_reason, "
            "image_format"
        )
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((*row, "{}", "ok", "", ""))
    else:
        batch = []
        for ds, ext, path, caption in rows:
            batch.append(Item(dataset_id=ds, external_id=ext, image_path=path, caption=caption))
            if len(batch) == 10_000:
                Item.objects.bulk_create(batch)
                batch = []
        Item.objects.bulk_create(batch)
    log(f"{n} items inserted in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    ids = np.fromiter(dataset.items.order_by("id").values_list("id", flat=True), np.int64)
    folder = cache_dir(dataset_id=dataset.pk, model="ViT-B-32", weights="")
    rng = np.random.default_rng(0)
    for start in range(0, n, CHUNK):
        part = ids[start : start + CHUNK]
        vectors = rng.standard_normal((2, len(part), DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
        cache_write(
            folder, item_ids=part, image=vectors[0], caption=vectors[1],
            has_caption=np.ones(len(part), bool), failed_ids=np.zeros(0, np.int64),
            failed_reasons=[],
        )  # fmt: skip
    log(f"embedding cache written in {time.perf_counter() - started:.1f} s ({folder})")
    return dataset, taxonomy


def write_baseline(run_id: int, n_rows: int) -> tuple[float, float]:
    """Seconds to store `n_rows` of the run's predictions as a new run: with the ORM
    (`bulk_create`, batches of 5,000) and with `predictions_replace` (COPY)."""
    import numpy as np
    from django.db import transaction

    from classifier.models import ClassificationRun, Prediction
    from classifier.services import PredictionBlock, predictions_replace

    source = list(Prediction.objects.filter(run_id=run_id).order_by("id")[:n_rows])
    timings = []
    for method in ("orm", "copy"):
        other = ClassificationRun.objects.get(pk=run_id)
        other.pk = None
        other.save()
        started = time.perf_counter()
        if method == "orm":
            with transaction.atomic():
                Prediction.objects.bulk_create(
                    [
                        Prediction(
                            run=other,
                            item_id=p.item_id,
                            label_id=p.label_id,
                            probability=p.probability,
                            top5=p.top5,
                            image_probability=p.image_probability,
                        )
                        for p in source
                    ],
                    batch_size=5000,
                )
        else:
            block = PredictionBlock(
                item_ids=np.array([p.item_id for p in source]),
                labels=np.array([[t[0] for t in p.top5] for p in source]),
                probs=np.array([[t[1] for t in p.top5] for p in source]),
                image_max=np.array([p.image_probability for p in source]),
            )
            predictions_replace(run_id=other.pk, blocks=[block])
        timings.append(time.perf_counter() - started)
        other.delete()
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=365)
    parser.add_argument("--ensemble", default="image", choices=["image", "weighted", "conditional"])
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    media = tempfile.mkdtemp(prefix="sieve-bench-rescore-")
    os.environ["SIEVE_MEDIA_ROOT"] = media
    import django

    django.setup()
    from django.db import connection

    from benchmarks.common import throwaway_database
    from classifier import tasks
    from classifier.services import run_create

    try:
        with throwaway_database("rescore"):
            log(f"building on {connection.vendor}: {args.items} items, {args.labels} labels")
            dataset, taxonomy = build(args.items, args.labels)
            import classifier.engine  # noqa: F401 - a warm worker has torch imported already

            log("re-scoring (ViT-B-32 text tower on CPU for the prompts)...")
            started = time.perf_counter()
            run = run_create(
                dataset=dataset, taxonomy=taxonomy, model="ViT-B-32", weights="",
                ensemble=args.ensemble, send=False, random_weights=True,
            )  # fmt: skip
            created = time.perf_counter() - started
            assert run.source == "cache", run.source
            phases: dict[str, float] = {}
            status = tasks.run_rescore(run_id=run.pk, send=False, timings=phases)
            total = time.perf_counter() - started
            run.refresh_from_db()
            assert status == "done", status
            assert run.status == "succeeded", (run.status, run.error)
            stored = run.predictions.count()
            assert stored == args.items, stored
            rows = min(args.baseline_rows, args.items)
            orm, copy = write_baseline(run.pk, rows)
            result = {
                "database": connection.vendor,
                "items": args.items,
                "labels": args.labels,
                "ensemble": args.ensemble,
                "seconds": round(total, 1),
                "run_create_seconds": round(created, 2),
                "phases": phases,
                "items_per_second": round(args.items / total),
                "write_rows": rows,
                "write_orm_seconds": round(orm, 2),
                "write_copy_seconds": round(copy, 2),
                "copy_speedup_vs_orm": round(orm / copy, 1),
                "target_seconds": 60,
            }
            print(
                f"re-scored {args.items} items x {args.labels} labels ({args.ensemble}) from the "
                f"cache in {total:.1f} s ({result['items_per_second']} items/s) on "
                f"{connection.vendor}: run_create {created:.1f} s, then {result['phases']}; "
                f"target < 60 s: {'met' if total < 60 else 'NOT met'}\n"
                f"storing {rows} predictions: ORM bulk_create {orm:.2f} s, bulk load "
                f"({'COPY' if connection.vendor == 'postgresql' else 'executemany'}) {copy:.2f} s "
                f"({result['copy_speedup_vs_orm']}x)"
            )
            if args.json:
                print(json.dumps(result))
    finally:
        import shutil

        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
