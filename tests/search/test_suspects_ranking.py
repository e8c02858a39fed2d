"""`GET /api/runs/{id}/suspects/` on a small weighted run (tests/explorer/conftest.py): the score
is the documented formula, computed in SQL; confirmed items are left out, known-wrong ones
stay with their reason; reasons, label filter, limits, bad input and roles."""

import pytest

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.taxonomies.models import Label
from annotate.validation.suspects import W_DISAGREE, W_MARGIN
from tests.explorer import conftest as explorer_fixtures
from tests.explorer.conftest import Explored
from tests.validation.conftest import api_for

pytestmark = pytest.mark.django_db

# The explorer's small weighted run (captions that disagree, verdicts and an adjudication).
explored = explorer_fixtures.explored
taxonomy = explorer_fixtures.taxonomy


def url(run_id: int, query: str = "") -> str:
    return f"/api/runs/{run_id}/suspects/" + (f"?{query}" if query else "")


def expected_score(p) -> float:
    p2 = p.top5[1][1] if len(p.top5) > 1 else 0.0
    disagree = (
        p.image_label_id is not None
        and p.text_label_id is not None
        and p.image_label_id != p.text_label_id
    )
    return min(1.0, max(0.0, W_MARGIN * (1 - (p.probability - p2)) + W_DISAGREE * disagree))


def test_score_is_the_formula_and_the_order_is_score_then_id(explored: Explored, lee) -> None:
    response = api_for(lee).get(url(explored.run.pk, "limit=1000"))
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    by_item = {p.item_id: p for p in explored.predictions}
    for row in rows:
        p = by_item[row["item"]]
        assert row["score"] == pytest.approx(expected_score(p), abs=1e-6)
        assert row["label"] == p.label.key
        assert row["probability"] == pytest.approx(p.probability)
        assert set(row) >= {"item", "external_id", "label", "probability", "score", "reasons"}
    keys = [(-row["score"], row["prediction"]) for row in rows]
    assert keys == sorted(keys)
    # Every item but the confirmed ones (item 0: two hits; item 3: one hit).
    confirmed = {explored.items[0].pk, explored.items[3].pk}
    assert {row["item"] for row in rows} == set(by_item) - confirmed
    assert rows[0]["score"] > 0.9  # a low margin and a disagreement


def test_reasons_name_labels_and_known_errors(explored: Explored, lee) -> None:
    rows = {
        r["item"]: r for r in api_for(lee).get(url(explored.run.pk, "limit=1000")).json()["results"]
    }
    names = {label.pk: label.name for label in explored.labels}
    disagreeing = explored.predictions[3 * 7]  # i % 3 == 0 and i % 5 != 0: caption differs
    codes = [reason["code"] for reason in rows[disagreeing.item_id]["reasons"]]
    assert "image_caption_disagree" in codes
    text = next(
        r["text"]
        for r in rows[disagreeing.item_id]["reasons"]
        if r["code"] == "image_caption_disagree"
    )
    assert text == (
        f"image says {names[disagreeing.image_label_id]}, caption says "
        f"{names[disagreeing.text_label_id]}"
    )
    quiet = explored.predictions[5 * 7]  # no caption: no disagreement
    assert "image_caption_disagree" not in [r["code"] for r in rows[quiet.item_id]["reasons"]]
    low = explored.predictions[11]  # p1 = 0.15: top two 0.15 vs 0.42
    margin = rows[low.item_id]["reasons"][0]
    assert margin["code"] == "low_margin"
    second = names[low.top5[1][0]]
    assert (
        margin["text"] == f"top two labels {low.label.name} 0.15 vs {second} {low.top5[1][1]:.2f}"
    )
    # Item 1: both annotators said miss; item 4: a lead adjudicated miss. They stay, marked.
    for index in (1, 4, 6):
        codes = [r["code"] for r in rows[explored.items[index].pk]["reasons"]]
        assert "verdict_wrong" in codes, index
    assert "verdict_wrong" not in [r["code"] for r in rows[explored.items[2].pk]["reasons"]]


def test_label_filter_by_key_or_name_and_limit(explored: Explored, lee) -> None:
    client = api_for(lee)
    beach = explored.labels[1]
    by_key = client.get(url(explored.run.pk, f"label={beach.key}&limit=1000")).json()["results"]
    by_name = client.get(url(explored.run.pk, "label=beach&limit=1000")).json()["results"]
    assert by_key == by_name
    assert by_key
    assert {row["label"] for row in by_key} == {beach.key}
    assert len(client.get(url(explored.run.pk, "limit=3")).json()["results"]) == 3
    everything = client.get(url(explored.run.pk, "limit=1000")).json()["results"]
    assert client.get(url(explored.run.pk)).json()["results"] == everything[:100]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("limit=0", 400, "limit"),
        ("limit=1001", 400, "limit"),
        ("limit=ten", 400, "limit"),
        ("limit=%C2%B2", 400, "limit"),
        ("limit=1&limit=2", 400, "limit"),
        ("label=street", 400, "label"),  # two labels are named street: give the key
        ("label=nowhere", 404, None),
        ("label=%00", 400, "label"),
    ],
)
def test_bad_parameters_answer_400_or_404(explored: Explored, lee, query, status, field) -> None:
    response = api_for(lee).get(url(explored.run.pk, query))
    assert response.status_code == status, response.content
    if field:
        assert field in response.json()


def test_roles(explored: Explored, lee, ann, otto, ada) -> None:
    assert api_for(ann).get(url(explored.run.pk)).status_code == 403
    assert api_for(otto).get(url(explored.run.pk)).status_code == 404
    assert api_for(ada).get(url(explored.run.pk)).status_code == 200
    other = Dataset.objects.create(name="elsewhere", image_root=explored.run.dataset.image_root)
    membership_set(dataset=other, user=otto, role=Role.LEAD)
    assert api_for(otto).get(url(explored.run.pk)).status_code == 404
    assert api_for(lee).get(url(999_999)).status_code == 404
    assert api_for(lee).post(url(explored.run.pk)).status_code == 405


def test_label_names_in_reasons_are_escaped_on_the_page(explored: Explored, lee, client) -> None:
    Label.objects.filter(pk=explored.labels[1].pk).update(name='<img src=x onerror="alert(1)">')
    client.force_login(lee)
    response = client.get(f"/runs/{explored.run.pk}/suspects/?limit=1000")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_page_roles_and_bad_input(explored: Explored, lee, ann, otto, client) -> None:
    page = f"/runs/{explored.run.pk}/suspects/"
    assert client.get(page).status_code == 302  # to the login form
    for user, status in ((ann, 403), (otto, 404)):
        client.force_login(user)
        assert client.get(page).status_code == status
    client.force_login(lee)
    assert client.get(page + "?limit=0").status_code == 400
    assert client.get(page + "?label=nowhere").status_code == 404
    response = client.get(page + "?label=&limit=")  # the form's empty fields mean "any"
    assert response.status_code == 200
    assert (
        response.content.decode().count('class="explorer-card suspect-card"')
        == len(explored.predictions) - 2
    )
