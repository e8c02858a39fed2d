"""Sample strategies on the demo (docs/architecture.md#sample-strategies): a `suspects` sample
through the API, the command and the run page's form; `uncertain` is refused on a run that is
not a probe run (tests/probe/test_uncertain.py samples one); only a
balanced sample is random, and a targeted sample's dashboard says its rates are not the run's
accuracy. Verdicts from every sample are facts: one in a suspects sample scores another run,
and stays out of the balanced sample's threshold table."""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.validation.models import Sample, SampleItem
from annotate.validation.sampling import run_label_frequencies
from annotate.validation.services import verdict_record
from classifier.models import ClassificationRun, Prediction
from tests.validation.conftest import api_for

# Not transactional: the module's demo is committed and a flush would empty it. Every test's
# own writes are rolled back.
pytestmark = pytest.mark.django_db


def lead():
    return User.objects.get(username="lead")


def draw(client, run_id: int, **body):
    return client.post(f"/api/runs/{run_id}/samples/", body, format="json")


def test_suspects_sample_takes_each_top_labels_likeliest_errors(demo) -> None:
    client = api_for(lead())
    response = draw(client, demo.run.pk, strategy="suspects", classes=10, per_class=5, seed=3)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["strategy"] == "suspects"
    assert body["random"] is False
    sample = Sample.objects.get(pk=body["id"])
    got = set(sample.items.values_list("prediction__item_id", flat=True))
    expected = set()
    for top in run_label_frequencies(run=demo.run, limit=10):
        rows = client.get(f"/api/runs/{demo.run.pk}/suspects/?label={top.key}&limit=5")
        assert rows.status_code == 200
        expected |= {row["item"] for row in rows.json()["results"]}
    assert got == expected
    assert len(got) == 50
    assert client.get(f"/api/samples/{sample.pk}/").json()["strategy"] == "suspects"
    # The same seed orders the same items the same way.
    again = draw(client, demo.run.pk, strategy="suspects", classes=10, per_class=5, seed=3)
    order = list(sample.items.values_list("prediction_id", flat=True))
    other = Sample.objects.get(pk=again.json()["id"]).items.values_list("prediction_id", flat=True)
    assert list(other) == order


def test_suspects_sample_leaves_out_confirmed_and_earlier_items(demo) -> None:
    balanced = Sample.objects.get(pk=demo.summary["demo_run"]["sample"])
    earlier = set(balanced.items.values_list("prediction__item_id", flat=True))
    client = api_for(lead())
    response = draw(client, demo.run.pk, strategy="suspects", per_class=20, exclude_previous=True)
    assert response.status_code == 201, response.content
    items = Sample.objects.get(pk=response.json()["id"]).items
    assert not set(items.values_list("prediction__item_id", flat=True)) & earlier
    # Without the option, items confirmed by a verdict are still left out.
    response = draw(client, demo.run.pk, strategy="suspects", per_class=100)
    sample = Sample.objects.get(pk=response.json()["id"])
    confirmed = set(
        SampleItem.objects.filter(sample=balanced, verdicts__value="hit").values_list(
            "prediction_id", flat=True
        )
    )
    missed = set(
        SampleItem.objects.filter(sample=balanced, verdicts__value="miss").values_list(
            "prediction_id", flat=True
        )
    )
    chosen = set(sample.items.values_list("prediction_id", flat=True))
    only_hits = confirmed - missed  # one annotator each in the demo, but be safe
    assert only_hits
    assert not chosen & only_hits


def test_balanced_is_the_default_and_the_only_random_one(demo) -> None:
    client = api_for(lead())
    body = draw(client, demo.run.pk, per_class=2).json()
    assert body["strategy"] == "balanced"
    assert body["random"] is True
    listed = client.get(f"/api/runs/{demo.run.pk}/samples/").json()["results"]
    assert {(row["strategy"], row["random"]) for row in listed} >= {("balanced", True)}


@pytest.mark.parametrize(
    ("strategy", "status", "words"),
    [
        # A valid strategy that only a probe run can give: 409, as for an unfinished run (the
        # schema allows the value, so it is not a 400), saying how to get a probe run.
        ("uncertain", 409, "train a probe of it (POST /api/runs/"),
        ("best", 400, "not a valid choice"),
    ],
)
def test_uncertain_needs_a_probe_run_and_unknown_strategies_are_refused(
    demo, strategy, status, words
) -> None:
    before = Sample.objects.count()
    response = draw(api_for(lead()), demo.run.pk, strategy=strategy)
    assert response.status_code == status
    assert words in json.dumps(response.json())
    assert Sample.objects.count() == before


def test_annotators_cannot_draw(demo) -> None:
    annotator = User.objects.get(username="annotator1")
    assert draw(api_for(annotator), demo.run.pk, strategy="suspects").status_code == 403


