"""The curated selection and export endpoints through the API: the selection answers exactly
what `selection_compute` computes; bad queries and bodies are 400, a targeted sample 409,
annotators 403 and outsiders 404; a queued export answers 202 (the same export for a repeated
request), its detail, and refuses its downloads until it is written. Not transactional: no
task is sent (the worker's part is in test_jobs.py)."""

import json

import pytest

from annotate.validation.curation import parse_rule, selection_compute
from annotate.validation.models import CuratedExport, Sample
from tests.validation.conftest import api_for

pytestmark = pytest.mark.django_db

SELECTION_FIELDS = {
    "rule", "selected", "unvalidated", "per_label", "precision", "precision_low",
    "precision_high", "expected_wrong", "validated", "unvalidated_included",
    "unvalidated_threshold", "left_out", "sample", "run", "resamples", "seed",
}  # fmt: skip
LABEL_FIELDS = {
    "label", "name", "status", "threshold", "selected", "available", "judged", "hits",
    "precision", "precision_low", "precision_high", "best_lower_bound",
}  # fmt: skip
EXPORT_FIELDS = {
    "id", "sample", "run", "status", "format", "rule", "exclude_duplicates", "exclude_suspects",
    "done", "total", "percent", "manifest", "error", "created", "started", "finished",
    "download_url", "manifest_url",
}  # fmt: skip


def selection_url(sample: Sample, query: str) -> str:
    return f"/api/samples/{sample.pk}/selection/?{query}"


def exports_url(sample: Sample) -> str:
    return f"/api/samples/{sample.pk}/exports/"


def expected(sample: Sample, **rule) -> dict:
    """The service's answer, as JSON would carry it."""
    return json.loads(
        json.dumps(selection_compute(sample=sample, rule=parse_rule(**rule)).as_dict())
    )


RULES = [
    ("threshold=0.6", {"threshold": 0.6}),
    ("threshold=0.63", {"threshold": 0.63}),  # off the hundredths grid: counted exactly
    ("target_precision=0.5", {"target_precision": 0.5}),
    ("target_precision=0.9", {"target_precision": 0.9}),  # no label reaches it
    ("threshold=0.6&include_unvalidated=true", {"threshold": 0.6, "include_unvalidated": True}),
]


def test_selection_is_the_service_answer(published, lee) -> None:
    api = api_for(lee)
    for query, rule in RULES:
        response = api.get(selection_url(published.sample, query))
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == SELECTION_FIELDS
        assert all(set(row) == LABEL_FIELDS for row in body["per_label"])
        assert body == expected(published.sample, **rule), query
        assert body["rule"]["kind"] == next(iter(rule))


def test_selection_figures_at_the_published_threshold(published, lee) -> None:
    """θ = 0.6 on the published sample: 270 of its 507 judged items are hits; the 300
    unsampled items (p = 0.5) are below θ, so nothing is unvalidated."""
    body = api_for(lee).get(selection_url(published.sample, "threshold=0.6")).json()
    assert sum(row["judged"] for row in body["per_label"]) == 507
    assert sum(row["hits"] for row in body["per_label"]) == 270
    assert body["unvalidated"] == 0
    assert body["selected"] == body["validated"] == 507
    assert body["precision_low"] <= body["precision"] <= body["precision_high"]
    assert body["expected_wrong"] == pytest.approx((1 - body["precision"]) * 507, abs=0.05)
    # With the unvalidated labels at θ = 0.5: the 300 unsampled predictions count, outside
    # the estimate.
    low = api_for(lee).get(selection_url(published.sample, "threshold=0.5&include_unvalidated=1"))
    assert low.json()["unvalidated"] > 0
    assert low.json()["selected"] == low.json()["validated"] + low.json()["unvalidated"]


BAD_QUERIES = [
    "", "include_unvalidated=true", "threshold=0.6&target_precision=0.9", "threshold=1.5",
    "threshold=-0.1", "target_precision=2", "threshold=abc", "threshold=nan", "threshold=inf",
    "target_precision=", "threshold=0.6&threshold=0.7", "threshold=0.6&include_unvalidated=maybe",
]  # fmt: skip


def test_bad_selection_queries_are_400(small, lee) -> None:
    api = api_for(lee)
    for query in BAD_QUERIES:
        response = api.get(selection_url(small.sample, query))
        assert response.status_code == 400, (query, response.content)
        assert isinstance(response.json(), dict)


def test_threshold_below_the_samples_floor_is_400(small, lee) -> None:
    Sample.objects.filter(pk=small.sample.pk).update(min_probability=0.3)
    response = api_for(lee).get(selection_url(small.sample, "threshold=0.2"))
    assert response.status_code == 400
    assert "min_probability" in response.json()["threshold"][0]


def test_targeted_sample_is_409(small, lee) -> None:
    Sample.objects.filter(pk=small.sample.pk).update(strategy=Sample.Strategy.SUSPECTS)
    response = api_for(lee).get(selection_url(small.sample, "threshold=0.6"))
    assert response.status_code == 409
    assert "targeted" in response.json()["detail"]
    post = api_for(lee).post(exports_url(small.sample), {"threshold": 0.6}, format="json")
    assert post.status_code == 409
    assert not CuratedExport.objects.exists()


def test_annotators_403_outsiders_404(small, ann, otto, ada) -> None:
    assert api_for(ann).get(selection_url(small.sample, "threshold=0.6")).status_code == 403
    assert api_for(otto).get(selection_url(small.sample, "threshold=0.6")).status_code == 404
    assert api_for(ada).get(selection_url(small.sample, "threshold=0.6")).status_code == 200
    assert api_for(ada).get("/api/samples/999999/selection/?threshold=0.6").status_code == 404
    body = {"threshold": 0.6}
    assert api_for(ann).post(exports_url(small.sample), body, format="json").status_code == 403
    assert api_for(otto).post(exports_url(small.sample), body, format="json").status_code == 404
    assert not CuratedExport.objects.exists()


