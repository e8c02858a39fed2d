"""The ITR summary: counts, changes by kind, alpha per task against the krippendorff package,
the distributions, Spearman's rho against scipy, the imported list, per-reviewer agreement; who
may read it."""

import krippendorff
import numpy as np
import pytest
from scipy.stats import spearmanr

from annotate.itr.importers import controversial_import
from annotate.itr.models import ItrItem
from annotate.itr.services import decision_record, review_record
from annotate.itr.summary import itr_summary, reviewer_agreement
from tests.itr.conftest import api_for

# Rows 0-1 train; rows 2-9 test (published 01 10 11 00 00 11 01 10).
LABELS = [(0, 0), (1, 1), (0, 1), (1, 0), (1, 1), (0, 0), (0, 0), (1, 1), (0, 1), (1, 0)]
# Votes of rev1..rev3 (rev4 and rev5 on some) per test row.
VOTES = {
    2: [(1, 1), (1, 1), (0, 1)],  # -> 11: text changed
    3: [(1, 1), (1, 1), (1, 1), (1, 0)],  # -> 11: image changed (rev4 dissents)
    4: [(0, 0), (0, 0), (1, 1)],  # -> 00: both changed
    5: [(0, 0), (0, 0), (0, 0)],  # kept
    6: [(0, 1), (0, 0)],  # in review (below the quorum)
}


def vote(dataset, reviewers) -> None:
    for row, votes in VOTES.items():
        item = ItrItem.objects.get(dataset=dataset, row=row)
        for user, (t, i) in zip(reviewers, votes, strict=False):
            reason = "" if (t, i) == item.original else "why"
            review_record(
                item=item, reviewer=user, text_is_represented=t, image_adds=i, reason=reason
            )


@pytest.fixture
def studied(make_itr, reviewers, lee):
    dataset = make_itr(LABELS, split=2)
    vote(dataset, reviewers)
    # lee decides row 7 (11 -> 10): an image change.
    item = ItrItem.objects.get(dataset=dataset, row=7)
    decision_record(item=item, lead=lee, text_is_represented=1, image_adds=0, note="no image")
    controversial_import(dataset=dataset, text="01->11: 2\n00->01: 5\n")
    return dataset


def test_counts_and_changes(studied) -> None:
    s = itr_summary(studied)
    assert s["items"] == 8
    assert s["reviewed"] == 5
    assert s["reviews"] == 3 + 4 + 3 + 3 + 2
    assert s["quorum"] == 3
    assert s["status"] == {"pending": 2, "in_review": 1, "consensus": 4, "decided": 1}
    assert (s["text"], s["image"], s["both"], s["changed"]) == (1, 2, 1, 4)
    assert s["listed"] == {"items": 2, "settled": 2, "confirmed": 1, "kept": 1}


def test_distributions(studied) -> None:
    s = itr_summary(studied)
    before = s["distribution"]["before"]
    assert {k: before[k] for k in ("00", "01", "10", "11")} == {
        "00": 2,
        "01": 2,
        "10": 2,
        "11": 2,
    }
    assert before["text_is_represented_percent"] == 50.0
    assert before["image_adds_percent"] == 50.0
    after = s["distribution"]["after"]
    # Finals: 11 11 00 00 00 10 01 10.
    assert {k: after[k] for k in ("00", "01", "10", "11")} == {"00": 3, "01": 1, "10": 2, "11": 2}
    assert after["text_is_represented_percent"] == 50.0
    assert after["image_adds_percent"] == 37.5


def test_alpha_per_task_equals_the_krippendorff_package(studied) -> None:
    s = itr_summary(studied)
    # Reviewers rev1..rev4 (rows) x items with two or more reviews (columns 2..6), NaN when missing.
    for task, key in ((0, "alpha_text"), (1, "alpha_image")):
        data = np.full((4, 5), np.nan)
        for column, row in enumerate(sorted(VOTES)):
            for r, labels in enumerate(VOTES[row]):
                data[r, column] = labels[task]
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert s[key] == pytest.approx(expected, abs=1e-4), key


