"""The lead's queue, comments, controversial upload and adjudication page: who may do what
(lee leads, rev1..rev5 review, otto is an outsider, ada a global admin), the two rankings
(vote margin; CROWDLAB checked against cleanlab called directly), the query count pinned
across dataset sizes, escaped comments, decisions through the page form."""

import numpy as np
import pytest
from cleanlab.multiannotator import get_label_quality_multiannotator
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotate.itr.models import ItrComment, ItrDecision, ItrItem, ItrReview, ItrSignal
from annotate.itr.services import review_record
from tests.itr.conftest import api_for, login

# Rows 0-3 train, 4-13 test.
LABELS = [(0, 0), (1, 1), (1, 0), (0, 1)] + [(n % 2, n // 2 % 2) for n in range(10)]
SPLIT = 4


def review(item: ItrItem, reviewer, text: int, image: int) -> None:
    reason = "" if (text, image) == item.original else f"{reviewer.username} thinks so"
    review_record(
        item=item, reviewer=reviewer, text_is_represented=text, image_adds=image, reason=reason
    )


def votes(dataset, reviewers, plan: dict[int, list[tuple[int, int]]]) -> dict[int, ItrItem]:
    """plan: {row: [labels of rev1, rev2, ...]}."""
    items = {i.row: i for i in ItrItem.objects.filter(dataset=dataset)}
    for row, labels in plan.items():
        for reviewer, pair in zip(reviewers, labels, strict=False):
            review(items[row], reviewer, *pair)
    return {i.row: i for i in ItrItem.objects.filter(dataset=dataset)}


# Margins: row 4 splits 3:2 on text (margin 0.2), row 5 2:1 (0.333), row 6 unanimous for a
# change (margin 1.0, disagrees with the original), row 7 agrees with the original (no
# disagreement, not in the queue), row 8 2:2 on image (margin 0).
PLAN = {
    4: [(1, 0), (1, 0), (1, 0), (0, 0), (0, 0)],
    5: [(0, 1), (1, 1), (0, 1)],
    6: [(1, 1), (1, 1), (1, 1)],
    7: [(1, 1), (1, 1), (1, 1)],
    8: [(0, 0), (0, 1), (0, 0), (0, 1)],
}


@pytest.fixture
def reviewed(make_itr, reviewers):
    cache.clear()
    dataset = make_itr(LABELS, split=SPLIT, name="lead")
    votes(dataset, reviewers, PLAN)
    return dataset


def queue_rows(user, dataset, **params) -> dict:
    response = api_for(user).get(f"/api/itr/{dataset.pk}/queue/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_queue_by_margin_without_a_signal(reviewed, lee, reviewers) -> None:
    body = queue_rows(lee, reviewed)
    assert body["ranking"] == "margin"
    assert "no model signal" in body["ranking_note"]
    assert body["signal"] is None
    assert [r["row"] for r in body["results"]] == [8, 4, 5, 6]
    assert body["count"] == 4
    first = body["results"][0]
    assert first["margin"] == 0
    assert first["status"] == "consensus"
    assert [v["reviewer"] for v in first["votes"]] == ["rev1", "rev2", "rev3", "rev4"]
    assert [(v["image_adds"], v["agrees"]) for v in first["votes"]] == [
        (0, True), (1, False), (0, True), (1, False),
    ]  # fmt: skip
    assert first["votes"][1]["reason"] == "rev2 thinks so"
    assert first["votes"][0]["reason"] is None
    assert first["consensus_quality"] is None
    assert first["decision"] is None
    assert first["comments"] == 0
    # Reviewers' agreement with the final labels of the settled items they reviewed.
    agreement = {r["reviewer"]: r for r in body["reviewers"]}
    assert agreement["rev4"]["reviews"] == 2
    assert agreement["rev4"]["agreement"] == 0.0  # outvoted on rows 4 and 8
    assert agreement["rev1"]["agreement"] == 1.0
    assert agreement["rev2"]["agreement_text"] == pytest.approx(4 / 5)  # outvoted on row 5
    assert agreement["rev2"]["agreement_image"] == pytest.approx(4 / 5)  # and on row 8
    assert agreement["rev2"]["agreement"] == pytest.approx(3 / 5)
    assert agreement["rev1"]["quality"] is None
    # Filter and paging.
    assert [r["row"] for r in queue_rows(lee, reviewed, status="consensus")["results"]] == [
        8, 4, 5, 6,
    ]  # fmt: skip
    page = queue_rows(lee, reviewed, limit=2, offset=1)
    assert [r["row"] for r in page["results"]] == [4, 5]
    assert page["next"].endswith("limit=2&offset=3")
    assert queue_rows(lee, reviewed, status="decided")["count"] == 0


def signal_on(dataset, p: dict[int, tuple[float, float]]) -> ItrSignal:
    """A model signal given directly: (p_text, p_image) per row, base rates 0.5."""
    for row, (pt, pi) in p.items():
        ItrItem.objects.filter(dataset=dataset, row=row).update(p_text=pt, p_image=pi)
    details = {"prior_text": 0.5, "prior_image": 0.5}
    return ItrSignal.objects.create(dataset=dataset, details=details)


P = {4: (0.1, 0.1), 5: (0.9, 0.9), 6: (0.95, 0.9), 7: (0.9, 0.9), 8: (0.5, 0.5)}


def cleanlab_order(dataset) -> list[int]:
    """The ranking computed here: the labels matrix and pred_probs built from the rows."""
    items = list(ItrItem.objects.filter(dataset=dataset, review_count__gt=0).order_by("pk"))
    users = sorted({r.reviewer_id for i in items for r in i.reviews.all()})
    labels = np.full((len(items), len(users)), np.nan)
    probs = []
    for n, item in enumerate(items):
        for r in item.reviews.all():
            labels[n, users.index(r.reviewer_id)] = 2 * r.text_is_represented + r.image_adds
        t, i = item.p_text, item.p_image
        probs.append([(1 - t) * (1 - i), (1 - t) * i, t * (1 - i), t * i])
    result = get_label_quality_multiannotator(labels, np.array(probs), verbose=False)
    scores = result["label_quality"]["consensus_quality_score"].tolist()
    queue = [(s, i.margin, i.row) for s, i in zip(scores, items, strict=True) if i.disagreement]
    return [row for *_, row in sorted(queue)]


def test_queue_by_crowdlab_with_a_signal(reviewed, lee) -> None:
    signal_on(reviewed, P)
    body = queue_rows(lee, reviewed)
    assert body["ranking"] == "crowdlab"
    assert body["ranking_note"] is None
    assert [r["row"] for r in body["results"]] == cleanlab_order(reviewed)
    # Row 4's majority (3:2) goes against a confident model: weaker than row 8's tie.
    assert [r["row"] for r in body["results"]] == [4, 8, 5, 6]
    scores = [r["consensus_quality"] for r in body["results"]]
    assert scores == sorted(scores)
    assert all(0 <= s <= 1 for s in scores)
    assert all(r["crowdlab_text_is_represented"] in (0, 1) for r in body["results"])
    assert all(r["quality"] is not None for r in body["reviewers"])
    # A new review changes the scores (a new cache key); a decision does not need to.
    items = {i.row: i for i in ItrItem.objects.filter(dataset=reviewed)}
    review(items[5], api_user("rev4"), 1, 1)
    again = queue_rows(lee, reviewed)
    assert [r["row"] for r in again["results"]] == cleanlab_order(reviewed)
    assert next(r for r in again["results"] if r["row"] == 5)["review_count"] == 4


def api_user(name: str):
    from django.contrib.auth.models import User

    return User.objects.get(username=name)


def test_crowdlab_falls_back_to_the_margin(make_itr, reviewers, lee) -> None:
    """One reviewer, or no item with two reviews: CROWDLAB cannot rank; the queue says so."""
    cache.clear()
    dataset = make_itr(LABELS, split=SPLIT, name="few")
    votes(dataset, reviewers, {4: [(1, 0)]})
    signal_on(dataset, P)
    body = queue_rows(lee, dataset)
    assert body["ranking"] == "margin"
    assert "two reviewers" in body["ranking_note"]
    votes(dataset, reviewers[1:], {5: [(1, 1)]})
    body = queue_rows(lee, dataset)
    assert body["ranking"] == "margin"
    assert "two reviews" in body["ranking_note"]
    assert [r["row"] for r in body["results"]] == [4, 5]


@pytest.mark.parametrize(
    ("user", "code"), [("lee", 200), ("ada", 200), ("rev1", 403), ("otto", 404)]
)
def test_queue_permissions(reviewed, ada, otto, user, code) -> None:
    assert api_for(api_user(user)).get(f"/api/itr/{reviewed.pk}/queue/").status_code == code


def test_queue_bad_parameters(reviewed, lee) -> None:
    client = api_for(lee)
    for query in ("status=done", "limit=0", "offset=-1", "limit=x"):
        assert client.get(f"/api/itr/{reviewed.pk}/queue/?{query}").status_code == 400
    assert client.get("/api/itr/999999/queue/").status_code == 404


def count_queries(user, url: str) -> int:
    client = api_for(user)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_queue_query_count_does_not_grow(make_itr, reviewers, lee) -> None:
    """The same number of queries for a queue of 4 and of 40 items, with CROWDLAB's scores
    cached (second call) or not."""
    cache.clear()
    counts = []
    for name, rows in (("q-small", 4), ("q-large", 40)):
        labels = [(0, 0)] * SPLIT + [(n % 2, 0) for n in range(rows)]
        dataset = make_itr(labels, split=SPLIT, name=name)
        plan = {SPLIT + n: [(1, 0), (0, 0), (1, 1)] for n in range(rows)}
        items = votes(dataset, reviewers, plan)
        for item in list(items.values())[:3]:
            api_for(lee).post(f"/api/itr/items/{item.pk}/comments/", {"text": "hm"}, format="json")
        signal_on(dataset, dict.fromkeys(plan, (0.3, 0.6)))
        url = f"/api/itr/{dataset.pk}/queue/"
        counts.append((count_queries(lee, url), count_queries(lee, url)))
    assert counts[0] == counts[1]
    uncached, cached = counts[0]
    assert uncached == cached + 1  # the reviews read for CROWDLAB


def test_comments(reviewed, lee, reviewers, otto) -> None:
    items = {i.row: i for i in ItrItem.objects.filter(dataset=reviewed)}
    url = f"/api/itr/items/{items[4].pk}/comments/"
    created = api_for(lee).post(url, {"text": "  <b>why?</b> "}, format="json")
    assert created.status_code == 201
    assert created.json()["text"] == "<b>why?</b>"
    assert created.json()["author"] == "lee"
    # rev4 reviewed row 4 and may answer; rev5 did not review row 5 and may not.
    assert api_for(reviewers[3]).post(url, {"text": "I misread"}, format="json").status_code == 201
    other = f"/api/itr/items/{items[5].pk}/comments/"
    assert api_for(reviewers[4]).get(other).status_code == 403
    assert api_for(reviewers[4]).post(other, {"text": "x"}, format="json").status_code == 403
    assert api_for(otto).get(url).status_code == 404
    thread = api_for(reviewers[0]).get(url).json()
    assert [(c["author"], c["text"]) for c in thread["results"]] == [
        ("lee", "<b>why?</b>"), ("rev4", "I misread"),
    ]  # fmt: skip
    for bad in ({"text": ""}, {"text": "   "}, {"text": 5}, {}, {"text": "x" * 5001}):
        assert api_for(lee).post(url, bad, format="json").status_code == 400
    assert ItrComment.objects.filter(item=items[4]).count() == 2
    assert queue_rows(lee, reviewed)["results"][1]["comments"] == 2


def test_controversial_upload(reviewed, lee, reviewers) -> None:
    url = f"/api/itr/{reviewed.pk}/controversial/"
    # Row 4 is (0, 0), row 5 (1, 0), row 6 (0, 1).
    ok = api_for(lee).post(url, {"text": "00->10: 4\n10->01: 5\n01->00: 6"}, format="json")
    assert ok.status_code == 200
    assert ok.json() == {"listed": 3, "text": 1, "image": 1, "both": 1}
    bad = api_for(lee).post(url, {"text": "00->10: 4, 99\n11->10: 5\nnonsense"}, format="json")
    assert bad.status_code == 400
    body = bad.json()
    assert body["errors"] == [
        "line 1: row 99 is not in dataset lead",
        "line 2: row 5 is labelled 10, not 11",
        "line 3: expected 'AB->CD: row, row, ...' (A..D are 0 or 1)",
    ]
    assert "nothing was imported" in body["detail"]
    assert ItrItem.objects.filter(dataset=reviewed, listed=True).count() == 3
    assert api_for(reviewers[0]).post(url, {"text": "00->10: 4"}, format="json").status_code == 403
    assert api_for(lee).post(url, {"text": ["x"]}, format="json").status_code == 400


def test_decision_then_queue_status(reviewed, lee) -> None:
    items = {i.row: i for i in ItrItem.objects.filter(dataset=reviewed)}
    body = {"item": items[8].pk, "text_is_represented": 0, "image_adds": 1, "note": "a tie"}
    assert api_for(lee).post("/api/itr/decisions/", body, format="json").status_code == 201
    decided = queue_rows(lee, reviewed, status="decided")["results"]
    assert [r["row"] for r in decided] == [8]
    assert decided[0]["decision"]["note"] == "a tie"
    assert decided[0]["final_image_adds"] == 1
    assert ItrDecision.objects.get(item=items[8]).decided_by == lee


# ---------------------------------------------------------------- the adjudication page

HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize(
    ("user", "code"), [("lee", 200), ("ada", 200), ("rev1", 403), ("otto", 404)]
)
def test_adjudicate_page_permissions(client: Client, reviewed, ada, otto, user, code) -> None:
    url = f"/itr/{reviewed.pk}/adjudicate/"
    assert login(client, user).get(url).status_code == code
    item = ItrItem.objects.filter(dataset=reviewed, row=4).get()
    body = {"text_is_represented": "1", "image_adds": "0", "note": "n"}
    expected = 302 if code == 200 else code  # plain form posts redirect back to the page
    assert client.post(f"/itr/items/{item.pk}/decide/", body).status_code == expected
    assert client.post(f"/itr/items/{item.pk}/comments/", {"text": "x"}).status_code == expected


def test_adjudicate_page_requires_login(client: Client, reviewed) -> None:
    response = client.get(f"/itr/{reviewed.pk}/adjudicate/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_adjudicate_page_lists_votes_escaped(client: Client, reviewed, reviewers) -> None:
    items = {i.row: i for i in ItrItem.objects.filter(dataset=reviewed)}
    review(items[4], reviewers[3], 1, 1)  # rev4 changes their vote: row 4's margin is now 0.6
    ItrReview.objects.filter(item=items[4], reviewer=reviewers[3]).update(
        reason="<script>alert(1)</script>"
    )
    ItrComment.objects.create(item=items[4], author=reviewers[3], text="<img src=x onerror=1>")
    page = login(client, "lee").get(f"/itr/{reviewed.pk}/adjudicate/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "&lt;img src=x onerror=1&gt;" in page
    assert page.index('data-row="8"') < page.index('data-row="5"') < page.index('data-row="4"')
    assert 'data-ranking="margin"' in page
    decided = login(client, "lee").get(f"/itr/{reviewed.pk}/adjudicate/?status=decided")
    assert "Nothing to adjudicate with this status" in decided.content.decode()
    # Bad parameters fall back instead of failing.
    for query in ("status=nope", "page=0", "page=x", "page=99999999999999999999"):
        assert client.get(f"/itr/{reviewed.pk}/adjudicate/?{query}").status_code in (200, 302)


def test_decision_through_the_page_form(client: Client, reviewed, lee) -> None:
    item = ItrItem.objects.get(dataset=reviewed, row=8)
    url = f"/itr/items/{item.pk}/decide/"
    login(client, "lee")
    refused = client.post(
        url, {"text_is_represented": "0", "image_adds": "1", "note": " "}, headers=HTMX
    )
    assert refused.status_code == 200
    assert "note is required" in refused.content.decode()
    assert not ItrDecision.objects.filter(item=item).exists()
    body = {
        "text_is_represented": "0",
        "image_adds": "1",
        "note": "a tie <b>broken</b>",
        "rank": "3",
    }
    card = client.post(url, body, headers=HTMX).content.decode()
    assert "Decision saved." in card
    assert "#3" in card
    assert "a tie &lt;b&gt;broken&lt;/b&gt;" in card
    assert f'id="item-{item.pk}"' in card
    decision = ItrDecision.objects.get(item=item)
    assert (decision.text_is_represented, decision.image_adds, decision.decided_by) == (0, 1, lee)
    item.refresh_from_db()
    assert (item.status, item.final) == ("decided", (0, 1))
    # A plain POST (no JavaScript) redirects back to the item on the page.
    body["image_adds"] = "0"
    plain = client.post(url, body)
    assert plain.status_code == 302
    assert plain["Location"] == f"/itr/{reviewed.pk}/adjudicate/#item-{item.pk}"
    assert ItrDecision.objects.get(item=item).image_adds == 0
    withdrawn = client.post(f"/itr/items/{item.pk}/withdraw/", headers=HTMX).content.decode()
    assert "Decision withdrawn." in withdrawn
    assert not ItrDecision.objects.filter(item=item).exists()
    bad = client.post(
        url, {"text_is_represented": "2", "image_adds": "0", "note": "x"}, headers=HTMX
    )
    assert "must be 0 or 1" in bad.content.decode()


def test_comment_through_the_page(client: Client, reviewed, lee) -> None:
    item = ItrItem.objects.get(dataset=reviewed, row=5)
    url = f"/itr/items/{item.pk}/comments/"
    login(client, "lee")
    thread = client.post(url, {"text": "<i>rev2</i>, why 1?"}, headers=HTMX).content.decode()
    assert thread.startswith(f'<section class="adj-comments" id="comments-{item.pk}"')
    assert "&lt;i&gt;rev2&lt;/i&gt;, why 1?" in thread
    assert "Discussion (1)" in thread
    empty = client.post(url, {"text": "   "}, headers=HTMX).content.decode()
    assert "comment is required" in empty
    assert ItrComment.objects.filter(item=item).count() == 1


def page_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_adjudicate_page_query_count_does_not_grow(client: Client, make_itr, reviewers) -> None:
    cache.clear()
    login(client, "lee")
    counts = []
    for name, rows in (("p-small", 3), ("p-large", 30)):
        labels = [(0, 0)] * SPLIT + [(n % 2, 0) for n in range(rows)]
        dataset = make_itr(labels, split=SPLIT, name=name)
        votes(dataset, reviewers, {SPLIT + n: [(1, 0), (0, 0), (1, 1)] for n in range(rows)})
        signal_on(dataset, dict.fromkeys(range(SPLIT, SPLIT + rows), (0.3, 0.6)))
        counts.append(page_queries(client, f"/itr/{dataset.pk}/adjudicate/"))
    assert counts[0] == counts[1]


def test_non_ascii_digits_are_refused_not_a_500(client: Client, reviewed, lee, reviewers) -> None:
    """'²' passes `str.isdigit` but not `int`: every id-like value is refused plainly."""
    client.force_login(lee)
    adjudicate = client.get(f"/itr/{reviewed.pk}/adjudicate/", {"page": "²"})
    assert adjudicate.status_code == 200
    signal = client.post(
        f"/itr/{reviewed.pk}/signal/", {"run": "²"}, headers={"HX-Request": "true"}
    )
    assert signal.status_code == 200
    assert "Choose a succeeded classification run" in signal.content.decode()
    listed = client.post(
        f"/itr/{reviewed.pk}/controversial/", {"text": "00->11: ²"}, headers={"HX-Request": "true"}
    )
    assert listed.status_code == 200
    assert "is not a row number" in listed.content.decode()
    client.force_login(reviewers[0])
    fragment = f"/itr/{reviewed.pk}/review/item/"
    assert client.get(fragment, {"exclude": "²"}).status_code == 200
    assert client.get(fragment, {"item": "²"}).status_code == 404
