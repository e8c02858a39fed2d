"""The ITR review API: items, the review queue, reviews (one vote per reviewer, idempotency
keys, reasons), undo and decisions; who may do what (rev1..rev5 review, lee leads, otto is an
outsider)."""

import pytest
from PIL import Image

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from annotate.itr.models import ItrDecision, ItrItem, ItrLease, ItrReview
from tests.itr.conftest import api_for

# Rows 0-1 train, rows 2-5 test.
LABELS = [(0, 0), (1, 1), (0, 1), (1, 0), (1, 1), (0, 0)]


@pytest.fixture
def small(make_itr):
    return make_itr(LABELS, split=2)


@pytest.fixture
def other(make_itr):
    """A second ITR dataset, led by lee; rev1..rev5 are members of it too (make_itr)."""
    return make_itr([(0, 0), (1, 1)], split=0, name="other")


def test_items(small, reviewers, lee) -> None:
    response = api_for(reviewers[0]).get(f"/api/itr/{small.pk}/items/?split=test")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    rows = body["results"]
    assert [r["row"] for r in rows] == [2, 3, 4, 5]
    first = rows[0]
    assert first["tweet_id"] == "1002"
    assert first["user_id"] == "2"
    assert first["split"] == "test"
    assert first["text"] == 'tweet 2 says "hi" @user https://t.co/x2'
    assert (first["text_is_represented"], first["image_adds"]) == (0, 1)
    assert first["image_url"] is None
    assert first["my_review"] is None
    # Reviewers never see the consensus, the final labels or the imported list.
    assert "final_text_is_represented" not in first
    assert "status" not in first
    assert "listed" not in first
    lead_rows = api_for(lee).get(f"/api/itr/{small.pk}/items/").json()["results"]
    assert len(lead_rows) == 6
    assert lead_rows[0]["split"] == "train"
    assert lead_rows[2]["status"] == "pending"
    assert lead_rows[2]["final_text_is_represented"] == 0
    assert lead_rows[2]["changed"] is None
    assert lead_rows[2]["listed"] is False


def test_items_filters_and_bad_parameters(small, reviewers, lee) -> None:
    rev1 = api_for(reviewers[0])
    assert rev1.get(f"/api/itr/{small.pk}/items/?split=both").status_code == 400
    assert rev1.get(f"/api/itr/{small.pk}/items/?limit=0").status_code == 400
    # Filters on the consensus are for leads: they would tell reviewers how others voted.
    assert rev1.get(f"/api/itr/{small.pk}/items/?status=consensus").status_code == 403
    assert rev1.get(f"/api/itr/{small.pk}/items/?changed=true").status_code == 403
    lead = api_for(lee)
    assert lead.get(f"/api/itr/{small.pk}/items/?status=bogus").status_code == 400
    item = ItrItem.objects.get(dataset=small, row=3)
    lead.post(
        "/api/itr/decisions/",
        {"item": item.pk, "text_is_represented": 0, "image_adds": 0, "note": "no"},
        format="json",
    )
    changed = lead.get(f"/api/itr/{small.pk}/items/?changed=true").json()["results"]
    assert [r["row"] for r in changed] == [3]
    assert changed[0]["changed"] == "text"
    assert changed[0]["status"] == "decided"
    unchanged = lead.get(f"/api/itr/{small.pk}/items/?changed=false&split=test").json()
    assert unchanged["count"] == 3
    decided = lead.get(f"/api/itr/{small.pk}/items/?status=decided").json()
    assert decided["count"] == 1


def test_image_url_only_with_a_readable_image(make_itr, image_root, reviewers) -> None:
    folder = image_root / "tweets"
    folder.mkdir()
    Image.new("RGB", (8, 6), "red").save(folder / "T1001.jpg")
    (folder / "T1002.jpg").write_bytes(b"not an image")
    dataset = make_itr([(0, 0), (1, 1), (0, 1)], split=0, images=folder)
    rows = api_for(reviewers[0]).get(f"/api/itr/{dataset.pk}/items/").json()["results"]
    urls = [r["image_url"] for r in rows]
    assert urls[0] is None
    assert urls[1].startswith("http://testserver/items/")
    assert urls[1].endswith("/image/")
    assert urls[2] is None  # unreadable
    assert api_for(reviewers[0]).get(urls[1]).status_code == 200


