"""Benchmark: the ITR summary, exports and lead's queue over the published dataset.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/itr_bench.py [--reviews 5]
        [--repeat 15] [--json]

Imports, in a throwaway database (`bench_itr_<name>`, dropped at the end), the published
4,471-tweet dataset and its 218-item list (annotate/itr/data), then writes `--reviews` reviews
per test item (895 items; five reviewers whose majority confirms the list's labels on listed
items and the published ones elsewhere, with up to two dissenters per item and a reason on
every changed vote), a lead's decision on every 30th test item, and recomputes every item's
consensus through `refresh_items`. Then it times, through Django's test client (full
middleware, session auth, as the lead): median and 95th percentile over `--repeat` requests
after two warm-ups, and the number of queries ("first" is the cold first request). The queue
is measured twice: ranked by vote margin (no model signal), then by CROWDLAB with a synthetic
model signal (its first request computes and caches CROWDLAB's scores). The baseline, measured
in the same run, is `GET /api/itr/items/{id}/` (one item: the cheapest request that still
authenticates and checks membership). The plain functions (`itr_summary`, `itr_export`,
`lead_queue`) are also timed without HTTP.
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

DATA = ROOT / "annotate" / "itr" / "data"
PAIRS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(n_reviews: int, seed: int = 7) -> dict:
    import numpy as np
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from annotate.datasets.access import membership_set
    from annotate.datasets.models import Dataset, Role
    from annotate.itr.importers import itr_import
    from annotate.itr.models import ItrItem, ItrReview
    from annotate.itr.services import decision_record, refresh_items

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    result = itr_import(
        name="itr",
        csv_path=DATA / "textimage-data.csv",
        controversial=DATA / "controversial_samples.txt",
    )
    dataset = Dataset.objects.get(pk=result.dataset_id)
    log(f"imported {result.items} tweets in {time.perf_counter() - started:.1f}s")
    lead = User.objects.create_user("lead", password="x")
    membership_set(dataset=dataset, user=lead, role=Role.LEAD)
    reviewers = [User.objects.create_user(f"reviewer{i}", password="x") for i in range(n_reviews)]
    for user in reviewers:
        membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)

    started = time.perf_counter()
    items = list(ItrItem.objects.filter(dataset=dataset, split="test").order_by("row"))
    reviews = []
    for item in items:
        target = (item.listed_text, item.listed_image) if item.listed else item.original
        dissenters = int(rng.choice([0, 0, 1, 2]))
        votes = [target] * (n_reviews - dissenters)
        others = [p for p in PAIRS if p != target]
        votes += [others[int(rng.integers(len(others)))] for _ in range(dissenters)]
        rng.shuffle(votes)
        for user, (t, i) in zip(reviewers, votes, strict=True):
            changed = (int(t), int(i)) != item.original
            reviews.append(
                ItrReview(
                    item=item,
                    reviewer=user,
                    text_is_represented=int(t),
                    image_adds=int(i),
                    reason=f"{user.username}: the labels do not fit" if changed else "",
                    duration_ms=int(rng.integers(2000, 20000)),
                )
            )
    with transaction.atomic():
        ItrReview.objects.bulk_create(reviews, batch_size=2000)
        refresh_items([item.pk for item in items])
        for item in items[::30]:
            decision_record(item=item, lead=lead, text_is_represented=1, image_adds=0, note="x")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (ItrItem, ItrReview):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    log(f"{len(reviews)} reviews and consensus in {time.perf_counter() - started:.1f}s")
    return {"dataset": dataset, "lead": lead, "items": items, "reviews": len(reviews)}


def add_signal(dataset, seed: int = 11) -> None:
    """A synthetic model signal (similarity and per-task probabilities on every item), so the
    queue ranks by CROWDLAB and the summary computes Spearman's rho."""
    import numpy as np

    from annotate.itr.models import ItrItem, ItrSignal

    rng = np.random.default_rng(seed)
    items = list(ItrItem.objects.filter(dataset=dataset))
    for item in items:
        item.similarity = float(
            np.clip(0.2 + 0.03 * item.text_is_represented + rng.normal(0, 0.04), 0, 1)
        )
        item.p_text = float(
            np.clip(0.3 + 0.4 * item.text_is_represented + rng.normal(0, 0.1), 0.01, 0.99)
        )
        item.p_image = float(np.clip(0.3 + 0.4 * item.image_adds + rng.normal(0, 0.1), 0.01, 0.99))
    ItrItem.objects.bulk_update(items, ["similarity", "p_text", "p_image"], batch_size=2000)
    ItrSignal.objects.update_or_create(dataset=dataset, defaults={"details": {"synthetic": True}})


