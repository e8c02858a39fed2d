"""The `uncertain` sample strategy (docs/architecture.md#sample-strategies): probe runs only
(409 elsewhere, saying how to train one); the run's most frequent labels, and from each the
items with the smallest margin between the probe's top two probabilities among those that no
verdict decides yet, after the filters. Targeted: not random, and its dashboard says its rates
are not the run's accuracy. Through the API, `draw_sample` and the run page's form."""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from annotate.validation.metrics import dataset_facts
from annotate.validation.models import Sample, SampleItem
from annotate.validation.sampling import run_label_frequencies
from classifier.models import ClassificationRun, Prediction
from tests.probe.weighted import probe_of
from tests.validation.conftest import api_for

# Not transactional: the module's demo (and its probe run) are committed and a flush would
# empty them. Every test's own writes are rolled back.
pytestmark = [pytest.mark.django_db, pytest.mark.torch]


@pytest.fixture(scope="module")
def probe(demo, django_db_blocker) -> ClassificationRun:
    with django_db_blocker.unblock():
        return probe_of(demo, demo.run)


def lead():
    return User.objects.get(username="lead")


def draw(run_id: int, **body):
    return api_for(lead()).post(f"/api/runs/{run_id}/samples/", body, format="json")


def decided(run: ClassificationRun) -> set[int]:
    return set(dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id))


def least_certain(run: ClassificationRun, label_id: int, k: int, pool=None) -> set[int]:
    """The k predictions of the label with the smallest p1 - p2 among items without a verdict
    fact, computed here in Python."""
    known = decided(run)
    rows = [
        (p.probability - (float(p.top5[1][1]) if len(p.top5) > 1 else 0.0), p.pk)
        for p in (pool or Prediction.objects.filter(run=run)).filter(label_id=label_id)
        if p.item_id not in known
    ]
    return {pk for _margin, pk in sorted(rows)[:k]}


def test_refused_on_a_run_that_is_not_a_probe(demo) -> None:
    before = Sample.objects.count()
    response = draw(demo.run.pk, strategy="uncertain")
    assert response.status_code == 409
    text = response.json()["detail"]
    assert f"POST /api/runs/{demo.run.pk}/probe/" in text
    assert f"train_probe {demo.run.pk}" in text
    assert "draw the sample from that probe run" in text
    assert Sample.objects.count() == before


def test_each_labels_least_certain_items_without_a_verdict(probe) -> None:
    response = draw(probe.pk, strategy="uncertain", classes=5, per_class=6, seed=4)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["strategy"] == "uncertain"
    assert body["random"] is False
    sample = Sample.objects.get(pk=body["id"])
    drawn = SampleItem.objects.filter(sample=sample).select_related("prediction")
    assert not {si.prediction.item_id for si in drawn} & decided(probe)
    assert decided(probe)  # the demo's verdicts: there is something to leave out
    chosen = {si.prediction_id for si in drawn}
    expected = set()
    for top in run_label_frequencies(run=probe, limit=5):
        expected |= least_certain(probe, top.label_id, 6)
    assert chosen == expected
    assert len(chosen) == 30
    assert api_for(lead()).get(f"/api/samples/{sample.pk}/").json()["strategy"] == "uncertain"


def test_filters_apply(probe) -> None:
    draw(probe.pk, strategy="uncertain", classes=3, per_class=5)
    # Items of every earlier sample of the dataset (the demo's balanced one too).
    taken = set(
        SampleItem.objects.filter(sample__run__dataset_id=probe.dataset_id).values_list(
            "prediction__item_id", flat=True
        )
    )
    body = {"strategy": "uncertain", "classes": 3, "per_class": 5, "min_probability": 0.3}
    response = draw(probe.pk, exclude_previous=True, **body)
    assert response.status_code == 201, response.content
    items = SampleItem.objects.filter(sample_id=response.json()["id"])
    drawn = Prediction.objects.filter(pk__in=items.values("prediction_id"))
    assert all(p.probability >= 0.3 for p in drawn)
    assert not {p.item_id for p in drawn} & taken
    pool = Prediction.objects.filter(run=probe, probability__gte=0.3).exclude(item_id__in=taken)
    expected = set()
    for top in run_label_frequencies(run=probe, limit=3):
        expected |= least_certain(probe, top.label_id, 5, pool)
    assert {p.pk for p in drawn} == expected


def test_draw_sample_command(probe) -> None:
    out = io.StringIO()
    call_command(
        "draw_sample", str(probe.pk), "--strategy", "uncertain", "--classes", "2",
        "--per-class", "3", "--json", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    body = json.loads(out.getvalue())
    assert (body["strategy"], body["random"], body["progress"]["items"]) == ("uncertain", False, 6)


def test_run_page_form_and_targeted_dashboard(probe, demo, client) -> None:
    client.force_login(lead())
    assert 'value="uncertain"' in client.get(f"/runs/{probe.pk}/").content.decode()
    assert 'value="uncertain"' not in client.get(f"/runs/{demo.run.pk}/").content.decode()
    form = {"strategy": "uncertain", "classes": "2", "per_class": "4"}
    response = client.post(f"/runs/{probe.pk}/samples/new/", form)
    assert response.status_code == 302
    sample = Sample.objects.order_by("-pk").first()
    assert (sample.run_id, sample.strategy, sample.items.count()) == (probe.pk, "uncertain", 8)
    refused = client.post(f"/runs/{demo.run.pk}/samples/new/", form)
    assert refused.status_code == 400
    assert "train a probe of it" in refused.content.decode()
    page = client.get(f"/samples/{sample.pk}/").content.decode()
    assert 'id="dash-targeted"' in page
    assert "where the probe is least certain" in page
    assert "of what you keep is right" not in page
