"""Samples side by side (docs/architecture.md#sample-strategies): verdicts from a suspects or
an uncertain sample train the probe but do not enter the balanced sample's threshold estimate.
On the demo: verdicts posted through the API on a suspects sample of the weighted parent and on
an uncertain sample of its probe leave the balanced sample's threshold and per-class tables as
they were, and the next probe learns from those items too."""

import pytest
from django.contrib.auth.models import User

from annotate.validation.metrics import dashboard_build, dataset_facts
from annotate.validation.models import Sample
from classifier.models import ClassificationRun
from tests.probe.weighted import probe_of, weighted_parent
from tests.validation.conftest import api_for

# Not transactional: the module's demo (and the runs made here) are committed and a flush
# would empty them. Every test's own writes are rolled back.
pytestmark = [pytest.mark.django_db, pytest.mark.torch]


@pytest.fixture(scope="module")
def runs(demo, django_db_blocker) -> tuple[ClassificationRun, ClassificationRun]:
    with django_db_blocker.unblock():
        parent = weighted_parent(demo)
        return parent, probe_of(demo, parent)


def judge(sample: Sample) -> set[int]:
    """Verdicts on every item of `sample` through the API, as annotator1, from the demo's
    truth (a hit, or a miss corrected to the drawn scene); the items judged."""
    client = api_for(User.objects.get(username="annotator1"))
    items = sample.items.select_related("prediction__label", "prediction__item")
    for si in items:
        scene = si.prediction.item.metadata["scene"]
        body = {"sample_item": si.pk, "value": "hit"}
        if si.prediction.label.key != scene:
            body = {"sample_item": si.pk, "value": "miss", "corrected_label": scene}
        response = client.post("/api/verdicts/", body, format="json")
        assert response.status_code == 201, response.content
    return {si.prediction.item_id for si in items}


def estimates(sample: Sample) -> dict:
    board = dashboard_build(sample=sample)
    return {"thresholds": board["thresholds"], "classes": board["classes"]}


def test_targeted_verdicts_train_the_probe_but_leave_the_balanced_estimate(demo, runs) -> None:
    parent, probe = runs
    balanced = Sample.objects.get(pk=demo.summary["demo_run"]["sample"])
    lead = api_for(User.objects.get(username="lead"))
    before = estimates(balanced)
    thresholds_api = lead.get(f"/api/samples/{balanced.pk}/thresholds/").json()
    decided = set(dataset_facts(dataset_id=demo.dataset.pk, taxonomy_id=parent.taxonomy_id))

    judged = set()
    for run, strategy in ((parent, "suspects"), (probe, "uncertain")):
        body = {"strategy": strategy, "classes": 5, "per_class": 4, "exclude_previous": True}
        response = lead.post(f"/api/runs/{run.pk}/samples/", body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["random"] is False
        judged |= judge(Sample.objects.get(pk=response.json()["id"]))
    new = judged - decided
    assert len(new) == 40  # earlier samples' items were left out, so every one is new

    # (a) The balanced sample's estimate of the run's accuracy does not move.
    assert estimates(balanced) == before
    assert lead.get(f"/api/samples/{balanced.pk}/thresholds/").json() == thresholds_api

    # (b) The next probe learns from them.
    again = probe_of(demo, parent)
    assert again.probe["verdict_items"] == probe.probe["verdict_items"] + len(new)
    response = lead.get(f"/api/runs/{parent.pk}/suspects/")
    assert response.json()["probe_run"] == again.pk  # the latest probe scores the suspects