def time_call(call, repeat: int) -> float:
    call()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviews", type=int, default=5, help="reviews per test item")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    # What a server process does at start (annotate/wsgi.py): import the views, then freeze the
    # objects that live as long as the process, so that full collections skip them.
    importlib.import_module("annotate.wsgi")
    from django.db import connection
    from django.test import Client

    from annotate.itr.exports import itr_export
    from annotate.itr.queue import lead_queue
    from annotate.itr.summary import itr_summary
    from benchmarks.common import measure, throwaway_database

    with throwaway_database("itr"):
        log(f"building on {connection.vendor} ({connection.settings_dict['NAME']})")
        data = build(args.reviews)
        dataset, pk = data["dataset"], data["dataset"].pk
        client = Client()
        client.force_login(data["lead"])
        baseline = measure(client, f"/api/itr/items/{data['items'][0].pk}/", args.repeat)
        urls = [
            f"/api/itr/{pk}/summary/",
            f"/api/itr/{pk}/export/?set=corrected",
            f"/api/itr/{pk}/export/?set=removed",
            f"/api/itr/{pk}/export/?set=changes",
            f"/api/itr/{pk}/export/?set=changes&format=csv",
            f"/api/itr/{pk}/queue/",
        ]
        results = [measure(client, url, args.repeat) for url in urls]
        functions = {
            "itr_summary": time_call(lambda: itr_summary(dataset), args.repeat),
            "itr_export corrected": time_call(
                lambda: itr_export(dataset, "corrected"), args.repeat
            ),
            "lead_queue (margin)": time_call(lambda: lead_queue(dataset), args.repeat),
        }
        add_signal(dataset)
        signalled = [
            {**measure(client, f"/api/itr/{pk}/queue/", args.repeat), "note": "crowdlab"},
            {**measure(client, f"/api/itr/{pk}/summary/", args.repeat), "note": "with signal"},
        ]
        results += signalled
        functions["lead_queue (crowdlab, cached)"] = time_call(
            lambda: lead_queue(dataset), args.repeat
        )
        summary = itr_summary(dataset)
        report = {
            "database": connection.vendor,
            "items": 4471,
            "test_items": len(data["items"]),
            "reviews": data["reviews"],
            "baseline": baseline,
            "results": results,
            "functions_ms": functions,
            "summary_changes": [summary["text"], summary["image"], summary["both"]],
        }
        print(
            f"{'request':58} {'first':>8} {'median':>8} {'p95':>8} {'queries':>8} "
            f"{'× baseline':>11}"
        )
        for r in [baseline, *results]:
            ratio = r["median_ms"] / baseline["median_ms"]
            name = f"{r['url']} (baseline)" if r is baseline else r["url"]
            if r.get("note"):
                name += f" [{r['note']}]"
            print(
                f"{name:58} {r['first_ms']:>6.1f}ms {r['median_ms']:>6.1f}ms {r['p95_ms']:>6.1f}ms "
                f"{r['queries']:>8} {ratio:>10.1f}×"
            )
        for name, ms in functions.items():
            print(f"{name + ' (no HTTP)':58} {'':>8} {ms:>6.1f}ms")
        print(f"changes by kind (text, image, both): {report['summary_changes']}")
        if args.json:
            print(json.dumps(report))


if __name__ == "__main__":
    main()