def test_outsiders_and_other_datasets_answer_404(small, other, reviewers, otto) -> None:
    item = ItrItem.objects.get(dataset=small, row=2)
    outsider = api_for(otto)
    for url in (
        f"/api/itr/{small.pk}/items/",
        f"/api/itr/{small.pk}/next/",
        f"/api/itr/items/{item.pk}/",
        "/api/itr/reviews/?dataset=" + str(small.pk),
    ):
        assert outsider.get(url).status_code == 404, url
    body = {"item": item.pk, "text_is_represented": 0, "image_adds": 1}
    assert outsider.post("/api/itr/reviews/", body, format="json").status_code == 404
    decision = {**body, "note": "mine"}
    assert outsider.post("/api/itr/decisions/", decision, format="json").status_code == 404
    # otto leads another dataset: still 404 on this one, as for a reviewer of another dataset.
    membership_set(dataset=other, user=otto, role=Role.LEAD)
    assert outsider.post("/api/itr/decisions/", decision, format="json").status_code == 404
    assert outsider.post("/api/itr/reviews/", body, format="json").status_code == 404
    assert outsider.get(f"/api/itr/{small.pk}/next/").status_code == 404
    assert api_for(reviewers[0]).get("/api/itr/99999/items/").status_code == 404
    assert not ItrReview.objects.exists()
    assert not ItrDecision.objects.exists()


def test_a_non_itr_dataset_answers_404(dataset, lee) -> None:
    assert api_for(lee).get(f"/api/itr/{dataset.pk}/items/").status_code == 404
    assert api_for(lee).get(f"/api/itr/{dataset.pk}/next/").status_code == 404


def next_item(user, dataset, exclude=()) -> dict | None:
    url = f"/api/itr/{dataset.pk}/next/"
    if exclude:
        url += "?exclude=" + ",".join(map(str, exclude))
    response = api_for(user).get(url)
    assert response.status_code in (200, 204), response.content
    return None if response.status_code == 204 else response.json()


def review(user, item: int, t: int, i: int, **extra):
    body = {"item": item, "text_is_represented": t, "image_adds": i, **extra}
    return api_for(user).post("/api/itr/reviews/", body, format="json")


def test_next_leases_test_items_and_resumes(small, reviewers, lee) -> None:
    rev1 = reviewers[0]
    first = next_item(rev1, small)
    assert first["split"] == "test"
    assert first["my_review"] is None
    assert "status" not in first  # the reviewer's view, whatever the role
    assert next_item(rev1, small)["id"] == first["id"]  # a reload resumes the same item
    preload = next_item(rev1, small, exclude=[first["id"]])
    assert preload["id"] != first["id"]
    assert "status" not in next_item(lee, small)
    assert api_for(rev1).get(f"/api/itr/{small.pk}/next/?exclude=x").status_code == 400
    # Once rev1 has reviewed every test item, nothing is left for them.
    for row in (2, 3, 4, 5):
        item = ItrItem.objects.get(dataset=small, row=row)
        assert review(rev1, item.pk, item.text_is_represented, item.image_adds).status_code == 201
    assert next_item(rev1, small) is None


def test_next_stops_at_the_quorum(make_itr, reviewers) -> None:
    dataset = make_itr([(0, 0)], split=0, quorum=2)
    item = ItrItem.objects.get(dataset=dataset)
    for user in reviewers[:2]:
        assert next_item(user, dataset)["id"] == item.pk
        assert review(user, item.pk, 0, 0).status_code == 201
    assert next_item(reviewers[2], dataset) is None
    assert ItrItem.objects.get(pk=item.pk).status == "consensus"


