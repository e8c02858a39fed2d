"""Runs compared on the items the facts decide for both (docs/architecture.md#run-comparison):
counts by hand and the exact McNemar p-value against scipy, hidden runs, the dashboard."""

import pytest
from django.test import Client
from scipy.stats import binomtest

from annotate.validation import metrics
from classifier.models import ClassificationRun
from tests.conftest import PASSWORD
from tests.dashboards.conftest import add_verdicts, make_items, make_labels, make_run, make_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(dataset, ann):
    """41 items. Truth from ann's verdicts on run A's sample: items 0-29 are label 0 (hits),
    30-39 label 1 (misses with label 1 as the right one), item 40 only skipped.
    A says label 0 everywhere: right on 0-29.
    B: label 1 on 0-11 (wrong), label 0 on 12-29, label 1 on 30-37, label 0 on 38-40:
       both right on 12-29 (18), only A on 0-11 (12), only B on 30-37 (8), neither 38-39.
    D covers items 0-19 only, always label 0 (right on all 20).
    H is hidden (its own predictions would be perfect)."""
    taxonomy, labels = make_labels(3, name="compare")
    l0, l1, _ = labels
    items = make_items(dataset, 41, prefix="cmp")
    run_a, predictions = make_run(dataset, taxonomy, items, [l0] * 41, [0.5] * 41, name="A")
    sample, sample_items = make_sample(run_a, predictions)
    add_verdicts([(si, ann, "hit") for si in sample_items[:30]])
    add_verdicts([(si, ann, "miss", l1) for si in sample_items[30:40]])
    add_verdicts([(sample_items[40], ann, "skip")])
    b_labels = [l1] * 12 + [l0] * 18 + [l1] * 8 + [l0] * 3
    make_run(dataset, taxonomy, items, b_labels, [0.5] * 41, name="B")
    make_run(dataset, taxonomy, items[:20], [l0] * 20, [0.5] * 20, name="D")
    hidden, _ = make_run(dataset, taxonomy, items, [l0] * 30 + [l1] * 11, [0.5] * 41, name="H")
    ClassificationRun.objects.filter(pk=hidden.pk).update(hidden=True)
    return sample


def test_pairs_and_mcnemar_against_scipy(client: Client, runs) -> None:
    client.login(username="lee", password=PASSWORD)
    body = client.get(f"/api/samples/{runs.pk}/scores/").json()
    assert [r["name"] for r in body["rows"]] == ["A", "B", "D"]  # H is hidden
    rows = {r["name"]: r for r in body["rows"]}
    assert (rows["A"]["covered"], rows["A"]["correct"]) == (40, 30)
    assert (rows["B"]["covered"], rows["B"]["correct"]) == (40, 26)
    assert (rows["D"]["covered"], rows["D"]["correct"]) == (20, 20)
    pairs = {(p["a_name"], p["b_name"]): p for p in body["pairs"]}
    assert list(pairs) == [("A", "B"), ("A", "D"), ("B", "D")]
    ab = pairs[("A", "B")]
    assert ab["current"]
    assert not pairs[("B", "D")]["current"]
    counts = ("items", "a_correct", "b_correct", "both_correct", "a_only", "b_only", "neither")
    assert tuple(ab[k] for k in counts) == (40, 30, 26, 18, 12, 8, 2)
    assert ab["a_accuracy"] == pytest.approx(30 / 40)
    assert ab["b_accuracy"] == pytest.approx(26 / 40)
    assert ab["mcnemar_p"] == pytest.approx(binomtest(12, 20, 0.5).pvalue, rel=1e-12)
    assert ab["mcnemar_p"] == pytest.approx(0.5034446716308594)  # 2 · P(X ≥ 12), X ~ B(20, ½)
    # A and D on D's 20 items: both right everywhere, no discordant item: no test.
    ad = pairs[("A", "D")]
    assert tuple(ad[k] for k in counts) == (20, 20, 20, 20, 0, 0, 0)
    assert ad["mcnemar_p"] is None
    # B and D on items 0-19: B wrong on 0-11, so only D is right there: p = 2 · ½^12.
    bd = pairs[("B", "D")]
    assert (bd["items"], bd["a_only"], bd["b_only"]) == (20, 0, 12)
    assert bd["mcnemar_p"] == pytest.approx(binomtest(0, 12, 0.5).pvalue)
    assert bd["mcnemar_p"] == pytest.approx(2 * 0.5**12)


def test_a_significant_difference(dataset, ann) -> None:
    """30 discordant items all one way: p = 2 · ½^30, far below 0.05."""
    taxonomy, labels = make_labels(2, name="sig")
    items = make_items(dataset, 30, prefix="sig")
    run, predictions = make_run(dataset, taxonomy, items, [labels[0]] * 30, [0.5] * 30, name="A")
    sample, sample_items = make_sample(run, predictions)
    add_verdicts([(si, ann, "hit") for si in sample_items])
    make_run(dataset, taxonomy, items, [labels[1]] * 30, [0.5] * 30, name="B")
    (pair,) = metrics.runs_score(sample=sample)["pairs"]
    assert (pair["a_only"], pair["b_only"]) == (30, 0)
    assert pair["mcnemar_p"] == pytest.approx(binomtest(30, 30, 0.5).pvalue)
    assert pair["mcnemar_p"] < 1e-8


def test_own_hidden_run_stays(runs) -> None:
    ClassificationRun.objects.filter(pk=runs.run_id).update(hidden=True)
    version = metrics.sample_version(sample=runs)
    names = [r["name"] for r in metrics.runs_score(sample=runs)["rows"]]
    assert names == ["A", "B", "D"]
    ClassificationRun.objects.filter(name="H").update(hidden=False)
    assert metrics.sample_version(sample=runs) != version  # unhiding changes the scores
    assert [r["name"] for r in metrics.runs_score(sample=runs)["rows"]] == ["A", "B", "D", "H"]


def test_many_runs_compare_the_sample_run_with_each(dataset, ann) -> None:
    taxonomy, labels = make_labels(2, name="many")
    items = make_items(dataset, 4, prefix="many")
    run, predictions = make_run(dataset, taxonomy, items, [labels[0]] * 4, [0.5] * 4, name="r0")
    sample, sample_items = make_sample(run, predictions)
    add_verdicts([(si, ann, "hit") for si in sample_items])
    for i in range(1, metrics.MAX_RUNS_ALL_PAIRS + 1):
        make_run(dataset, taxonomy, items, [labels[i % 2]] * 4, [0.5] * 4, name=f"r{i}")
    pairs = metrics.runs_score(sample=sample)["pairs"]
    assert len(pairs) == metrics.MAX_RUNS_ALL_PAIRS  # one per other run, no other pairs
    assert all(p["current"] and p["a_name"] == "r0" for p in pairs)


def test_dashboard_shows_the_comparison(client: Client, runs) -> None:
    client.login(username="lee", password=PASSWORD)
    page = client.get(f"/samples/{runs.pk}/").content.decode()
    assert 'id="pair-table"' in page
    assert "McNemar" in page
    assert (
        "A vs B on 40 shared items: A right 75 %, B right 65 %, only A right on 12, only B on 8,"
        " McNemar p = 0.503." in page
    )
    assert "<strong>&lt; 0.001</strong>" in page  # B vs D: p = 2 · ½^12 = 0.00049


def test_one_run_nothing_to_compare(client: Client, small) -> None:
    client.login(username="lee", password=PASSWORD)
    assert client.get(f"/api/samples/{small.sample.pk}/scores/").json()["pairs"] == []
    assert "nothing to compare" in client.get(f"/samples/{small.sample.pk}/").content.decode()
