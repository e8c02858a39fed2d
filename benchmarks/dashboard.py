"""Benchmark: the dashboard page and its metrics API on a realistic sample.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/dashboard.py [--predictions 1000000]
        [--runs 2] [--repeat 15] [--json]

Builds, in a throwaway database (`bench_<name>`, dropped at the end), a dataset of N items, a
365-label taxonomy, `--runs` classification runs of N predictions each (PostgreSQL COPY; plain
bulk inserts on SQLite), a balanced 1,000-item sample (10 labels × 100) of the first run and
3,000 verdicts (three annotators on every item, with skips and corrections). Then it times
every dashboard front door through Django's test client (full middleware, session auth, as a
lead): median and 95th percentile over `--repeat` requests after two warm-ups, and the number
of queries ("first" is the cold first request, which fills the per-run label-frequency
cache). The baseline, measured in the same run, is the poller's "nothing changed" answer
(a 204 after one aggregate query): the cheapest request that still authenticates.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def insert_rows(model, columns: list[str], rows) -> None:
    """COPY on PostgreSQL (a million rows in seconds); bulk_create elsewhere."""
    from django.db import connection

    if connection.vendor == "postgresql":
        table = model._meta.db_table
        with connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(columns, row, strict=True))))
        if len(batch) == 5000:
            model.objects.bulk_create(batch)
            batch = []
    model.objects.bulk_create(batch)


def fixed_columns(model, **values) -> tuple[list[str], list]:
    """Every other non-null column of `model` with its default, so COPY keeps working when a
    field is added."""
    from django.db import connection

    template = model(**values)
    columns, prepared = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in values or field.generated:
            continue  # generated columns are the database's to fill
        columns.append(field.column)
        value = field.pre_save(template, True)
        prepared.append(field.get_db_prep_save(value, connection))
    return columns, prepared


def build(n: int, runs: int, seed: int = 7) -> dict:
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from annotate.datasets.models import Item
    from annotate.validation.models import Sample, SampleItem, Verdict
    from benchmarks.common import bench_members_and_labels
    from classifier.models import ClassificationRun, Prediction

    rng = np.random.default_rng(seed)
    lead, annotators, dataset, taxonomy, label_ids = bench_members_and_labels(365)
    label_ids = np.array(label_ids)

    started = time.perf_counter()
    extra_cols, extra_vals = fixed_columns(Item, dataset_id=0, external_id="", image_path="")
    insert_rows(
        Item,
        ["dataset_id", "external_id", "image_path", *extra_cols],
        ((dataset.pk, f"{i:07d}.jpg", f"{i:07d}.jpg", *extra_vals) for i in range(n)),
    )
    item_ids = np.array(
        list(Item.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True))
    )
    log(f"{n} items in {time.perf_counter() - started:.1f}s")

    weights = 1 / np.arange(1, 366) ** 1.1  # Zipf-like: a few labels predicted very often
    base_labels = rng.choice(len(label_ids), size=n, p=weights / weights.sum())
    run_objs = []
    for r in range(runs):
        started = time.perf_counter()
        run = ClassificationRun.objects.create(
            dataset=dataset,
            taxonomy=taxonomy,
            name=f"run {r}",
            status="succeeded",
            finished=timezone.now(),
        )
        labels = base_labels.copy()
        if r:  # a reclassification: 20 % of the labels change
            changed = rng.random(n) < 0.2
            labels[changed] = rng.integers(0, len(label_ids), changed.sum())
        probabilities = rng.beta(2, 2, size=n)
        cols, vals = fixed_columns(Prediction, run_id=0, item_id=0, label_id=0, probability=0)
        insert_rows(
            Prediction,
            ["run_id", "item_id", "label_id", "probability", *cols],
            (
                (run.pk, int(i), int(label_ids[k]), float(p), *vals)
                for i, k, p in zip(item_ids, labels, probabilities, strict=True)
            ),
        )
        run_objs.append(run)
        log(f"run {r}: {n} predictions in {time.perf_counter() - started:.1f}s")

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Item, Prediction):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")

    run = run_objs[0]
    top = np.argsort(-np.bincount(base_labels, minlength=len(label_ids)))[:10]
    sample = Sample.objects.create(run=run, classes=10, per_class=100, redundancy=3)
    predictions = []
    for k in top:
        ids = Prediction.objects.filter(run=run, label_id=int(label_ids[k])).values_list(
            "id", flat=True
        )[:100]
        predictions.extend(ids)
    SampleItem.objects.bulk_create(
        SampleItem(sample=sample, prediction_id=p, position=i, wanted_verdicts=3)
        for i, p in enumerate(predictions)
    )
    items = list(
        SampleItem.objects.filter(sample=sample).values_list("id", "prediction__probability")
    )
    verdicts = []
    for a in annotators:
        for item_id, p in items:
            u = rng.random()
            value = "skip" if u < 0.03 else ("hit" if rng.random() < p else "miss")
            corrected = int(rng.choice(label_ids)) if value == "miss" and u > 0.5 else None
            verdicts.append(
                Verdict(
                    sample_item_id=item_id, annotator=a, value=value, corrected_label_id=corrected
                )
            )
    Verdict.objects.bulk_create(verdicts)
    return {"lead": lead, "sample": sample, "items": len(items), "verdicts": len(verdicts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from annotate.validation import metrics
    from benchmarks.common import measure, throwaway_database

    with throwaway_database("dashboard"):
        log(f"building on {connection.vendor} ({connection.settings_dict['NAME']})")
        data = build(args.predictions, args.runs)
        sample = data["sample"]
        client = Client()
        client.force_login(data["lead"])
        version = metrics.sample_version(sample=sample)
        pk = sample.pk
        baseline = measure(client, f"/samples/{pk}/dashboard/poll/?v={version}", args.repeat)
        results = [
            measure(client, url, args.repeat)
            for url in (
                f"/api/samples/{pk}/thresholds/",
                f"/api/samples/{pk}/classes/",
                f"/api/samples/{pk}/agreement/",
                f"/api/samples/{pk}/scores/",
                f"/samples/{pk}/",
                f"/samples/{pk}/dashboard/poll/?v=stale",
            )
        ]
        started = time.perf_counter()
        metrics.dashboard_build(sample=sample)
        compute_ms = (time.perf_counter() - started) * 1000
        summary = {
            "database": connection.vendor,
            "predictions_per_run": args.predictions,
            "runs": args.runs,
            "sample_items": data["items"],
            "verdicts": data["verdicts"],
            "baseline": baseline,
            "results": results,
            "dashboard_build_ms": round(compute_ms, 1),
        }
        print(
            f"{'request':48} {'first':>8} {'median':>8} {'p95':>8} {'queries':>8} "
            f"{'× baseline':>11}"
        )
        for r in [baseline, *results]:
            ratio = r["median_ms"] / baseline["median_ms"]
            name = "poll, unchanged (baseline)" if r is baseline else r["url"]
            print(
                f"{name:48} {r['first_ms']:>6.1f}ms {r['median_ms']:>6.1f}ms {r['p95_ms']:>6.1f}ms "
                f"{r['queries']:>8} {ratio:>10.1f}×"
            )
        print(f"dashboard_build (all tables, no HTTP): {compute_ms:.1f} ms")
        if args.json:
            print(json.dumps(summary))


if __name__ == "__main__":
    main()
