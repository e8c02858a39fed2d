"""Suspects with a probe (docs/architecture.md#suspects): once a run has a succeeded probe run,
the probe's probability of the run's label joins the score, computed by the database; an item
whose probe label differs gets the reason `probe_disagrees`. On the demo (a probe of the
weighted 0.5/0.5 parent, trained from the demo's verdicts) the top 50 hold at least as many
wrong labels as without the probe. Without a probe, the score is what it was."""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from annotate.validation.models import Sample
from annotate.validation.sampling import run_label_frequencies
from annotate.validation.suspects import (
    W_DISAGREE,
    W_MARGIN,
    WP_DISAGREE,
    WP_MARGIN,
    WP_PROBE,
    top_suspects,
)
from classifier.models import ClassificationRun, Prediction
from tests.probe.weighted import probe_of, weighted_parent
from tests.validation.conftest import api_for

# Not transactional: the module's demo (and the runs made here) are committed and a flush
# would empty them. Every test's own writes are rolled back.
pytestmark = [pytest.mark.django_db, pytest.mark.torch]

TOP = 50


@dataclass
class Probed:
    parent: ClassificationRun
    probe: ClassificationRun
    before: list  # the parent's top suspects before the probe existed


@pytest.fixture(scope="module")
def probed(demo, django_db_blocker) -> Probed:
    with django_db_blocker.unblock():
        parent = weighted_parent(demo)
        before = top_suspects(run=parent, limit=TOP)
        return Probed(parent, probe_of(demo, parent), before)


def lead():
    return User.objects.get(username="lead")


def wrong_labels(run: ClassificationRun) -> set[int]:
    """The items whose label in `run` is not the drawn scene (the demo's ground truth)."""
    rows = Prediction.objects.filter(run=run).values_list(
        "item_id", "label__key", "item__metadata__scene"
    )
    return {item for item, key, scene in rows if key != scene}


def expected_score(p: Prediction, probe_row: Prediction | None) -> float:
    """The score from the module docstring of suspects.py, computed here in Python."""
    p2 = float(p.top5[1][1]) if len(p.top5) > 1 else 0.0
    both = p.image_label_id is not None and p.text_label_id is not None
    disagree = 1.0 if both and p.image_label_id != p.text_label_id else 0.0
    if probe_row is None:
        raw = W_MARGIN * (1 - (p.probability - p2)) + W_DISAGREE * disagree
    else:
        q = next((float(pr) for label, pr in probe_row.top5 if int(label) == p.label_id), 0.0)
        raw = WP_MARGIN * (1 - (p.probability - p2)) + WP_DISAGREE * disagree
        raw += WP_PROBE * (1 - q)
    return min(1.0, max(0.0, raw))


def test_probe_finds_at_least_as_many_wrong_labels(probed: Probed) -> None:
    wrong = wrong_labels(probed.parent)
    response = api_for(lead()).get(f"/api/runs/{probed.parent.pk}/suspects/?limit={TOP}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["probe_run"] == probed.probe.pk
    rows = body["results"]
    assert len(rows) == TOP
    with_probe = sum(row["item"] in wrong for row in rows) / TOP
    without = sum(s.item in wrong for s in probed.before) / TOP
    error_rate = len(wrong) / probed.parent.predictions.count()
    print(f"top {TOP} wrong: {without:.2f} without the probe, {with_probe:.2f} with it; "
          f"parent error rate {error_rate:.3f}")  # fmt: skip
    assert with_probe >= without
    disagreeing = [r for row in rows for r in row["reasons"] if r["code"] == "probe_disagrees"]
    assert disagreeing
    for row in rows:
        assert row["probe_probability"] is not None
        for reason in row["reasons"]:
            if reason["code"] == "probe_disagrees":
                assert reason["label"] != row["label"]
                assert 0 < reason["probability"] <= 1
                assert f"{reason['probability']:.2f}" in reason["text"]


def test_scores_follow_the_formula_with_the_probe(probed: Probed) -> None:
    rows = top_suspects(run=probed.parent, limit=200)
    predictions = Prediction.objects.in_bulk([s.prediction for s in rows])
    probe_rows = {
        p.item_id: p
        for p in Prediction.objects.filter(run=probed.probe, item_id__in=[s.item for s in rows])
    }
    for s in rows:
        p = predictions[s.prediction]
        assert s.score == pytest.approx(expected_score(p, probe_rows[s.item]), abs=1e-5)
        probe_says = probe_rows[s.item].label_id
        codes = [r["code"] for r in s.reasons]
        assert ("probe_disagrees" in codes) == (probe_says != p.label_id)
    scores = [s.score for s in rows]
    assert scores == sorted(scores, reverse=True)


def test_without_a_probe_the_score_is_unchanged(probed: Probed, demo) -> None:
    # The demo run has no probe: the run's own signals only.
    rows = top_suspects(run=demo.run, limit=100)
    predictions = Prediction.objects.in_bulk([s.prediction for s in rows])
    assert all(s.probe_probability is None for s in rows)
    for s in rows:
        assert s.score == pytest.approx(expected_score(predictions[s.prediction], None), abs=1e-5)
    # A hidden probe, or one that has not succeeded, is not used.
    plain = [(s.prediction, s.score) for s in top_suspects(run=probed.parent, probe=None)]
    ClassificationRun.objects.filter(pk=probed.probe.pk).update(hidden=True)
    ClassificationRun.objects.create(
        dataset=probed.parent.dataset, taxonomy=probed.parent.taxonomy, parent=probed.parent,
        source="probe", status="failed", name="failed probe",
    )  # fmt: skip
    assert [(s.prediction, s.score) for s in top_suspects(run=probed.parent)] == plain
    body = api_for(lead()).get(f"/api/runs/{probed.parent.pk}/suspects/").json()
    assert body["probe_run"] is None
    assert all(row["probe_probability"] is None for row in body["results"])


def test_page_shows_the_probe_and_its_reason(probed: Probed, client) -> None:
    client.force_login(lead())
    page = client.get(f"/runs/{probed.parent.pk}/suspects/?limit={TOP}").content.decode()
    assert 'id="suspects-probe"' in page
    assert f"probe run {probed.probe.pk}" in page
    assert 'class="reason probe_disagrees"' in page
    assert "the probe says" in page
    plain = client.get(f"/runs/{probed.probe.pk}/suspects/").content.decode()
    assert 'id="suspects-probe"' not in plain  # the probe run has no probe of its own


def test_suspects_sample_uses_the_probe(probed: Probed) -> None:
    client = api_for(lead())
    body = {"strategy": "suspects", "classes": 5, "per_class": 4, "seed": 1}
    response = client.post(f"/api/runs/{probed.parent.pk}/samples/", body, format="json")
    assert response.status_code == 201, response.content
    sample = Sample.objects.get(pk=response.json()["id"])
    got = set(sample.items.values_list("prediction__item_id", flat=True))
    expected = set()
    for top in run_label_frequencies(run=probed.parent, limit=5):
        url = f"/api/runs/{probed.parent.pk}/suspects/?label={top.key}&limit=4"
        expected |= {row["item"] for row in client.get(url).json()["results"]}
    assert got == expected
    without = set()
    for top in run_label_frequencies(run=probed.parent, limit=5):
        predictions = Prediction.objects.filter(run=probed.parent, label_id=top.label_id)
        found = top_suspects(run=probed.parent, predictions=predictions, limit=4, probe=None)
        without |= {s.item for s in found}
    assert got != without  # the probe changed the choice
