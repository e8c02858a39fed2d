"""What the benchmarks share: a throwaway database next to the configured one, and timing a
GET through Django's test client."""

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def throwaway_database(name: str) -> Iterator[None]:
    """Run the body on a fresh database (`bench_<name>_<db>` on PostgreSQL, a file under var/
    on SQLite), created with the project's migrations and dropped afterwards. Call after
    `django.setup()`."""
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings_dict = connection.settings_dict
    settings_dict.setdefault("TEST", {})
    settings_dict["TEST"]["NAME"] = (
        f"bench_{name}_{settings_dict['NAME']}"
        if connection.vendor == "postgresql"
        else str(ROOT / "var" / f"bench_{name}.sqlite3")
    )
    old_name = settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def measure(client, url: str, repeat: int) -> dict:
    """GET `url` through the full middleware: the first (cold) request, then the median and
    95th percentile of `repeat` requests after a warm-up, the queries of one more, its size."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started = time.perf_counter()
    client.get(url)  # cold: caches filled, libraries imported
    first = (time.perf_counter() - started) * 1000
    client.get(url)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        status = client.get(url).status_code
    timings.sort()
    return {
        "url": url,
        "status": status,
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[min(len(timings) - 1, int(0.95 * len(timings)))], 1),
        "first_ms": round(first, 1),
        "queries": len(ctx.captured_queries),
        "bytes": len(response.content),
    }


def bench_members_and_labels(n_labels: int = 365) -> tuple:
    """The set-up the dashboard and explorer benchmarks share: a lead and three annotators
    of a dataset "bench", and a taxonomy of `n_labels` labels. Returns (lead, annotators,
    dataset, taxonomy, label ids in position order)."""
    from django.contrib.auth.models import User

    from annotate.datasets.access import membership_set
    from annotate.datasets.models import Dataset, Role
    from annotate.taxonomies.models import Label, Taxonomy

    lead = User.objects.create_user("lead", password="x")
    annotators = [User.objects.create_user(f"annotator{i}", password="x") for i in range(3)]
    dataset = Dataset.objects.create(name="bench", image_root="/tmp")
    membership_set(dataset=dataset, user=lead, role=Role.LEAD)
    for annotator in annotators:
        membership_set(dataset=dataset, user=annotator, role=Role.ANNOTATOR)
    taxonomy = Taxonomy.objects.create(name="places365")
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=f"/x/label{i:03d}", name=f"label {i}", position=i)
        for i in range(n_labels)
    )
    labels = Label.objects.filter(taxonomy=taxonomy).order_by("position")
    return lead, annotators, dataset, taxonomy, list(labels.values_list("id", flat=True))
