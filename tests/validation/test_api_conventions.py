"""The API's conventions, through HTTP: one error shape and status per outcome, the same
pagination on every list (at most 1,000 rows), 400 for bad query parameters and deep JSON,
absolute URLs, null for absent values, run errors for admins only, and a schema that
documents all of it."""

import pytest
from django.test import Client

from annotate.validation.models import Verdict
from annotate.validation.sampling import sample_draw
from annotate.validation.services import sample_set_status, verdict_record
from classifier.models import ClassificationRun
from tests.conftest import PASSWORD, login
from tests.validation.conftest import api_for, build_run
from tests.validation.test_annotate_page import current_item, settle

WORKER_TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/sieve/secret.py"'


@pytest.fixture
def sample(run, lee):
    return sample_draw(run=run, classes=2, per_class=3, seed=1, overlap=0, created_by=lee)


@pytest.fixture
def failed_run(run) -> ClassificationRun:
    ClassificationRun.objects.filter(pk=run.pk).update(
        status=ClassificationRun.Status.FAILED, error=WORKER_TRACEBACK
    )
    run.refresh_from_db()
    return run


# ---------------------------------------------------------------- errors


def test_resuming_a_run_that_cannot_resume_is_a_conflict(run, ada) -> None:
    response = api_for(ada).post(f"/api/runs/{run.pk}/resume/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Only cancelled or failed runs can be resumed, not succeeded."
    }


def test_bad_run_parameters_answer_400_by_field(dataset, run, ada) -> None:
    body = {"dataset": dataset.pk, "taxonomy": run.taxonomy.name, "model": "no-such-arch"}
    response = api_for(ada).post("/api/runs/", body)
    assert response.status_code == 400
    assert "model" in response.json()


def test_verdict_conflict_carries_the_verdict_that_stays(sample, ann) -> None:
    item = sample.items.first()
    first, _ = verdict_record(sample_item=item, annotator=ann, value="hit")
    response = api_for(ann).post("/api/verdicts/", {"sample_item": item.pk, "value": "miss"})
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "verdict"}
    assert body["verdict"]["id"] == first.pk


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_annotation_page_says_the_sample_was_closed(live_server, run, ann, page) -> None:
    """A 409 without a verdict (the sample closed meanwhile) is reported, not taken for an
    item judged before."""
    sample = sample_draw(run=run, classes=1, per_class=3, seed=4, overlap=0)
    login(page, live_server, "ann")
    page.goto(f"{live_server.url}/samples/{sample.pk}/annotate/")
    item = current_item(page)
    sample_set_status(sample=sample, status="closed")  # by a lead, in another tab
    page.keyboard.press("h")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent"
        ".includes('Not saved: the sample is closed')"
    )
    assert current_item(page) == item
    assert not Verdict.objects.exists()
    settle(page)


def test_drawing_from_an_unfinished_run_is_a_conflict(run, lee) -> None:
    ClassificationRun.objects.filter(pk=run.pk).update(status=ClassificationRun.Status.RUNNING)
    response = api_for(lee).post(f"/api/runs/{run.pk}/samples/", {"classes": 2})
    assert response.status_code == 409
    assert "finished" in response.json()["detail"]


def test_bodies_take_only_their_json_types(run, lee) -> None:
    url = f"/api/runs/{run.pk}/samples/"
    for body in ({"blind": 0}, {"classes": "2"}, {"overlap": "0.5"}, {"blind": "true"}):
        response = api_for(lee).post(url, body)
        assert response.status_code == 400, body


def test_deeply_nested_json_answers_400(lee) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for url in ("/api/verdicts/", "/api/runs/", "/api/auth/token/"):
        response = api_for(lee).generic("POST", url, deep, content_type="application/json")
        assert response.status_code == 400, url
        assert "nested" in response.json()["detail"]


def test_unknown_api_paths_answer_json_404(lee) -> None:
    for path in ("/api/nothing/", "/api/runs/abc/", "/api/samples/-1/items/"):
        response = api_for(lee).get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"


def test_errors_of_a_csv_export_are_json(sample, ann) -> None:
    response = api_for(ann).get(f"/api/samples/{sample.pk}/verdicts/?format=csv")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


# ---------------------------------------------------------------- lists and query parameters


@pytest.mark.parametrize(
    "path",
    ["/api/datasets/", "/api/runs/", "/api/samples/", "/api/runs/{run}/samples/",
     "/api/samples/{sample}/items/", "/api/datasets/{dataset}/items/"],
)  # fmt: skip
def test_every_list_is_paginated_and_capped(path, dataset, run, sample, lee) -> None:
    url = path.format(run=run.pk, sample=sample.pk, dataset=dataset.pk)
    page = api_for(lee).get(url).json()
    assert set(page) == {"count", "next", "previous", "results"}
    huge = api_for(lee).get(url + "?limit=99999999999999999999")
    assert huge.status_code == 200
    assert len(huge.json()["results"]) == min(huge.json()["count"], 1000)
    for bad in ("limit=abc", "limit=0", "offset=null", "offset=-1", "limit=1&limit=2"):
        response = api_for(lee).get(f"{url}?{bad}")
        assert response.status_code == 400, bad


