"""`GET /api/runs/{id}/items/`: filters, orders, keyset pages (every item exactly once, in
order), errors, permissions and a constant number of queries per page."""

from urllib.parse import urlsplit

import pytest

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Item, Role
from classifier.models import shuffle_of
from tests.explorer.conftest import Explored, write_run
from tests.validation.conftest import api_for

pytestmark = pytest.mark.django_db


def url(run_id: int, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/runs/{run_id}/items/" + (f"?{query}" if query else "")


def walk(client, first: str, max_pages: int = 500) -> list[list[dict]]:
    """Every page, following `next`."""
    pages, address = [], first
    while address and len(pages) < max_pages:
        response = client.get(address)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body["results"])
        address = body["next"]
        if address:
            parts = urlsplit(address)
            address = f"{parts.path}?{parts.query}"
    return pages


def items_of(pages: list[list[dict]]) -> list[int]:
    return [row["item"] for page in pages for row in page]


def by_probability(explored: Explored, descending: bool, keep=lambda p: True) -> list[int]:
    chosen = [p for p in explored.predictions if keep(p)]
    chosen.sort(key=lambda p: (p.probability, p.pk), reverse=descending)
    return [p.item_id for p in chosen]


@pytest.mark.parametrize("limit", [1, 7, 48])
@pytest.mark.parametrize("order", ["-probability", "probability"])
def test_probability_orders_give_every_item_once_in_order(explored, lee, limit, order) -> None:
    pages = walk(api_for(lee), url(explored.run.pk, order=order, limit=limit))
    assert items_of(pages) == by_probability(explored, descending=order == "-probability")
    assert all(len(page) == limit for page in pages[:-1])
    assert len(pages[-1]) <= limit


@pytest.mark.parametrize("limit", [1, 7, 48])
def test_random_order_with_a_seed_gives_every_item_once(explored, lee, limit) -> None:
    client = api_for(lee)
    pages = walk(client, url(explored.run.pk, order="random", seed=12345, limit=limit))
    got = items_of(pages)
    assert sorted(got) == sorted(i.pk for i in explored.items)
    # The stored shuffle key, read from the seed's start and wrapping around.
    start = shuffle_of(12345)
    keyed = sorted(explored.predictions, key=lambda p: (p.shuffle < start, p.shuffle, p.pk))
    assert got == [p.item_id for p in keyed]
    assert all(p.shuffle == shuffle_of(p.item_id) for p in explored.predictions)
    again = walk(client, url(explored.run.pk, order="random", seed=12345, limit=limit))
    assert items_of(again) == got
    other = walk(client, url(explored.run.pk, order="random", seed=99, limit=limit))
    assert sorted(items_of(other)) == sorted(got)
    assert items_of(other) != got


def test_random_order_without_a_seed_draws_one_and_keeps_it(explored, lee) -> None:
    body = api_for(lee).get(url(explored.run.pk, order="random", limit=5)).json()
    assert isinstance(body["seed"], int)
    assert f"seed={body['seed']}" in body["next"]
    pages = walk(api_for(lee), url(explored.run.pk, order="random", limit=5, seed=body["seed"]))
    assert [r["item"] for r in pages[0]] == [r["item"] for r in body["results"]]


def test_rows_carry_the_contract_fields(explored, lee) -> None:
    body = api_for(lee).get(url(explored.run.pk, order="probability", limit=40)).json()
    first = next(r for r in body["results"] if r["item"] == explored.items[0].pk)
    assert set(first) >= {
        "item", "external_id", "label", "probability", "image_probability", "text_probability",
        "thumbnail_url", "hits", "misses", "label_name", "adjudicated", "caption",
    }  # fmt: skip
    assert first["label"] == explored.labels[0].key
    assert first["label_name"] == explored.labels[0].name
    assert first["thumbnail_url"].startswith("http://testserver/items/")
    assert first["text_probability"] is None
    assert first["text_label"] is None
    assert body["next"] is None
    assert body["seed"] is None


def test_label_filter_by_key_or_name(explored, lee) -> None:
    client = api_for(lee)
    beach = explored.labels[1]
    expected = by_probability(explored, True, lambda p: p.label_id == beach.pk)
    assert items_of(walk(client, url(explored.run.pk, label=beach.key, limit=3))) == expected
    assert items_of(walk(client, url(explored.run.pk, label="beach", limit=3))) == expected
    ambiguous = client.get(url(explored.run.pk, label="street"))
    assert ambiguous.status_code == 400
    assert "key" in ambiguous.json()["label"][0]
    assert client.get(url(explored.run.pk, label="nowhere")).status_code == 404


def test_probability_bounds(explored, lee) -> None:
    got = items_of(walk(api_for(lee), url(explored.run.pk, min_probability=0.35,
                                          max_probability=0.65, limit=4)))  # fmt: skip
    assert got == by_probability(explored, True, lambda p: 0.35 <= p.probability <= 0.65)
    assert got  # 0.35, 0.45, 0.55, 0.65 are all stored: the bounds are inclusive


def test_disagreement_filter(explored, lee) -> None:
    got = items_of(walk(api_for(lee), url(explored.run.pk, disagreement=1, limit=5)))
    index = {item.pk: i for i, item in enumerate(explored.items)}
    assert sorted(index[i] for i in got) == [i for i in range(40) if i % 3 == 0 and i % 5]


def verdict_items(client, run_id: int, **params) -> set[int]:
    return set(items_of(walk(client, url(run_id, limit=100, **params))))


