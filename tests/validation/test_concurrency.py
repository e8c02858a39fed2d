"""Concurrent annotators, through the REST API, on real threads and real transactions.

On PostgreSQL this exercises SELECT ... FOR UPDATE SKIP LOCKED and the item row locks of the
verdict service; on SQLite, IMMEDIATE transactions serialize the writers."""

import threading
from collections import Counter

import pytest
from django.db import connection

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from annotate.validation.models import SampleItem, Verdict
from annotate.validation.sampling import sample_draw
from tests.conftest import make_user
from tests.validation.conftest import api_for

ANNOTATORS = 20


def run_threads(target, args_list) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapped(*args) -> None:
        try:
            target(*args)
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=wrapped, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return errors


def annotate_all(sample, users) -> Counter:
    """Every user asks for items and judges them until nothing is left for them."""
    clients = {u.username: api_for(u) for u in users}
    given: Counter = Counter()
    lock = threading.Lock()

    def work(username: str) -> None:
        client = clients[username]
        seen = set()
        while True:
            response = client.get(f"/api/samples/{sample.pk}/next/")
            if response.status_code == 204:
                return
            assert response.status_code == 200, response.content
            item = response.json()["id"]
            assert item not in seen, "an item came back to the same annotator"
            seen.add(item)
            value = "hit" if item % 3 else "miss"
            verdict = client.post(
                "/api/verdicts/",
                {"sample_item": item, "value": value, "key": f"{username}-{item}"},
                format="json",
            )
            assert verdict.status_code == 201, verdict.content
            with lock:
                given[item] += 1

    errors = run_threads(work, [(u.username,) for u in users])
    assert not errors, errors[:3]
    return given


@pytest.fixture
def crowd(dataset) -> list:
    users = [make_user(f"worker{i:02d}") for i in range(ANNOTATORS)]
    for user in users:
        membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)
    return users


def assert_exact(sample, given: Counter) -> None:
    items = SampleItem.objects.filter(sample=sample)
    wanted = dict(items.values_list("pk", "wanted_verdicts"))
    counted = dict(items.values_list("pk", "verdict_count"))
    verdicts = Verdict.objects.filter(sample_item__sample=sample)
    rows = Counter(verdicts.values_list("sample_item", flat=True))
    assert rows == Counter(wanted) == given  # none lost, none doubled
    assert counted == wanted
    pairs = list(verdicts.values_list("sample_item", "annotator"))
    assert len(set(pairs)) == len(pairs)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redundancy", [1, 2])
def test_twenty_annotators_on_a_thousand_items(run, crowd, redundancy) -> None:
    sample = sample_draw(run=run, classes=10, per_class=100, seed=5, redundancy=redundancy)
    assert sample.items.count() == 1000
    given = annotate_all(sample, crowd)
    assert_exact(sample, given)
    assert sum(given.values()) == (1100 if redundancy == 1 else 2000)  # 10% overlap
    by_user = Counter(Verdict.objects.values_list("annotator__username", flat=True))
    assert len(by_user) == ANNOTATORS  # the work was really shared


@pytest.mark.django_db(transaction=True)
def test_same_submission_ten_times_concurrently_leaves_one_row(run, ann) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1, overlap=0)
    first, second = sample.items.order_by("position").values_list("pk", flat=True)
    client = api_for(ann)
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def submit(body: dict) -> None:
        barrier.wait()
        statuses.append(client.post("/api/verdicts/", body, format="json").status_code)

    body = {"sample_item": first, "value": "hit", "key": "same-key"}
    assert not run_threads(submit, [(body,)] * 10)
    assert sorted(statuses) == [200] * 9 + [201]
    # Without a key the repeats are conflicts, and still only one row is written.
    statuses.clear()
    body = {"sample_item": second, "value": "miss"}
    assert not run_threads(submit, [(body,)] * 10)
    assert sorted(statuses) == [201] + [409] * 9
    assert Verdict.objects.count() == 2
    assert dict(SampleItem.objects.values_list("pk", "verdict_count")) == {first: 1, second: 1}


@pytest.mark.django_db(transaction=True)
def test_one_key_raced_on_ten_items_is_recorded_once(run, ann) -> None:
    sample = sample_draw(run=run, classes=1, per_class=10, seed=1, overlap=0)
    items = list(sample.items.values_list("pk", flat=True))
    client = api_for(ann)
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def submit(item: int) -> None:
        barrier.wait()
        body = {"sample_item": item, "value": "hit", "key": "one-key"}
        statuses.append(client.post("/api/verdicts/", body, format="json").status_code)

    assert not run_threads(submit, [(i,) for i in items])
    assert sorted(statuses) == [201] + [409] * 9
    assert Verdict.objects.count() == 1
    assert sum(SampleItem.objects.values_list("verdict_count", flat=True)) == 1
