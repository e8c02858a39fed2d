"""Threshold, per-class, agreement and score tables through the REST API, checked against
the published table and independent computations."""

import json
import math
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from scipy.stats import binomtest

from annotate.validation import metrics
from tests.conftest import PASSWORD
from tests.dashboards.conftest import add_verdicts, make_items, make_labels, make_run, make_sample

pytestmark = pytest.mark.django_db


def api(client: Client, user: str, url: str, **headers):
    client.login(username=user, password=PASSWORD)
    return client.get(url, headers=headers)


def trunc4(x: float) -> float:
    return math.floor(x * 10_000) / 10_000


def test_published_threshold_table(client: Client, published) -> None:
    body = api(client, "lee", f"/api/samples/{published.sample.pk}/thresholds/").json()
    rows = {round(r["threshold"], 2): r for r in body["rows"]}
    assert sorted(rows) == [round(0.1 * i, 2) for i in range(11)]
    assert (rows[0.0]["classified"], rows[0.0]["hits"], rows[0.0]["errors"]) == (1000, 460, 540)
    r = rows[0.6]
    assert (r["classified"], r["hits"], r["errors"]) == (507, 270, 237)
    # The published table truncates to four decimals (270/460 = 0.58696 is printed 0.5869).
    assert trunc4(r["hit_rate"]) == 0.5869
    assert trunc4(r["error_rate"]) == 0.4388
    assert trunc4(r["ratio"]) == 1.3373
    assert r["precision"] == pytest.approx(270 / 507)
    assert r["ratio_low"] < r["ratio"] < r["ratio_high"]
    assert body["ties"] == 0


def test_threshold_table_matches_independent_computation(client: Client, published) -> None:
    body = api(client, "lee", f"/api/samples/{published.sample.pk}/thresholds/?step=0.05").json()
    pairs = [(si.prediction.probability, si.verdicts.get().value) for si in published.sample_items]
    hits0 = sum(v == "hit" for _, v in pairs)
    errors0 = len(pairs) - hits0
    assert len(body["rows"]) == 21
    best, best_ratio = None, -1.0
    for row in body["rows"]:
        theta = row["threshold"]
        h = sum(1 for p, v in pairs if p >= theta and v == "hit")
        e = sum(1 for p, v in pairs if p >= theta and v == "miss")
        assert (row["classified"], row["hits"], row["errors"]) == (h + e, h, e), theta
        assert row["hit_rate"] == pytest.approx(h / hits0)
        assert row["error_rate"] == pytest.approx(e / errors0)
        if e:
            assert row["ratio"] == pytest.approx((h / hits0) / (e / errors0))
            if row["ratio"] > best_ratio:
                best, best_ratio = theta, row["ratio"]
        else:
            assert row["ratio"] is None
    assert body["best_threshold"] == best
    hits_p = [p for p, v in pairs if v == "hit"]
    misses_p = [p for p, v in pairs if v == "miss"]
    assert body["mean_probability_hits"] == pytest.approx(sum(hits_p) / len(hits_p))
    assert body["mean_probability_misses"] == pytest.approx(sum(misses_p) / len(misses_p))
    assert sum(body["histogram"]["hits"]) == 460
    assert sum(body["histogram"]["misses"]) == 540


def test_bootstrap_interval_is_seeded_and_widens_with_few_items(published, small, ann) -> None:
    a = metrics.thresholds_table(sample=published.sample)
    b = metrics.thresholds_table(sample=published.sample)
    assert [r["ratio_low"] for r in a["rows"]] == [r["ratio_low"] for r in b["rows"]]
    # Ten decided items: the interval around the same kind of ratio is much wider.
    values = ["hit", "miss", "hit", "miss", "hit", "hit", "miss", "hit", "miss", "miss"]
    add_verdicts([(si, ann, v) for si, v in zip(small.sample_items, values, strict=True)])
    few = {r["threshold"]: r for r in metrics.thresholds_table(sample=small.sample)["rows"]}
    many = {r["threshold"]: r for r in a["rows"]}
    for theta in (0.5, 0.8):
        f, m = few[theta], many[theta]
        assert m["ratio_low"] <= m["ratio"] <= m["ratio_high"]
        # Unbounded (None) or at least three times wider than with 1,000 items.
        assert f["ratio_high"] is None or (
            f["ratio_high"] - f["ratio_low"] > 3 * (m["ratio_high"] - m["ratio_low"])
        )


