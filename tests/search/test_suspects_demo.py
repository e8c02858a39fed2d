"""Suspects on the demo (500 drawings of 10 scenes, trained demo model, its run about 78 %
right, a balanced sample with simulated verdicts): the likeliest errors are mostly errors."""

import pytest
from django.contrib.auth.models import User

from classifier.models import Prediction
from tests.validation.conftest import api_for

# Not transactional: the module's demo is committed and a flush would empty it.
pytestmark = pytest.mark.django_db

# Issue 11: the share of wrong labels among the top 50 suspects is at least twice the run's
# error rate. Measured on the demo: 0.60 against 0.218 (2.75x); without the exclusion of
# confirmed items, the score alone gives 0.46 (2.1x).
TOP = 50
FACTOR = 2.0


def truth(demo) -> dict[int, bool]:
    """Per item: whether the demo run's label is the drawn scene (ground truth)."""
    rows = Prediction.objects.filter(run=demo.run).values_list(
        "item_id", "label__key", "item__metadata__scene"
    )
    return {item: key == scene for item, key, scene in rows}


def test_top_50_suspects_hold_at_least_twice_the_error_rate(demo) -> None:
    right = truth(demo)
    error_rate = 1 - sum(right.values()) / len(right)
    response = api_for(User.objects.get(username="lead")).get(
        f"/api/runs/{demo.run.pk}/suspects/?limit={TOP}"
    )
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert len(rows) == TOP
    wrong = sum(not right[row["item"]] for row in rows) / TOP
    print(f"wrong among the top {TOP}: {wrong:.2f}; run error rate {error_rate:.3f}")
    assert 0.15 < error_rate < 0.3  # the demo is what this test was measured on
    assert wrong >= FACTOR * error_rate
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 1 for s in scores)
    assert all(row["reasons"] for row in rows)


def test_admin_sees_them_and_annotators_do_not(demo) -> None:
    url = f"/api/runs/{demo.run.pk}/suspects/?limit=5"
    assert api_for(User.objects.get(username="admin")).get(url).status_code == 200
    assert api_for(User.objects.get(username="annotator1")).get(url).status_code == 403