def test_review_flow_update_idempotency_and_undo(small, reviewers) -> None:
    rev1 = reviewers[0]
    item = next_item(rev1, small)
    created = review(rev1, item["id"], 0, 1, key="k1", duration_ms=1200)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["item"] == item["id"]
    assert body["reviewer"] == "rev1"
    assert (body["text_is_represented"], body["image_adds"]) == (0, 1)
    assert body["reason"] is None
    assert body["key"] == "k1"
    assert body["duration_ms"] == 1200
    assert not ItrLease.objects.filter(item_id=item["id"], reviewer=rev1).exists()
    # The same key again: a no-op, even with other labels.
    again = review(rev1, item["id"], 1, 1, reason="changed my mind", key="k1")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert ItrReview.objects.get().text_is_represented == 0
    # Reviewing the same item again (another key or none): the review is updated, one vote.
    updated = review(rev1, item["id"], 1, 1, reason="the text is shown", key="k2")
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"]
    assert updated.json()["reason"] == "the text is shown"
    assert ItrReview.objects.count() == 1
    stored = ItrItem.objects.get(pk=item["id"])
    assert stored.review_count == 1
    assert stored.status == "in_review"
    # The key of this review on another item: 409.
    other_item = ItrItem.objects.exclude(pk=item["id"]).filter(split="test").first()
    reused = review(rev1, other_item.pk, 0, 0, reason="x", key="k2")
    assert reused.status_code == 409
    # The caller's review shows on the item.
    shown = api_for(rev1).get(f"/api/itr/items/{item['id']}/").json()
    assert shown["my_review"]["id"] == body["id"]
    assert api_for(reviewers[1]).get(f"/api/itr/items/{item['id']}/").json()["my_review"] is None
    listed = api_for(rev1).get(f"/api/itr/reviews/?dataset={small.pk}").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    assert api_for(reviewers[1]).get("/api/itr/reviews/").json()["count"] == 0
    # Undo: only one's own review; the item comes back, leased to the reviewer.
    assert api_for(reviewers[1]).post(f"/api/itr/reviews/{body['id']}/undo/").status_code == 404
    undone = api_for(rev1).post(f"/api/itr/reviews/{body['id']}/undo/")
    assert undone.status_code == 200
    assert undone.json()["id"] == item["id"]
    assert undone.json()["my_review"] is None
    assert not ItrReview.objects.exists()
    assert ItrLease.objects.filter(item_id=item["id"], reviewer=rev1).exists()
    assert ItrItem.objects.get(pk=item["id"]).review_count == 0
    assert next_item(rev1, small)["id"] == item["id"]
    assert api_for(rev1).post(f"/api/itr/reviews/{body['id']}/undo/").status_code == 404


def test_bad_reviews_answer_400(small, reviewers) -> None:
    rev1 = reviewers[0]
    item = ItrItem.objects.get(dataset=small, row=2)  # published 01
    for t, i in ((2, 0), (-1, 1), ("1", 0), (True, 0), (None, 1), (0.5, 1)):
        assert review(rev1, item.pk, t, i).status_code == 400, (t, i)
    assert review(rev1, item.pk, 0, "yes").status_code == 400
    # A reason is required when the labels differ from the published ones.
    missing = review(rev1, item.pk, 1, 1)
    assert missing.status_code == 400
    assert "reason" in missing.json()["detail"]
    assert review(rev1, item.pk, 1, 1, reason="   ").status_code == 400
    assert review(rev1, item.pk, 1, 1, reason=5).status_code == 400
    assert review(rev1, item.pk, 1, 1, reason="x" * 5001).status_code == 400
    assert review(rev1, item.pk, 0, 1, key="k" * 101).status_code == 400
    assert review(rev1, item.pk, 0, 1, duration_ms=-1).status_code == 400
    assert review(rev1, "abc", 0, 1).status_code == 400
    assert review(rev1, 10**9, 0, 1).status_code == 404
    body = {"item": item.pk, "image_adds": 1}
    assert api_for(rev1).post("/api/itr/reviews/", body, format="json").status_code == 400
    assert not ItrReview.objects.exists()
    # Confirming the published labels needs no reason.
    assert review(rev1, item.pk, 0, 1).status_code == 201


def test_consensus_from_three_reviews(small, reviewers) -> None:
    item = ItrItem.objects.get(dataset=small, row=3)  # published 10
    assert review(reviewers[0], item.pk, 0, 0, reason="text not shown").status_code == 201
    assert review(reviewers[1], item.pk, 0, 0, reason="no").status_code == 201
    assert review(reviewers[2], item.pk, 1, 0).status_code == 201
    item.refresh_from_db()
    assert item.status == "consensus"
    assert item.final == (0, 0)
    assert item.disagreement