def test_bootstrap_matches_a_naive_item_bootstrap(published) -> None:
    """The multinomial-of-cells shortcut against resampling the items one by one."""
    pairs = [(si.prediction.probability, si.verdicts.get().value) for si in published.sample_items]
    p = np.array([x for x, _ in pairs])
    hit = np.array([v == "hit" for _, v in pairs])
    thetas = metrics.thresholds_grid(0.1)
    low, high = metrics._ratio_interval(p, hit, thetas, 4000, 1)
    rng = np.random.default_rng(2)
    ratios = []
    for _ in range(4000):
        idx = rng.integers(0, len(p), len(p))
        ps, hs = p[idx], hit[idx]
        h = np.array([(hs & (ps >= t)).sum() for t in thetas]) / hs.sum()
        e = np.array([(~hs & (ps >= t)).sum() for t in thetas]) / (~hs).sum()
        with np.errstate(divide="ignore", invalid="ignore"):  # θ = 1: no items
            ratios.append(h / e)
    # θ = 0.1 .. 0.8: finite in every resample
    naive_low, naive_high = np.percentile(np.array(ratios)[:, 1:9], [2.5, 97.5], axis=0)
    for j in range(1, 9):
        assert low[j] == pytest.approx(naive_low[j - 1], rel=0.03), thetas[j]
        assert high[j] == pytest.approx(naive_high[j - 1], rel=0.03), thetas[j]


def test_class_table_with_wilson_interval(client: Client, published) -> None:
    body = api(client, "lee", f"/api/samples/{published.sample.pk}/classes/").json()
    assert len(body["rows"]) == 10
    for row in body["rows"]:
        label = next(lb for lb in published.labels if lb.name == row["label"])
        frequency = sum(1 for p in published.predictions if p.label_id == label.pk)
        mine = [si for si in published.sample_items if si.prediction.label_id == label.pk]
        hits = sum(si.verdicts.get().value == "hit" for si in mine)
        assert row["frequency"] == frequency == 100 + 25
        assert (row["sampled"], row["hits"], row["misses"]) == (100, hits, 100 - hits)
        assert row["accuracy"] == pytest.approx(hits / 100)
        ci = binomtest(hits, 100).proportion_ci(confidence_level=0.95, method="wilson")
        assert row["accuracy_low"] == pytest.approx(ci.low, abs=1e-9)
        assert row["accuracy_high"] == pytest.approx(ci.high, abs=1e-9)


def test_wilson_edge_cases() -> None:
    assert metrics.wilson(0, 0) == (None, None)
    low, high = metrics.wilson(0, 10)
    assert low == 0
    assert high == pytest.approx(binomtest(0, 10).proportion_ci(method="wilson").high)
    for n in range(1, 400):  # the plain formula leaves 3.5e-18 or 0.9999999999999999 for some n
        assert metrics.wilson(0, n)[0] == 0.0, n
        assert metrics.wilson(n, n)[1] == 1.0, n