def test_queue_an_export_and_a_repeat_gets_the_same_one(published, lee) -> None:
    api = api_for(lee)
    body = {"target_precision": 0.5, "format": "jsonl", "exclude_suspects": 3}
    response = api.post(exports_url(published.sample), body, format="json")
    assert response.status_code == 202, response.content
    export = response.json()
    assert set(export) == EXPORT_FIELDS
    assert export["status"] == "queued"
    assert export["format"] == "jsonl"
    assert export["rule"] == {
        "kind": "target_precision", "target_precision": 0.5, "include_unvalidated": False,
    }  # fmt: skip
    assert (export["exclude_duplicates"], export["exclude_suspects"]) == (False, 3)
    assert export["sample"] == published.sample.pk
    assert export["run"] == published.run.pk
    assert export["percent"] == 0
    assert export["total"] == expected(published.sample, target_precision=0.5)["selected"]
    assert export["download_url"] is export["manifest_url"] is export["manifest"] is None
    assert export["error"] is None
    again = api.post(exports_url(published.sample), body, format="json")
    assert again.status_code == 202
    assert again.json()["id"] == export["id"]
    other = api.post(exports_url(published.sample), {**body, "format": "csv"}, format="json")
    assert other.json()["id"] != export["id"]
    assert CuratedExport.objects.count() == 2
    stored = CuratedExport.objects.get(pk=export["id"])
    assert stored.created_by == lee
    assert stored.rule == {
        "target_precision": 0.5, "include_unvalidated": False, "exclude_duplicates": False,
        "exclude_suspects": 3,
    }  # fmt: skip
    # Detail; the downloads wait for the worker.
    detail = api.get(f"/api/exports/{export['id']}/")
    assert detail.status_code == 200
    assert detail.json() == export
    for tail in ("file/", "manifest/"):
        waiting = api.get(f"/api/exports/{export['id']}/{tail}")
        assert waiting.status_code == 409
        assert "not ready" in waiting.json()["detail"]
    # Once it is done, a new request makes a new export.
    CuratedExport.objects.filter(pk=export["id"]).update(status=CuratedExport.Status.FAILED)
    assert api.post(exports_url(published.sample), body, format="json").json()["id"] not in (
        export["id"],
        other.json()["id"],
    )


def test_default_body_is_a_csv_without_exclusions(small, lee) -> None:
    body = {"threshold": 0.6, "exclude_duplicates": True}
    refused = api_for(lee).post(exports_url(small.sample), body, format="json")
    assert refused.status_code == 409  # no near-duplicate scan to leave duplicates out by
    assert "duplicates" in refused.json()["detail"]
    response = api_for(lee).post(exports_url(small.sample), {"threshold": 0.6}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["format"] == "csv"
    assert body["rule"] == {"kind": "threshold", "threshold": 0.6, "include_unvalidated": False}
    assert (body["exclude_duplicates"], body["exclude_suspects"]) == (False, 0)


BAD_BODIES = [
    {}, [], "csv", 1, None, {"format": "csv"}, {"threshold": 0.6, "target_precision": 0.9},
    {"threshold": 0.6, "target_precision": None}, {"threshold": "0.6"}, {"threshold": True},
    {"threshold": 1.5}, {"target_precision": -1}, {"threshold": None},
    {"threshold": 0.6, "format": "xlsx"}, {"threshold": 0.6, "format": 1},
    {"threshold": 0.6, "include_unvalidated": "true"}, {"threshold": 0.6, "exclude_duplicates": 1},
    {"threshold": 0.6, "exclude_suspects": -1}, {"threshold": 0.6, "exclude_suspects": 1.5},
    {"threshold": 0.6, "exclude_suspects": "5"}, {"threshold": 0.6, "exclude_suspects": 10**6},
]  # fmt: skip


def test_bad_export_bodies_are_400(small, lee) -> None:
    api = api_for(lee)
    for body in BAD_BODIES:
        response = api.post(exports_url(small.sample), body, format="json")
        assert response.status_code == 400, (body, response.content)
    for raw in ("null", "{threshold", '"5"', "[]"):
        response = api.post(exports_url(small.sample), raw, content_type="application/json")
        assert response.status_code == 400, (raw, response.content)
    assert not CuratedExport.objects.exists()


def test_export_detail_and_downloads_are_for_leads(small, lee, ann, otto) -> None:
    export = CuratedExport.objects.create(sample=small.sample, rule={"threshold": 0.6})
    for tail in ("", "file/", "manifest/"):
        url = f"/api/exports/{export.pk}/{tail}"
        assert api_for(ann).get(url).status_code == 403, url
        assert api_for(otto).get(url).status_code == 404, url
        assert api_for(lee).get(f"/api/exports/999999/{tail}").status_code == 404
    assert api_for(lee).get(f"/api/exports/{export.pk}/").status_code == 200


def test_a_failed_export_tells_admins_why_and_leads_that_it_failed(small, lee, ada) -> None:
    export = CuratedExport.objects.create(
        sample=small.sample, rule={"threshold": 0.6}, status="failed",
        error="OSError: /srv/media is full",
    )  # fmt: skip
    assert api_for(ada).get(f"/api/exports/{export.pk}/").json()["error"] == export.error
    seen = api_for(lee).get(f"/api/exports/{export.pk}/").json()["error"]
    assert "failed" in seen
    assert "/srv" not in seen
    assert api_for(lee).get(f"/api/exports/{export.pk}/file/").status_code == 409