def test_verdict_filters(explored, lee) -> None:
    client, run = api_for(lee), explored.run.pk
    p = [si.prediction.item_id for si in explored.sample_items]
    extra = explored.predictions[6].item_id  # a miss by lee in the other sample
    assert verdict_items(client, run, verdict="hit") == {p[0], p[3]}
    # p[4] split 1-1 but a lead adjudicated it a miss; p[6] (item 6) is in both samples.
    assert verdict_items(client, run, verdict="miss") == {p[1], p[4], extra}
    assert verdict_items(client, run, verdict="disputed") == {p[2], p[4]}
    judged = {p[0], p[1], p[2], p[3], p[4], extra}
    assert verdict_items(client, run, verdict="none") == {i.pk for i in explored.items} - judged
    rows = {r["item"]: r for r in walk(client, url(run, verdict="disputed"))[0]}
    assert rows[p[4]]["adjudicated"] == "miss"
    assert rows[p[2]]["adjudicated"] is None
    assert (rows[p[4]]["hits"], rows[p[4]]["misses"]) == (1, 1)


def test_sample_filter_counts_only_that_samples_verdicts(explored, lee) -> None:
    client, run = api_for(lee), explored.run.pk
    other = explored.other_sample.pk
    rows = {r["item"]: r for r in walk(client, url(run, sample=other))[0]}
    assert set(rows) == {explored.predictions[0].item_id, explored.predictions[6].item_id}
    # Item 0 has two hits in the first sample, none in this one.
    assert rows[explored.predictions[0].item_id]["hits"] == 0
    assert rows[explored.predictions[6].item_id]["misses"] == 1
    assert verdict_items(client, run, sample=explored.sample.pk, verdict="miss") == {
        explored.sample_items[1].prediction.item_id, explored.sample_items[4].prediction.item_id
    }  # fmt: skip
    # The dashboard's links.
    label = explored.labels[0].key
    got = verdict_items(client, run, sample=explored.sample.pk, label=label)
    assert got == {si.prediction.item_id for si in explored.sample_items
                   if si.prediction.label_id == explored.labels[0].pk}  # fmt: skip
    got = verdict_items(client, run, sample=explored.sample.pk, min_probability=0.5)
    assert got == {si.prediction.item_id for si in explored.sample_items
                   if si.prediction.probability >= 0.5}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_probability": "1.5"}, "min_probability"),
        ({"max_probability": "abc"}, "max_probability"),
        ({"verdict": "maybe"}, "verdict"),
        ({"order": "name"}, "order"),
        ({"disagreement": "yes"}, "disagreement"),
        ({"limit": "0"}, "limit"),
        ({"seed": "-1"}, "seed"),
        ({"sample": "x"}, "sample"),
    ],
)
def test_malformed_parameters_answer_400(explored, lee, params, field) -> None:
    response = api_for(lee).get(url(explored.run.pk, **params))
    assert response.status_code == 400
    assert field in response.json()


def test_cursors_of_another_list_answer_404(explored, lee, dataset) -> None:
    client = api_for(lee)
    body = client.get(url(explored.run.pk, order="random", seed=1, limit=3)).json()
    cursor = urlsplit(body["next"]).query.split("cursor=")[1]
    assert (
        client.get(url(explored.run.pk, order="random", seed=2, cursor=cursor)).status_code == 404
    )
    assert client.get(url(explored.run.pk, cursor=cursor)).status_code == 404
    assert client.get(url(explored.run.pk, cursor="bm9wZQ")).status_code == 404
    other_run = write_run(dataset, explored.run.taxonomy, explored.items[:3])
    other_sample = explored.sample.pk
    assert client.get(url(other_run.pk, sample=other_sample)).status_code == 404


def test_permissions(explored, lee, ann, otto, image_root) -> None:
    run = explored.run.pk
    assert api_for(ann).get(url(run)).status_code == 403
    assert api_for(otto).get(url(run)).status_code == 404
    assert api_for(otto).get(url(999_999)).status_code == 404
    elsewhere = Dataset.objects.create(name="elsewhere", image_root=str(image_root))
    Item.objects.create(dataset=elsewhere, external_id="x.jpg", image_path="x.jpg")
    foreign = write_run(elsewhere, explored.run.taxonomy, list(elsewhere.items.all()))
    assert api_for(lee).get(url(foreign.pk)).status_code == 404
    membership_set(dataset=elsewhere, user=ann, role=Role.ADMIN)
    assert api_for(ann).get(url(foreign.pk)).status_code == 200


QUERY_CASES = [
    {},
    {"order": "probability"},
    {"order": "random", "seed": "5"},
    {"label": "beach", "min_probability": "0.1"},
    {"verdict": "hit"},
    {"verdict": "none", "disagreement": "1", "max_probability": "0.9"},
    {"sample": "SAMPLE", "verdict": "disputed", "order": "random", "seed": "3"},
]


@pytest.mark.parametrize("params", QUERY_CASES)
def test_queries_per_page_do_not_grow_with_the_page(
    explored, lee, params, django_assert_num_queries
) -> None:
    """Token, the run with the caller's role, then at most a label and a sample check, the
    page's keys, its rows and its verdicts: the same for 2 rows and for 40, on the first page
    and on a later one."""
    client = api_for(lee)
    params = {k: str(explored.sample.pk) if v == "SAMPLE" else v for k, v in params.items()}
    expected = 5 + ("label" in params) + ("sample" in params)
    for limit in (2, 40):
        with django_assert_num_queries(expected):
            body = client.get(url(explored.run.pk, limit=limit, **params)).json()
        if body["next"]:
            parts = urlsplit(body["next"])
            with django_assert_num_queries(expected):
                client.get(f"{parts.path}?{parts.query}")


def test_next_pages_keep_precise_bounds(explored, lee) -> None:
    body = api_for(lee).get(url(explored.run.pk, min_probability="0.1234567", limit=2)).json()
    assert "min_probability=0.1234567&" in body["next"]