def test_interval_bounds_are_exact_at_0_and_1(client: Client, dataset, ann) -> None:
    """Label 0: 3 misses (the plain Wilson formula gives a lower bound of 5.6e-17); label 1:
    10 hits (it gives an upper bound of 0.9999999999999999). Every hit below every miss, so
    above θ = 0.5 no hit is left: a ratio of exactly 0."""
    taxonomy, labels = make_labels(2, name="edges")
    items = make_items(dataset, 13, prefix="edge")
    probabilities = [0.9, 0.8, 0.7] + [0.1 + 0.02 * i for i in range(10)]
    run, predictions = make_run(
        dataset, taxonomy, items, [labels[0]] * 3 + [labels[1]] * 10, probabilities
    )
    sample, sample_items = make_sample(run, predictions)
    add_verdicts((si, ann, "miss" if i < 3 else "hit") for i, si in enumerate(sample_items))

    classes = api(client, "lee", f"/api/samples/{sample.pk}/classes/").json()["rows"]
    rows = {r["label"]: r for r in classes}
    assert rows["label 00"]["accuracy_low"] == 0.0
    assert rows["label 01"]["accuracy_high"] == 1.0
    scores = api(client, "lee", f"/api/samples/{sample.pk}/scores/").json()["rows"]
    assert scores[0]["correct"] == 10
    assert scores[0]["covered"] == 13

    table = api(client, "lee", f"/api/samples/{sample.pk}/thresholds/").json()
    by_theta = {r["threshold"]: r for r in table["rows"]}
    assert (by_theta[0.0]["ratio"], by_theta[0.0]["ratio_low"], by_theta[0.0]["ratio_high"]) == (
        1.0, 1.0, 1.0,
    )  # fmt: skip
    assert (by_theta[0.5]["ratio"], by_theta[0.5]["ratio_low"], by_theta[0.5]["ratio_high"]) == (
        0.0, 0.0, 0.0,
    )  # fmt: skip
    # The bounds as the API writes them: no 3.5e-18 or 0.9999999999999999 in the text.
    body = client.get(f"/api/samples/{sample.pk}/classes/").content.decode()
    assert "e-1" not in body
    assert "0.99999999" not in body


