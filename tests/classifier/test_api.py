"""REST API for runs: who may read, start and cancel; the coverage contract."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from annotate.datasets.models import Dataset, Item
from classifier.models import ClassificationRun, RunChunk
from classifier.services import run_import_predictions
from tests.conftest import PASSWORD


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def imported_run(dataset, taxonomy) -> ClassificationRun:
    """A run of 10 items: probabilities 0.05, 0.15, ... 0.95 on two labels."""
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{n}", image_path=f"i{n}.jpg") for n in range(10)
    )
    label = {n: "beach" if n < 7 else "/k/kitchen" for n in range(10)}
    rows = [(f"i{n}", label[n], f"{n / 10 + 0.05:.2f}") for n in range(10)]
    run, skipped = run_import_predictions(dataset=dataset, taxonomy=taxonomy, rows=rows)
    assert not skipped
    return run


def test_coverage_rows(imported_run, lee) -> None:
    body = client_for("lee").get(f"/api/runs/{imported_run.pk}/coverage/").json()
    rows = body["rows"]
    assert [r["threshold"] for r in rows] == [round(i / 10, 1) for i in range(11)]
    assert rows[0] == {"threshold": 0.0, "classified": 10, "percent": 100.0}
    assert rows[5] == {"threshold": 0.5, "classified": 5, "percent": 50.0}
    assert rows[10] == {"threshold": 1.0, "classified": 0, "percent": 0.0}


def test_members_read_outsiders_get_404(imported_run, ann, otto) -> None:
    detail = client_for("ann").get(f"/api/runs/{imported_run.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["progress"]["predicted"] == 10
    assert detail["source"] == "import"
    assert [r["id"] for r in client_for("ann").get("/api/runs/").json()["results"]] == [
        imported_run.pk
    ]
    outsider = client_for("otto")
    assert outsider.get(f"/api/runs/{imported_run.pk}/").status_code == 404
    assert outsider.get(f"/api/runs/{imported_run.pk}/coverage/").status_code == 404
    assert outsider.get("/api/runs/").json()["results"] == []


def test_label_distribution(imported_run, lee) -> None:
    rows = client_for("lee").get(f"/api/runs/{imported_run.pk}/labels/").json()["rows"]
    assert [(r["name"], r["count"]) for r in rows] == [("beach", 7), ("kitchen", 3)]


def test_only_admins_start_and_cancel(dataset, taxonomy, ada, lee, otto, settings) -> None:
    # Not a transactional test: on_commit never fires, so nothing reaches the broker.
    Item.objects.create(dataset=dataset, external_id="a.jpg", image_path="a.jpg")
    checkpoint = settings.SIEVE_MODEL_ROOTS[0] / "w.pt"  # checkpoints load only from there
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    payload = {"dataset": dataset.pk, "taxonomy": taxonomy.name, "model": "sieve-tiny",
               "weights": str(checkpoint), "ensemble": "weighted"}  # fmt: skip
    assert client_for("lee").post("/api/runs/", payload, "application/json").status_code == 403
    assert client_for("otto").post("/api/runs/", payload, "application/json").status_code == 404
    token = Token.objects.create(user=ada).key
    admin = Client(HTTP_AUTHORIZATION=f"Token {token}")
    created = admin.post("/api/runs/", payload, "application/json")
    assert created.status_code == 201, created.content
    run = ClassificationRun.objects.get(pk=created.json()["id"])
    assert (run.ensemble, run.w_img, run.status, run.created_by) == ("weighted", 0.8, "queued", ada)
    assert run.chunks.count() == 1

    assert client_for("lee").post(f"/api/runs/{run.pk}/cancel/").status_code == 403
    cancelled = admin.post(f"/api/runs/{run.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert run.chunks.get().status == RunChunk.Status.CANCELLED
    resumed = admin.post(f"/api/runs/{run.pk}/resume/")
    assert resumed.json()["status"] == "queued"
    assert run.chunks.get().status == RunChunk.Status.QUEUED


def test_start_rejects_bad_input(dataset, taxonomy, ada, settings) -> None:
    admin = client_for("ada")
    bad = admin.post(
        "/api/runs/",
        {"dataset": dataset.pk, "taxonomy": taxonomy.name, "weights": "/nowhere/model.pt"},
        "application/json",
    )
    assert bad.status_code == 400
    assert "Checkpoint not found" in str(bad.json())
    missing = {"dataset": dataset.pk, "taxonomy": "nope"}
    assert admin.post("/api/runs/", missing, "application/json").status_code == 404
    bad = admin.post(
        "/api/runs/", {"dataset": dataset.pk, "taxonomy": taxonomy.name, "w_img": 3},
        "application/json",
    )  # fmt: skip
    assert bad.status_code == 400
    checkpoint = settings.SIEVE_MODEL_ROOTS[0] / "w.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    other = Dataset.objects.create(name="other")
    assert admin.post("/api/runs/", {"dataset": other.pk, "taxonomy": taxonomy.name,
                                     "model": "sieve-tiny", "weights": str(checkpoint)},
                      "application/json").status_code == 201  # fmt: skip


def test_session_post_needs_csrf(dataset, taxonomy, ada) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="ada", password=PASSWORD)
    response = client.post("/api/runs/", {"dataset": dataset.pk, "taxonomy": taxonomy.name})
    assert response.status_code == 403


def test_run_list_queries_do_not_grow_with_runs(
    imported_run, dataset, taxonomy, lee, django_assert_max_num_queries
) -> None:
    client = client_for("lee")
    client.get("/api/runs/")  # warm the session
    with django_assert_max_num_queries(12) as few:
        client.get("/api/runs/")
    for _ in range(5):
        run_import_predictions(dataset=dataset, taxonomy=taxonomy, rows=[("i1", "beach", "0.5")])
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get("/api/runs/").json()
    assert body["count"] == 6