def test_alpha_is_null_without_two_reviews(make_itr, reviewers) -> None:
    dataset = make_itr([(0, 0), (1, 1)], split=0)
    item = ItrItem.objects.get(dataset=dataset, row=0)
    review_record(item=item, reviewer=reviewers[0], text_is_represented=0, image_adds=0)
    s = itr_summary(dataset)
    assert (s["alpha_text"], s["alpha_image"]) == (None, None)
    assert s["reviewers"][0]["agreement_text"] is None  # nothing settled yet


def test_spearman_before_and_after_against_scipy(studied) -> None:
    assert itr_summary(studied)["spearman_before"] is None  # no model signal yet
    similarities = [0.31, 0.12, 0.28, 0.2, 0.05, 0.33, 0.18, 0.22]
    items = list(ItrItem.objects.filter(dataset=studied, split="test").order_by("row"))
    for item, similarity in zip(items, similarities, strict=True):
        item.similarity = similarity
    ItrItem.objects.bulk_update(items, ["similarity"])
    s = itr_summary(studied)
    score = lambda t, i: 1 + 2 * t + i  # noqa: E731
    before = spearmanr(similarities, [score(*i.original) for i in items])
    after = spearmanr(similarities, [score(*i.final) for i in items])
    assert s["spearman_before"]["rho"] == pytest.approx(before.statistic, abs=1e-4)
    assert s["spearman_before"]["p"] == pytest.approx(before.pvalue)
    assert s["spearman_before"]["n"] == 8
    assert s["spearman_after"]["rho"] == pytest.approx(after.statistic, abs=1e-4)
    assert s["spearman_after"]["rho"] != s["spearman_before"]["rho"]


def test_reviewer_agreement(studied) -> None:
    by_name = {r["reviewer"]: r for r in itr_summary(studied)["reviewers"]}
    assert list(by_name) == ["rev1", "rev2", "rev3", "rev4"]
    # rev3 on the settled rows 2 (01 vs 11), 3 (11), 4 (11 vs 00), 5 (00).
    assert by_name["rev3"]["reviews"] == 4
    assert by_name["rev3"]["settled"] == 4
    assert by_name["rev3"]["agreement_text"] == 0.5
    assert by_name["rev3"]["agreement_image"] == 0.75
    assert by_name["rev3"]["agreement"] == 0.5
    assert by_name["rev1"]["reviews"] == 5
    assert by_name["rev1"]["settled"] == 4
    assert by_name["rev1"]["agreement"] == 1.0
    assert by_name["rev4"]["agreement_image"] == 0.0


def test_reviewer_agreement_is_a_plain_function() -> None:
    rows = reviewer_agreement([(1, "b", 1, 0), (1, "a", 1, 1), (2, "a", 0, 0)], {1: (1, 1)})
    assert rows == [
        {
            "reviewer": "a",
            "reviews": 2,
            "settled": 1,
            "agreement": 1.0,
            "agreement_text": 1.0,
            "agreement_image": 1.0,
        },
        {
            "reviewer": "b",
            "reviews": 1,
            "settled": 1,
            "agreement": 0.0,
            "agreement_text": 1.0,
            "agreement_image": 0.0,
        },
    ]


def test_endpoint(studied, lee, reviewers, otto) -> None:
    response = api_for(lee).get(f"/api/itr/{studied.pk}/summary/")
    assert response.status_code == 200
    body = response.json()
    assert body == {**itr_summary(studied), "spearman_before": None, "spearman_after": None}
    assert set(body) >= {"text", "image", "both", "alpha_text", "alpha_image", "reviewers"}
    # Leads and admins: live results would sway reviewers; outsiders 404.
    assert api_for(reviewers[0]).get(f"/api/itr/{studied.pk}/summary/").status_code == 403
    assert api_for(otto).get(f"/api/itr/{studied.pk}/summary/").status_code == 404


def test_empty_dataset(make_itr, lee) -> None:
    dataset = make_itr([(0, 0), (1, 1)], split=2)  # no test item
    body = api_for(lee).get(f"/api/itr/{dataset.pk}/summary/").json()
    assert body["items"] == 0
    assert body["quorum"] is None
    assert body["distribution"]["before"]["text_is_represented_percent"] is None
    assert body["reviewers"] == []