def test_decisions_are_for_leads(small, reviewers, lee) -> None:
    item = ItrItem.objects.get(dataset=small, row=4)  # published 11
    body = {"item": item.pk, "text_is_represented": 0, "image_adds": 1, "note": "text absent"}
    refused = api_for(reviewers[0]).post("/api/itr/decisions/", body, format="json")
    assert refused.status_code == 403
    assert not ItrDecision.objects.exists()
    lead = api_for(lee)
    for bad in (
        {**body, "note": ""},
        {**body, "note": "  "},
        {k: v for k, v in body.items() if k != "note"},
        {**body, "text_is_represented": 3},
        {**body, "image_adds": "1"},
    ):
        assert lead.post("/api/itr/decisions/", bad, format="json").status_code == 400, bad
    created = lead.post("/api/itr/decisions/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["decided_by"] == "lee"
    assert created.json()["note"] == "text absent"
    item.refresh_from_db()
    assert item.status == "decided"
    assert item.final == (0, 1)
    replaced = lead.post("/api/itr/decisions/", {**body, "image_adds": 0}, format="json")
    assert replaced.status_code == 200
    assert ItrDecision.objects.count() == 1
    assert api_for(lee).get(f"/api/itr/decisions/{item.pk}/").json()["image_adds"] == 0
    assert api_for(reviewers[0]).get(f"/api/itr/decisions/{item.pk}/").status_code == 403
    assert api_for(reviewers[0]).delete(f"/api/itr/decisions/{item.pk}/").status_code == 403
    withdrawn = lead.delete(f"/api/itr/decisions/{item.pk}/")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "pending"
    assert (withdrawn.json()["final_text_is_represented"], withdrawn.json()["image_adds"]) == (1, 1)
    assert not ItrDecision.objects.exists()
    assert lead.delete(f"/api/itr/decisions/{item.pk}/").status_code == 404


def test_admins_decide_on_every_dataset(small, ada) -> None:
    item = ItrItem.objects.get(dataset=small, row=5)
    body = {"item": item.pk, "text_is_represented": 1, "image_adds": 0, "note": "seen"}
    assert api_for(ada).post("/api/itr/decisions/", body, format="json").status_code == 201


def test_token_required(small, client) -> None:
    assert client.get(f"/api/itr/{small.pk}/items/").status_code in (401, 403)


# This file's operations (api_lead.py's are tested with the lead's page).
OWN_PATHS = r"^/api/itr/(\{id\}/(items|next|summary|export)/|items/\{id\}/$|reviews/|decisions/)"


def schemathesis_config(token: str, base_url: str) -> dict:
    """tests/test_schema.py's settings, for the ITR operations only, without the stateful
    phase (it would walk into the other apps' operations). Two answers the schema cannot
    predict are allowed: a review that changes the labels without a reason (whether it
    changes them depends on the item's published labels) and `format=list` for a set other
    than `changes` (400)."""
    data_dependent = {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}
    return {
        "seed": 1,
        "base-url": base_url,
        "headers": {"Authorization": f"Token {token}", "Connection": "close"},
        "generation": {"max-examples": 12, "deterministic": True},
        "suppress-health-check": ["all"],
        "workers": 1,
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {"include-path-regex": f"^(?!{OWN_PATHS.removeprefix('^')})", "enabled": False},
            {
                "include-path": "/api/itr/reviews/",
                "include-method": "POST",
                "checks": {"positive_data_acceptance": data_dependent},
            },
            {
                "include-path": "/api/itr/{id}/export/",
                "checks": {"positive_data_acceptance": data_dependent},
            },
        ],
    }


@pytest.mark.timeout(300)
def test_itr_api_matches_its_schema(live_server, make_itr, reviewers, lee) -> None:
    """schemathesis (every check; examples, coverage and fuzzing phases) over this file's
    /api/itr/ operations, with a lead's token, on an ITR dataset with reviews and a decision,
    and one where the lead only reviews (403s): no server error, no undocumented answer, no
    schema-valid request refused."""
    import schemathesis
    from rest_framework.authtoken.models import Token
    from schemathesis.engine import events, from_schema

    from annotate.itr.services import decision_record, review_record
    from tests.test_schema import describe

    studied = make_itr(LABELS, split=2)
    for row, user in zip((2, 3, 4), reviewers, strict=False):
        item = ItrItem.objects.get(dataset=studied, row=row)
        review_record(item=item, reviewer=user, text_is_represented=1, image_adds=1, reason="r")
    item = ItrItem.objects.get(dataset=studied, row=5)
    decision_record(item=item, lead=lee, text_is_represented=1, image_adds=1, note="n")
    other = make_itr([(0, 0), (1, 1)], split=0, name="other")
    membership_set(dataset=other, user=lee, role=Role.ANNOTATOR)
    token = Token.objects.create(user=lee).key
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/?format=json",
        headers={"Authorization": f"Token {token}"},
        config=schemathesis.Config.from_dict(schemathesis_config(token, live_server.url)),
    )
    cases, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            cases += len(event.recorder.cases)
            for case_id, checks in event.recorder.checks.items():
                failures += [describe(event.recorder, case_id, c) for c in checks if c.failure_info]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"error: {event}")
    print(f"schemathesis: {cases} cases over the ITR operations")
    assert cases > 100
    assert failures == [], "\n".join(failures)