def test_a_page_holds_at_most_1000_rows(dataset, taxonomy, lee) -> None:
    big = build_run(dataset, taxonomy, [1200], prefix="big")
    sample = sample_draw(run=big, classes=1, per_class=1200, seed=1, overlap=0)
    page = api_for(lee).get(f"/api/samples/{sample.pk}/items/?limit=5000").json()
    assert page["count"] == 1200
    assert len(page["results"]) == 1000
    assert "limit=1000" in page["next"]


@pytest.mark.parametrize(
    "path",
    ["/api/runs/?dataset=x", "/api/runs/?status=AAA", "/api/runs/?dataset=",
     "/api/runs/{run}/labels/?limit=abc", "/api/runs/{run}/labels/?limit=401",
     "/api/samples/{sample}/thresholds/?step=", "/api/samples/{sample}/thresholds/?step=abc",
     "/api/samples/{sample}/thresholds/?step=0", "/api/samples/{sample}/next/?exclude=",
     "/api/samples/{sample}/next/?exclude=1,x", "/api/samples/{sample}/verdicts/?format=",
     "/api/datasets/{dataset}/items/?status=AAA"],
)  # fmt: skip
def test_bad_query_parameters_answer_400(path, dataset, run, sample, lee) -> None:
    url = path.format(run=run.pk, sample=sample.pk, dataset=dataset.pk)
    response = api_for(lee).get(url)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"


def test_good_query_parameters_filter(dataset, run, sample, lee) -> None:
    api = api_for(lee)
    runs = api.get(f"/api/runs/?dataset={dataset.pk}&status=succeeded").json()
    assert [r["id"] for r in runs["results"]] == [run.pk]
    assert api.get("/api/runs/?status=failed").json()["count"] == 0
    first = api.get(f"/api/samples/{sample.pk}/next/").json()["id"]
    second = api.get(f"/api/samples/{sample.pk}/next/?exclude={first}").json()["id"]
    assert second != first


# ---------------------------------------------------------------- values


def test_urls_are_absolute_and_absent_values_null(run, sample, ann, lee) -> None:
    item = api_for(ann).get(f"/api/samples/{sample.pk}/next/").json()
    assert item["image_url"] == f"http://testserver/items/{item['item']}/image/"
    assert item["thumbnail_url"].startswith(f"http://testserver/items/{item['item']}/thumbnail/")
    detail = api_for(ann).get(f"/api/runs/{run.pk}/").json()
    assert detail["url"] == f"http://testserver/runs/{run.pk}/"
    assert detail["weights"] is None
    assert detail["error"] is None
    created = api_for(ann).post("/api/verdicts/", {"sample_item": item["id"], "value": "hit"})
    assert created.json()["key"] is None
    assert created.json()["corrected_label"] is None
    rows = api_for(lee).get(f"/api/samples/{sample.pk}/verdicts/?format=json").json()
    assert rows[0]["corrected_label"] is None


def test_empty_csv_export_still_has_its_header(sample, lee) -> None:
    response = api_for(lee).get(f"/api/samples/{sample.pk}/verdicts/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().startswith("id,sample_item,position,external_id,label")


def test_run_errors_are_for_admins_of_the_dataset(failed_run, ada, lee, ann) -> None:
    assert api_for(ada).get(f"/api/runs/{failed_run.pk}/").json()["error"] == WORKER_TRACEBACK
    for user in (lee, ann):
        detail = api_for(user).get(f"/api/runs/{failed_run.pk}/").json()
        assert detail["error"] == "The run failed; an admin can see why."
        listed = api_for(user).get("/api/runs/").json()["results"]
        assert "secret.py" not in str(listed)
    for username, shown in (("ada", True), ("lee", False)):
        client = Client()
        client.login(username=username, password=PASSWORD)
        page = client.get(f"/runs/{failed_run.pk}/").content.decode()
        assert ("secret.py" in page) is shown
        assert ("an admin can see why" in page) is not shown


# ---------------------------------------------------------------- the schema


def test_schema_documents_responses_and_error_codes(lee) -> None:
    schema = api_for(lee).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    resume = paths["/api/runs/{id}/resume/"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409"} <= set(resume)
    verdict = paths["/api/verdicts/"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "404", "409"} <= set(verdict)
    samples = paths["/api/samples/"]["get"]
    assert samples["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedSampleList"
    }
    assert {p["name"] for p in samples["parameters"]} == {"limit", "offset"}
    coverage = schema["components"]["schemas"]["CoverageRow"]["properties"]
    assert set(coverage) == {"threshold", "classified", "percent"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                for content in response.get("content", {}).values():
                    assert content["schema"] != {"type": "object"}, (path, method, code)