def test_draw_sample_command_takes_a_strategy(demo) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "draw_sample", str(demo.run.pk), "--strategy", "suspects", "--per-class", "4",
        "--classes", "3", "--json", stdout=out, stderr=err,
    )  # fmt: skip
    body = json.loads(out.getvalue())
    assert body["strategy"] == "suspects"
    assert body["random"] is False
    assert body["progress"]["items"] == 12
    with pytest.raises(CommandError, match="train a probe of it"):
        call_command("draw_sample", str(demo.run.pk), "--strategy", "uncertain", stdout=out)


def test_run_page_form_and_list(demo, client) -> None:
    client.force_login(lead())
    page = client.get(f"/runs/{demo.run.pk}/").content.decode()
    for name in ("search", "duplicates", "suspects"):
        assert f'href="/runs/{demo.run.pk}/{name}/"' in page
    assert 'name="strategy"' in page
    assert 'value="uncertain"' not in page  # offered on probe runs only
    assert "the only sample whose rates estimate the run" in page
    response = client.post(
        f"/runs/{demo.run.pk}/samples/new/",
        {"strategy": "suspects", "classes": "2", "per_class": "3"},
    )
    assert response.status_code == 302
    sample = Sample.objects.order_by("-pk").first()
    assert sample.strategy == "suspects"
    assert sample.items.count() == 6
    page = client.get(f"/runs/{demo.run.pk}/").content.decode()
    assert "Likely errors (targeted)" in page
    refused = client.post(f"/runs/{demo.run.pk}/samples/new/", {"strategy": "uncertain"})
    assert refused.status_code == 400
    assert "train a probe of it" in refused.content.decode()


def test_targeted_dashboard_says_its_rates_are_not_the_runs_accuracy(demo, client) -> None:
    client.force_login(lead())
    balanced = demo.summary["demo_run"]["sample"]
    page = client.get(f"/samples/{balanced}/").content.decode()
    assert 'id="dash-targeted"' not in page
    assert "of what you keep is right" in page
    sample = draw(api_for(lead()), demo.run.pk, strategy="suspects", per_class=3).json()
    targeted = Sample.objects.get(pk=sample["id"])
    annotator = User.objects.get(username="annotator1")
    for item in targeted.items.all()[:10]:
        verdict_record(sample_item=item, annotator=annotator, value="miss")
    page = client.get(f"/samples/{targeted.pk}/").content.decode()
    assert 'id="dash-targeted"' in page
    assert "not estimates of the run&#x27;s accuracy" in page or (
        "not estimates of the run's accuracy" in page
    )
    assert "of what you keep is right" not in page
    assert "only a balanced sample estimates that" in page
    # The runs scored on the facts say that some of them come from a targeted sample.
    assert 'id="scores-targeted"' in page


def test_a_suspects_verdict_scores_another_run_but_not_the_balanced_threshold_table(
    demo,
) -> None:
    balanced = demo.summary["demo_run"]["sample"]
    client = api_for(lead())
    # Another run of the dataset and taxonomy that agrees with the demo run everywhere.
    other = ClassificationRun.objects.create(
        dataset=demo.dataset, taxonomy=demo.run.taxonomy, name="copy", status="succeeded",
        model=demo.run.model, ensemble=demo.run.ensemble,
    )  # fmt: skip
    Prediction.objects.bulk_create(
        Prediction(run=other, item_id=p.item_id, label_id=p.label_id, probability=p.probability)
        for p in Prediction.objects.filter(run=demo.run)
    )
    thresholds_before = client.get(f"/api/samples/{balanced}/thresholds/").json()
    scores_before = client.get(f"/api/samples/{balanced}/scores/").json()
    covered_before = next(r for r in scores_before["rows"] if r["run"] == other.pk)["covered"]

    body = draw(client, demo.run.pk, strategy="suspects", per_class=3, exclude_previous=True)
    targeted = Sample.objects.get(pk=body.json()["id"])
    first = targeted.items.select_related("prediction").first()
    verdict_record(
        sample_item=first, annotator=User.objects.get(username="annotator1"), value="hit"
    )

    scores = client.get(f"/api/samples/{balanced}/scores/").json()
    row = next(r for r in scores["rows"] if r["run"] == other.pk)
    assert row["covered"] == covered_before + 1  # the fact scores the other run
    assert scores["targeted_samples"] == scores_before["targeted_samples"] + 1
    assert client.get(f"/api/samples/{balanced}/thresholds/").json() == thresholds_before
    # The confirmed item is no suspect any more.
    rows = client.get(f"/api/runs/{demo.run.pk}/suspects/?limit=1000").json()["results"]
    assert first.prediction.item_id not in {r["item"] for r in rows}
