"""Benchmark: drawing a sample from 1,000,000 predictions, and 20 concurrent annotators.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/annotate.py [--predictions 1000000]
        [--annotators 20] [--items-per-class 100] [--workers 2] [--threads 8] [--json]

Builds, in a throwaway database (`bench_annotate_<name>`, dropped at the end), a dataset of N
items and one run of N predictions over 365 labels (Zipf-like frequencies), both written with
PostgreSQL COPY. Then:

1. sampling: `sample_draw` (10 labels x 100) timed three times, against a baseline measured in
   the same run: the naive draw, `row_number() OVER (PARTITION BY label ORDER BY random())`
   over the whole run;
2. annotation: the app is served by gunicorn on loopback (by default 3 single-threaded workers,
   as in compose.yaml: threads in one worker share the GIL, which inflates server-side time on
   a 2-core machine; `--threads 8` shows that), persistent DB
   connections, DEBUG off), and `--annotators` threads, each with its own token and keep-alive
   connection, loop `GET /api/samples/{id}/next/` -> `POST /api/verdicts/` until the
   1,000-item sample is done. Latency is reported client-side (includes queueing for a worker
   on this small machine) and server-side (gunicorn's own request time, `%(M)s`), with
   `GET /api/samples/{id}/` as the baseline request. At the end every item must have exactly
   its wanted verdicts.
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def copy_rows(table: str, columns: list[str], rows) -> None:
    from django.db import connection

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def build(n: int, annotators: int) -> dict:
    import numpy as np
    from django.contrib.auth.models import User
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotate.datasets.access import membership_set
    from annotate.datasets.models import Dataset, Item, Role
    from annotate.taxonomies.models import Label, Taxonomy
    from classifier.models import ClassificationRun, Prediction

    rng = np.random.default_rng(7)
    lead = User.objects.create_user("lead", password="x")
    users = [User.objects.create_user(f"annotator{i:02d}", password="x") for i in range(annotators)]
    dataset = Dataset.objects.create(name="bench", image_root="/tmp")
    membership_set(dataset=dataset, user=lead, role=Role.LEAD)
    for user in users:
        membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)
    tokens = {u.username: Token.objects.create(user=u).key for u in [lead, *users]}
    taxonomy = Taxonomy.objects.create(name="places365")
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=f"/x/label{i:03d}", name=f"label {i}", position=i)
        for i in range(365)
    )
    label_ids = np.array(Label.objects.filter(taxonomy=taxonomy).values_list("id", flat=True))

    started = time.perf_counter()
    copy_rows(
        Item._meta.db_table,
        ["dataset_id", "external_id", "image_path", "caption", "metadata", "status",
         "status_reason", "image_format"],
        ((dataset.pk, f"{i:07d}.jpg", f"{i:07d}.jpg", f"caption {i}", "{}", "ok", "", "")
         for i in range(n)),
    )  # fmt: skip
    items = Item.objects.filter(dataset=dataset).order_by("id")
    item_ids = np.array(items.values_list("id", flat=True))
    log(f"{n} items in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, name="bench", status="succeeded", ensemble="external"
    )
    weights = 1 / np.arange(1, 366) ** 1.1
    labels = rng.choice(len(label_ids), size=n, p=weights / weights.sum())
    probabilities = rng.beta(2, 2, size=n)
    copy_rows(
        Prediction._meta.db_table,
        ["run_id", "item_id", "label_id", "probability", "top5"],
        ((run.pk, int(i), int(label_ids[k]), float(p), "[]")
         for i, k, p in zip(item_ids, labels, probabilities, strict=True)),
    )  # fmt: skip
    with connection.cursor() as cursor:
        for model in (Item, Prediction):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    log(f"{n} predictions in {time.perf_counter() - started:.1f} s")
    return {"run": run, "lead": lead, "tokens": tokens, "users": [u.username for u in users]}


def time_sampling(run) -> dict:
    from django.db import connection

    from annotate.validation.models import Sample
    from annotate.validation.sampling import sample_draw

    # What issue 4 rules out: every prediction of the run sorted by random().
    naive = """
        SELECT id FROM (
          SELECT p.id, p.label_id,
                 row_number() OVER (PARTITION BY p.label_id ORDER BY random()) AS r
          FROM classifier_prediction p WHERE p.run_id = %s) s
        WHERE r <= 100 AND label_id IN (
          SELECT label_id FROM classifier_prediction WHERE run_id = %s
          GROUP BY label_id ORDER BY count(*) DESC LIMIT 10)"""
    baseline = []
    for _ in range(3):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(naive, [run.pk, run.pk])
            assert len(cursor.fetchall()) == 1000
        baseline.append(time.perf_counter() - started)
    draws = []
    for seed in range(3):
        started = time.perf_counter()
        sample = sample_draw(run=run, seed=seed)
        draws.append(time.perf_counter() - started)
        assert sample.items.count() == 1000
    Sample.objects.all().delete()
    return {"sample_draw_s": draws, "naive_order_by_random_s": baseline}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(conn, method: str, path: str, token: str, body: dict | None = None):
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    return response.status, payload, (time.perf_counter() - started) * 1000


def simulate(
    port: int, sample_id: int, tokens: dict, users: list[str], baseline_n: int, think_ms: float
) -> dict:
    latencies = {"next": [], "verdict": [], "baseline": []}
    lock = threading.Lock()
    errors: list[str] = []

    next_url = f"/api/samples/{sample_id}/next/"

    def annotator(name: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        rnd = random.Random(name)
        try:
            while True:
                status, body, ms = request(conn, "GET", next_url, tokens[name])
                with lock:
                    latencies["next"].append(ms)
                if status == 204:
                    return
                if status != 200:
                    errors.append(f"next {status} {body[:200]!r}")
                    return
                item = json.loads(body)["id"]
                if think_ms:  # looking at the image
                    time.sleep(think_ms * rnd.uniform(0.5, 1.5) / 1000)
                verdict = {"sample_item": item, "value": rnd.choice(["hit", "hit", "miss"]),
                           "key": f"{name}-{item}"}  # fmt: skip
                status, body, ms = request(conn, "POST", "/api/verdicts/", tokens[name], verdict)
                with lock:
                    latencies["verdict"].append(ms)
                if status != 201:
                    errors.append(f"verdict {status} {body[:200]!r}")
                    return
        finally:
            conn.close()

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(baseline_n):  # baseline: one light authenticated GET, nobody else busy
        status, _, ms = request(conn, "GET", f"/api/samples/{sample_id}/", tokens["lead"])
        assert status == 200, status
        latencies["baseline"].append(ms)
    conn.close()
    started = time.perf_counter()
    threads = [threading.Thread(target=annotator, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit("errors: " + "; ".join(errors[:5]))
    return {"latencies": latencies, "elapsed_s": elapsed}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1) if values else None,
        "p95_ms": round(pct(values, 0.95), 1) if values else None,
    }


def server_times(log_path: Path) -> dict:
    """gunicorn access log lines `METHOD PATH STATUS MS`."""
    times: dict[str, list[float]] = {"next": [], "verdict": [], "baseline": []}
    for line in log_path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, _, ms = parts
        if path.endswith("/next/"):
            times["next"].append(float(ms))
        elif path == "/api/verdicts/" and method == "POST":
            times["verdict"].append(float(ms))
        elif path.startswith("/api/samples/"):
            times["baseline"].append(float(ms))
    return {k: summary(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items-per-class", type=int, default=100)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--think-ms", type=float, default=500, help="mean time an annotator looks (0: stress)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    setup_test_environment()
    connection.settings_dict.setdefault("TEST", {})
    connection.settings_dict["TEST"]["NAME"] = f"bench_annotate_{connection.settings_dict['NAME']}"
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = None
    try:
        s = connection.settings_dict
        db_url = (
            f"postgres://{s['USER'] or 'postgres'}"
            f"{':' + s['PASSWORD'] if s['PASSWORD'] else ''}"
            f"@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
        )
        log(f"building on {s['NAME']}")
        data = build(args.predictions, args.annotators)
        sampling = time_sampling(data["run"])
        log(f"sample_draw: {[round(x, 3) for x in sampling['sample_draw_s']]} s")

        from annotate.validation.models import SampleItem, Verdict
        from annotate.validation.sampling import sample_draw

        sample = sample_draw(run=data["run"], seed=1, per_class=args.items_per_class)
        connection.close()  # the server's connections only, from here on

        port = free_port()
        access_log = Path(tempfile.mkdtemp()) / "access.log"
        env = dict(os.environ, DATABASE_URL=db_url, DEBUG="0", SECRET_KEY="bench-" + "x" * 40,
                   ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0", DB_CONN_MAX_AGE="600",
                   LOG_LEVEL="WARNING")  # fmt: skip
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "annotate.wsgi",
             "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
             "--workers", str(args.workers), "--threads", str(args.threads),
             "--access-logfile", str(access_log),
             "--access-logformat", "%(m)s %(U)s %(s)s %(M)s"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        log(f"serving on 127.0.0.1:{port}; {args.annotators} annotators at work")
        sim = simulate(
            port, sample.pk, data["tokens"], data["users"], baseline_n=50, think_ms=args.think_ms
        )
        time.sleep(0.5)  # let gunicorn flush its access log
        server_side = server_times(access_log)

        wanted = dict(SampleItem.objects.filter(sample=sample).values_list("pk", "wanted_verdicts"))
        got: dict[int, int] = {}
        verdicts = Verdict.objects.filter(sample_item__sample=sample)
        for item in verdicts.values_list("sample_item", flat=True):
            got[item] = got.get(item, 0) + 1
        # One annotator cannot give an item two verdicts.
        exact = got == {k: min(v, args.annotators) for k, v in wanted.items()}
        client_side = {k: summary(v) for k, v in sim["latencies"].items()}
        result = {
            "predictions": args.predictions,
            "sample_draw_s": round(min(sampling["sample_draw_s"]), 3),
            "naive_order_by_random_s": round(min(sampling["naive_order_by_random_s"]), 3),
            "annotators": args.annotators,
            "think_ms": args.think_ms,
            "verdicts": sum(got.values()),
            "elapsed_s": round(sim["elapsed_s"], 2),
            "verdicts_per_s": round(sum(got.values()) / sim["elapsed_s"], 1),
            "exact_verdict_counts": exact,
            "client_side": client_side,
            "server_side": server_side,
            "gunicorn": f"gthread {args.workers} workers x {args.threads} threads",
            "cpus": os.cpu_count(),
        }
        draw, naive = result["sample_draw_s"], result["naive_order_by_random_s"]
        print(f"sampling 10 x 100 from {args.predictions:,} predictions: sample_draw {draw:.3f} s"
              f" | naive ORDER BY random() {naive:.3f} s ({naive / draw:.1f}x slower)")  # fmt: skip
        print(f"{args.annotators} annotators (think {args.think_ms:.0f} ms): "
              f"{result['verdicts']} verdicts in {result['elapsed_s']} s "
              f"({result['verdicts_per_s']}/s); exact counts: {exact}")  # fmt: skip
        print(
            f"{'request':10} {'client p50':>11} {'p95':>8} {'server p50':>11} {'p95':>8} {'n':>6}"
        )
        base = server_side["baseline"]["p50_ms"] or 1
        for name in ("baseline", "next", "verdict"):
            c, sv = client_side[name], server_side[name]
            ratio = (sv["p50_ms"] or 0) / base
            print(f"{name:10} {c['p50_ms']:>9}ms {c['p95_ms']:>6}ms {sv['p50_ms']:>9}ms "
                  f"{sv['p95_ms']:>6}ms {c['n']:>6}  ({ratio:.1f}x baseline)")  # fmt: skip
        if args.json:
            print(json.dumps(result))
        if not exact:
            raise SystemExit("verdict counts are not exact")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
