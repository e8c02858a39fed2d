"""Benchmark: the suspects ranking (`GET /api/runs/{id}/suspects/`) and a suspects sample at
10^6 predictions.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/suspects.py [--predictions 1000000]
        [--repeat 5] [--probe] [--json]

Builds the explorer benchmark's data (benchmarks/explore.py: a throwaway PostgreSQL database,
N items, one weighted run over 365 labels, a balanced sample with verdicts), then gives every
prediction a five-label top5 (p2 = p1 * u, u uniform, so the margin varies) and times, through
Django's test client as a lead: the top 100 and top 1000 suspects of the run, of its most
frequent label, the page, and drawing a suspects sample (10 labels x 100) through the API. The
score is computed by the database for every row of the run at each request (no stored column):
the time grows with the run.

`--probe` also gives the run a succeeded probe run with a prediction of every item (its label
the run's for four items in five, the next label otherwise; both in its top5), so every request
joins the probe's predictions and reads its probability of the run's label
(docs/architecture.md#suspects).
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
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_probe(run, connection, run_model, table: str) -> None:
    """A succeeded probe run of `run` with one prediction per item, written by one INSERT."""
    started = time.perf_counter()
    probe = run_model.objects.create(
        name="probe", dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id, model=run.model,
        ensemble=run.ensemble, source="probe", parent=run, status="succeeded",
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (run_id, item_id, label_id, probability, top5) "
            "SELECT %s, item_id, CASE WHEN moved THEN label_id + 1 ELSE label_id END, 0.6, "
            "CASE WHEN moved THEN jsonb_build_array(jsonb_build_array(label_id + 1, 0.6), "
            "jsonb_build_array(label_id, 0.3)) ELSE jsonb_build_array(jsonb_build_array("
            "label_id, 0.6), jsonb_build_array(label_id + 1, 0.3)) END "
            f"FROM (SELECT item_id, label_id, random() < 0.2 AS moved FROM {table} "
            "WHERE run_id = %s) AS rows",
            [probe.pk, run.pk],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")
    log(f"probe run {probe.pk} written in {time.perf_counter() - started:.1f}s")


def measure_all(client, data: dict, repeat: int) -> list[dict]:
    """The rankings, the page and three suspects sample draws (their median)."""
    from benchmarks.common import measure

    run = data["run"]
    base = f"/api/runs/{run.pk}/suspects/"
    frequent = data["label_keys"][data["frequent"]]
    cases = [
        ("", "top 100 of the run"),
        ("?limit=1000", "top 1000 of the run"),
        (f"?label={frequent}", "top 100 of the most frequent label"),
    ]
    results = []
    for query, name in cases:
        row = measure(client, base + query, repeat)
        row["name"] = name
        assert row["status"] == 200, row
        results.append(row)
        log(f"{name}: {row['median_ms']} ms")
    page = measure(client, f"/runs/{run.pk}/suspects/", repeat)
    page["name"] = "page /runs/{id}/suspects/ (HTML)"
    results.append(page)
    draws = []
    for seed in range(3):
        started = time.perf_counter()
        response = client.post(
            f"/api/runs/{run.pk}/samples/",
            {"strategy": "suspects", "classes": 10, "per_class": 100, "seed": seed},
            content_type="application/json",
        )
        draws.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.content
    results.append({"name": "POST samples strategy=suspects 10x100", "median_ms": sorted(draws)[1]})
    return results


def report(title: str, server: str, results: list[dict]) -> None:
    print(f"{title} on PostgreSQL {server}")
    for r in results:
        extra = f" {r['p95_ms']:>9.1f}ms {r['queries']:>4}" if "p95_ms" in r else ""
        print(f"{r['name']:44} {r['median_ms']:>9.1f}ms{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--probe", action="store_true", help="with a probe run of the run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from benchmarks.common import throwaway_database
    from benchmarks.explore import build
    from classifier.models import ClassificationRun, Prediction

    if connection.vendor != "postgresql":
        sys.exit("benchmarks/suspects.py needs PostgreSQL (DATABASE_URL=postgres://...)")
    with throwaway_database("suspects"):
        log(f"building on {connection.vendor} ({connection.settings_dict['NAME']})")
        data = build(args.predictions)
        run = data["run"]
        table = Prediction._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET top5 = jsonb_build_array("
                "jsonb_build_array(label_id, probability), "
                "jsonb_build_array(label_id + 1, round((probability * random())::numeric, 6)), "
                "jsonb_build_array(label_id + 2, 0.01), jsonb_build_array(label_id + 3, 0.01), "
                "jsonb_build_array(label_id + 4, 0.01)) WHERE run_id = %s",
                [run.pk],
            )
            cursor.execute(f"VACUUM ANALYZE {table}")
        log(f"top5 rewritten in {time.perf_counter() - started:.1f}s")
        client = Client()
        client.force_login(data["lead"])
        server = connection.cursor().connection.info.parameter_status("server_version")
        summary = {"predictions": args.predictions, "server": server}
        if args.probe:
            # The same requests without the probe first: both figures from one machine state.
            summary["without_probe"] = measure_all(client, data, args.repeat)
            report(f"{args.predictions:,} predictions, no probe", server, summary["without_probe"])
            add_probe(run, connection, ClassificationRun, table)
        summary["results"] = measure_all(client, data, args.repeat)
        probe = ", with a probe run" if args.probe else ""
        report(f"{args.predictions:,} predictions{probe}", server, summary["results"])
        if args.json:
            print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
