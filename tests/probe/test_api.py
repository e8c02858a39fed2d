"""`POST /api/runs/{id}/probe/` on the demo (its run has verdicts on 160 items): who may ask,
what it refuses (409) and rejects (400), one pending probe at a time, and the run JSON with
`parent` and `probe`. Not transactional: nothing is sent to a worker (the queued probes roll
back with the test); training itself is tested through the command."""

import pytest
from django.contrib.auth.models import User

from annotate.taxonomies.models import Label, Taxonomy
from classifier.models import ClassificationRun
from tests.conftest import make_user
from tests.validation.conftest import api_for

pytestmark = [pytest.mark.django_db, pytest.mark.torch]


def demo_user(name: str) -> User:
    return User.objects.get(username=name)


def other_run(demo, **fields) -> ClassificationRun:
    """A finished run on the demo dataset, made to be refused: `source="import"`, a status, or
    a taxonomy of its own (no verdicts)."""
    values = {
        "dataset": demo.dataset, "taxonomy": demo.run.taxonomy, "model": demo.run.model,
        "weights": demo.run.weights, "status": ClassificationRun.Status.SUCCEEDED,
        "item_count": demo.run.item_count,
    } | fields  # fmt: skip
    return ClassificationRun.objects.create(**values)


def unjudged_taxonomy() -> Taxonomy:
    taxonomy = Taxonomy.objects.create(name="unjudged")
    Label.objects.create(taxonomy=taxonomy, key="/u/one", name="one", position=0)
    return taxonomy


def url(run: ClassificationRun) -> str:
    return f"/api/runs/{run.pk}/probe/"


def test_lead_queues_a_probe_and_a_repeat_gets_the_same_one(demo_storage) -> None:
    demo = demo_storage
    lead = api_for(demo_user("lead"))
    response = lead.post(url(demo.run), {"folds": 4, "seed": 7}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["source"] == "probe"
    assert body["parent"] == demo.run.pk
    assert body["status"] == "queued"
    assert body["created_by"] == "lead"
    assert body["probe"]["folds"] == 4
    assert body["probe"]["seed"] == 7
    assert body["probe"]["progress"] == {"phase": "queued", "done": 0, "total": 1}
    assert body["probe"]["cross_validated_accuracy"] is None  # not trained yet
    again = lead.post(url(demo.run), format="json")  # no body: the defaults
    assert again.status_code == 202
    assert again.json()["id"] == body["id"]
    assert demo.run.probes.count() == 1
    # The run JSON everywhere: the probe's own, the list, the parent's (no probe of its own).
    detail = lead.get(f"/api/runs/{body['id']}/").json()
    assert detail["parent"] == demo.run.pk
    assert detail["probe"]["folds"] == 4
    listed = {run["id"]: run for run in lead.get("/api/runs/?limit=50").json()["results"]}
    assert listed[body["id"]]["probe"]["seed"] == 7
    parent = lead.get(f"/api/runs/{demo.run.pk}/").json()
    assert parent["parent"] is None
    assert parent["probe"] is None
    assert parent["source"] == "model"


def test_admins_may_annotators_may_not_outsiders_see_nothing(demo_storage) -> None:
    demo = demo_storage
    assert api_for(demo_user("admin")).post(url(demo.run), format="json").status_code == 202
    answer = api_for(demo_user("annotator1")).post(url(demo.run), format="json")
    assert answer.status_code == 403
    assert "leads and admins" in answer.json()["detail"]
    outsider = api_for(make_user("charlie"))
    assert outsider.post(url(demo.run), format="json").status_code == 404
    assert api_for(demo_user("lead")).post("/api/runs/999999/probe/").status_code == 404
    assert not demo.run.probes.filter(created_by__username="annotator1").exists()


@pytest.mark.parametrize(
    "body",
    [
        [], [1], "folds", 5, True,
        {"folds": "5"}, {"folds": 5.0}, {"folds": True}, {"folds": None},
        {"folds": 2}, {"folds": 21}, {"seed": -1}, {"seed": 2**31}, {"seed": 1.5},
        {"seed": "0"},
    ],
)  # fmt: skip
def test_bad_bodies_are_400(demo_storage, body) -> None:
    demo = demo_storage
    response = api_for(demo_user("lead")).post(url(demo.run), body, format="json")
    assert response.status_code == 400, (body, response.content)
    assert not demo.run.probes.exists()


@pytest.mark.parametrize("raw", ["null", "{folds", '"5"', "[]"])
def test_a_body_that_is_not_a_json_object_is_400(demo_storage, raw) -> None:
    demo = demo_storage
    lead = api_for(demo_user("lead"))
    response = lead.post(url(demo.run), raw, content_type="application/json")
    assert response.status_code == 400, (raw, response.content)


def test_too_few_verdicts_is_409_with_the_reason(demo_storage) -> None:
    demo = demo_storage
    run = other_run(demo, taxonomy=unjudged_taxonomy())
    response = api_for(demo_user("lead")).post(url(run), format="json")
    assert response.status_code == 409
    assert "at least 20 items" in response.json()["detail"]
    assert "there are 0" in response.json()["detail"]


def test_imported_run_and_probe_run_and_unfinished_run_are_409(demo_storage) -> None:
    demo = demo_storage
    lead = api_for(demo_user("lead"))
    imported = other_run(demo, source=ClassificationRun.Source.IMPORT, model="")
    response = lead.post(url(imported), format="json")
    assert response.status_code == 409
    assert "imported predictions" in response.json()["detail"]
    probe = other_run(demo, source=ClassificationRun.Source.PROBE, parent=demo.run)
    response = lead.post(url(probe), format="json")
    assert response.status_code == 409
    assert "a probe run" in response.json()["detail"]
    running = other_run(demo, status=ClassificationRun.Status.RUNNING)
    response = lead.post(url(running), format="json")
    assert response.status_code == 409
    assert "is running" in response.json()["detail"]
    assert not ClassificationRun.objects.filter(parent__in=[imported, probe, running]).exists()