def test_krippendorff_reference_data() -> None:
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders × 12 units
    with missing values, nominal alpha 0.743."""
    nan = np.nan
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    assert round(metrics.nominal_alpha(data), 3) == 0.743
    assert metrics.nominal_alpha(np.array([[1.0, 1.0], [1.0, 1.0]])) is None


def test_agreement_binary_reference_through_api(client: Client, small, ann, abe) -> None:
    """Krippendorff (2011) binary example, two observers, ten units: nominal alpha 0.095.
    Here 1 = hit, 0 = miss; kappa checked against a confusion-matrix computation."""
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    value = {1: "hit", 0: "miss"}
    add_verdicts(
        [(si, ann, value[x]) for si, x in zip(small.sample_items, a, strict=True)]
        + [(si, abe, value[y]) for si, y in zip(small.sample_items, b, strict=True)]
    )
    body = api(client, "lee", f"/api/samples/{small.sample.pk}/agreement/").json()
    assert body["items"] == 10
    assert round(body["alpha"], 3) == 0.095
    confusion = np.zeros((2, 2))
    for x, y in zip(a, b, strict=True):
        confusion[x, y] += 1
    n = confusion.sum()
    po = np.trace(confusion) / n
    pe = (confusion.sum(axis=1) @ confusion.sum(axis=0)) / n**2
    (pair,) = body["pairs"]
    assert (pair["a"], pair["b"], pair["items"]) == ("abe", "ann", 10)
    assert pair["kappa"] == pytest.approx((po - pe) / (1 - pe))


def test_kappa_textbook_example() -> None:
    """20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: kappa 0.4."""
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert metrics.cohen_kappa(a, b) == pytest.approx(0.4)
    assert metrics.cohen_kappa([1, 1], [1, 1]) is None


def test_majority_ties_and_skips(client: Client, small, ann, abe, lee) -> None:
    s = small.sample_items
    add_verdicts(
        [
            (s[0], ann, "hit"), (s[0], abe, "hit"), (s[0], lee, "miss"),  # hit 2:1
            (s[1], ann, "hit"), (s[1], abe, "miss"),  # tie: excluded, counted
            (s[2], ann, "skip"), (s[2], abe, "skip"),  # only skips: pending
            (s[3], ann, "miss"), (s[3], abe, "skip"),  # skip ignored: miss
            (s[5], ann, "miss"), (s[5], abe, "miss"), (s[5], lee, "hit"),  # miss 2:1
        ]
    )  # fmt: skip
    body = api(client, "lee", f"/api/samples/{small.sample.pk}/thresholds/").json()
    assert body["ties"] == 1
    assert (body["rows"][0]["hits"], body["rows"][0]["errors"]) == (1, 2)
    agreement = api(client, "lee", f"/api/samples/{small.sample.pk}/agreement/").json()
    assert agreement["items"] == 3  # items 0, 1 and 5 have two or more hit/miss verdicts
    pairs = {(p["a"], p["b"]): p["items"] for p in agreement["pairs"]}
    assert pairs == {("abe", "ann"): 3, ("abe", "lee"): 2, ("ann", "lee"): 2}
    progress = api(client, "lee", f"/api/samples/{small.sample.pk}/progress/").json()
    assert {a["annotator"]: a["verdicts"] for a in progress["annotators"]} == {
        "abe": 5, "ann": 5, "lee": 2,
    }  # fmt: skip
    # Items 0, 1 and 5 have their 2 wanted hit/miss verdicts; skips do not count (items 2, 3).
    assert (progress["complete"], progress["given"]) == (3, 7)


def test_scores_of_other_runs(client: Client, small, dataset, ann) -> None:
    s = small.sample_items
    l0, l1, l2 = small.labels
    add_verdicts(
        [
            (s[0], ann, "hit"),  # item 0 is l0
            (s[1], ann, "miss", l2),  # item 1 is l2
            (s[2], ann, "miss"),  # item 2 is not l0 (true label unknown)
            (s[5], ann, "hit"),  # item 5 is l1
            (s[6], ann, "skip"),  # nothing known
        ]
    )
    # A reclassification: item 0 -> l0 (right), 1 -> l2 (right), 2 -> l1 (unknown), 5 -> l0
    # (wrong), 6 -> l1 (unknown).
    labels = [l0, l2, l1, l0, l0, l0, l1, l1, l1, l1, l2, l2]
    _other, _ = make_run(dataset, small.taxonomy, small.items, labels, [0.5] * 12, name="new")
    body = api(client, "lee", f"/api/samples/{small.sample.pk}/scores/").json()
    rows = {r["name"]: r for r in body["rows"]}
    assert body["items"] == 4
    assert rows["run"]["current"]
    assert not rows["new"]["current"]
    # Own run: items 0 and 5 right, 1 and 2 wrong. New run: 0 and 1 right, 5 wrong; 2 is l1:
    # unknown (only "not l0" is known).
    assert (rows["run"]["covered"], rows["run"]["correct"]) == (4, 2)
    assert (rows["new"]["covered"], rows["new"]["correct"]) == (3, 2)
    assert rows["new"]["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("user", "status"), [("lee", 200), ("ada", 200), ("ann", 403), ("otto", 404)]
)
@pytest.mark.parametrize("endpoint", ["thresholds", "classes", "agreement", "scores"])
def test_api_permissions(client: Client, small, ada, otto, user, status, endpoint) -> None:
    response = api(client, user, f"/api/samples/{small.sample.pk}/{endpoint}/")
    assert response.status_code == status


def test_api_anonymous_and_other_dataset(client: Client, small, otto) -> None:
    assert client.get(f"/api/samples/{small.sample.pk}/thresholds/").status_code in (401, 403)
    assert api(client, "lee", "/api/samples/999999/thresholds/").status_code == 404
    bad_step = api(client, "lee", f"/api/samples/{small.sample.pk}/thresholds/?step=0")
    assert bad_step.status_code == 400


def test_etag_answers_304_until_a_verdict_arrives(client: Client, small, ann) -> None:
    url = f"/api/samples/{small.sample.pk}/thresholds/"
    first = api(client, "lee", url)
    etag = first["ETag"]
    assert api(client, "lee", url, if_none_match=etag).status_code == 304
    add_verdicts([(small.sample_items[0], ann, "hit")])
    again = api(client, "lee", url, if_none_match=etag)
    assert again.status_code == 200
    assert again["ETag"] != etag
    assert again.json()["rows"][0]["hits"] == 1


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


QUERY_COUNTS = {
    "/api/samples/{}/thresholds/": 7,
    "/api/samples/{}/classes/": 8,
    "/api/samples/{}/agreement/": 7,
    "/api/samples/{}/scores/": 8,
    "/api/samples/{}/progress/": 8,
    "/samples/{}/": 16,  # + the run's coverage at the grid (headline)
    "/samples/{}/dashboard/poll/": 16,
}


def test_constant_query_count(client: Client, published, small, ann, abe) -> None:
    """The same number of queries for a 10-item sample without verdicts and a 1,000-item
    sample with 1,000+ verdicts (never one per row). One test for every door: the 1,000-item
    fixture is built once."""
    add_verdicts([(si, abe, "hit") for si in published.sample_items[:300]])
    client.login(username="lee", password=PASSWORD)
    counts = {}
    for path in QUERY_COUNTS:
        sizes = {count_queries(client, path.format(s.pk)) for s in (small.sample, published.sample)}
        assert len(sizes) == 1, (path, sizes)
        counts[path] = sizes.pop()
    assert counts == QUERY_COUNTS


def test_thresholds_command(published) -> None:
    out = StringIO()
    call_command("thresholds", published.sample.pk, stdout=out)
    text = out.getvalue()
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("0.60"))
    # Printed rounded: 0.5870, 0.4389, 1.3374 (the published table truncates).
    assert line.split()[:7] == ["0.60", "507", "270", "237", "0.5870", "0.4389", "1.3374"]
    out = StringIO()
    call_command("thresholds", published.sample.pk, "--json", "--step", "0.2", stdout=out)
    data = json.loads(out.getvalue())
    assert [r["threshold"] for r in data["rows"]] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert data["rows"][3]["classified"] == 507
    assert math.isclose(data["rows"][3]["ratio"], 1.33737, abs_tol=1e-4)


def test_label_frequency_of_a_succeeded_run_is_read_not_counted(client: Client, published) -> None:
    """A run still at work is counted on every request; one that stored its label counts when
    it succeeded (or got them from migration 0008) is not counted at all."""
    from classifier.scoring import count_labels

    client.login(username="lee", password=PASSWORD)
    url = f"/api/samples/{published.sample.pk}/classes/"
    published.run.status = "running"
    published.run.save()
    counted = count_queries(client, url)
    before = client.get(url).json()
    published.run.status = "succeeded"
    published.run.label_counts = {str(k): n for k, n in count_labels(published.run.pk).items()}
    published.run.save()
    assert count_queries(client, url) == counted - 1  # no GROUP BY over the run
    assert client.get(url).json() == before
    assert before["rows"][0]["frequency"] == 125


def test_degenerate_samples(client: Client, small, dataset, ann) -> None:
    """No items, no verdicts, only hits: every value is a number or null, never an error."""
    from annotate.validation.models import Sample

    empty = Sample.objects.create(run=small.run)
    for sample in (empty, small.sample):
        for endpoint in ("thresholds", "classes", "agreement", "scores", "progress"):
            response = api(client, "lee", f"/api/samples/{sample.pk}/{endpoint}/")
            assert response.status_code == 200, (sample.pk, endpoint)
        assert client.get(f"/samples/{sample.pk}/").status_code == 200
    add_verdicts([(si, ann, "hit") for si in small.sample_items])
    body = api(client, "lee", f"/api/samples/{small.sample.pk}/thresholds/").json()
    assert body["rows"][0]["hit_rate"] == 1
    assert body["rows"][0]["error_rate"] is None
    assert body["best_threshold"] is None
    assert body["mean_probability_misses"] is None
    assert all(r["ratio"] is None and r["ratio_low"] is None for r in body["rows"])
    assert api(client, "lee", f"/api/samples/{small.sample.pk}/agreement/").json() == {
        "alpha": None, "items": 0, "pairs": [],
    }  # fmt: skip


def test_thresholds_command_errors(small) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no sample"):
        call_command("thresholds", 999999, stdout=StringIO())
    with pytest.raises(CommandError, match="step"):
        call_command("thresholds", small.sample.pk, "--step", "2", stdout=StringIO())
