"""Assignment and verdicts through the REST API, including every bad input of issue 4."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.taxonomies.models import Label
from annotate.validation.models import Lease, SampleItem, Verdict
from annotate.validation.sampling import sample_draw
from tests.validation.conftest import api_for, build_run


@pytest.fixture
def sample(run):
    return sample_draw(run=run, classes=2, per_class=3, seed=1, overlap=0)


def post(user, **body):
    return api_for(user).post("/api/verdicts/", body, format="json")


def next_id(user, sample, exclude=()) -> int | None:
    url = f"/api/samples/{sample.pk}/next/"
    if exclude:
        url += "?exclude=" + ",".join(map(str, exclude))
    response = api_for(user).get(url)
    return None if response.status_code == 204 else response.json()["id"]


def test_next_leases_one_item_per_annotator_and_resumes(sample, ann, abe) -> None:
    first = next_id(ann, sample)
    assert next_id(ann, sample) == first  # a reload resumes the same item
    preload = next_id(ann, sample, exclude=[first])
    assert preload != first
    others = {next_id(abe, sample)}
    assert first not in others
    assert preload not in others
    body = api_for(ann).get(f"/api/samples/{sample.pk}/next/").json()
    assert {"id", "external_id", "caption", "label", "prompt", "probability", "image_url"} <= set(
        body
    )
    assert body["caption"].startswith("caption ")
    assert "<b>" in body["caption"]
    assert body["label"]["key"].startswith("/l/")
    assert body["prompt"] == (f"A photo of a {body['label']['name']}.")
    assert len(body["suggestions"]) == 4


def test_verdict_flow_idempotency_conflict_undo(sample, ann) -> None:
    item = next_id(ann, sample)
    created = post(ann, sample_item=item, value="hit", key="k1", duration_ms=900)
    assert created.status_code == 201, created.content
    verdict = created.json()
    assert verdict["value"] == "hit"
    assert verdict["duration_ms"] == 900
    again = post(ann, sample_item=item, value="miss", key="k1")
    assert again.status_code == 200
    assert again.json()["id"] == verdict["id"]
    assert Verdict.objects.get().value == "hit"  # nothing changed
    conflict = post(ann, sample_item=item, value="miss", key="k2")
    assert conflict.status_code == 409
    assert conflict.json()["verdict"]["id"] == verdict["id"]
    no_key = post(ann, sample_item=item, value="miss")
    assert no_key.status_code == 409
    assert SampleItem.objects.get(pk=item).verdict_count == 1
    # The judged item is never offered again to the same annotator.
    assert item not in {next_id(ann, sample) for _ in range(3)}
    # Change, then undo: the count follows, and the item comes back leased to ann.
    changed = api_for(ann).patch(f"/api/verdicts/{verdict['id']}/", {"value": "skip"}, "json")
    assert changed.status_code == 200
    assert changed.json()["value"] == "skip"
    assert SampleItem.objects.get(pk=item).verdict_count == 0
    undo = api_for(ann).post(f"/api/verdicts/{verdict['id']}/undo/")
    assert undo.status_code == 200
    assert undo.json()["id"] == item
    assert not Verdict.objects.exists()
    assert Lease.objects.filter(sample_item_id=item, annotator=ann).exists()
    assert post(ann, sample_item=item, value="miss", key="k3").status_code == 201
    assert SampleItem.objects.get(pk=item).verdict_count == 1
    assert api_for(ann).delete(f"/api/verdicts/{Verdict.objects.get().pk}/").status_code == 204
    assert SampleItem.objects.get(pk=item).verdict_count == 0


def test_bad_inputs(sample, ann, abe, otto, other_taxonomy, dataset, taxonomy) -> None:
    item = next_id(ann, sample)
    assert post(ann, sample_item=item, value="maybe").status_code == 400
    assert post(ann, sample_item=item, value="").status_code == 400
    assert post(ann, value="hit").status_code == 400
    assert post(ann, sample_item="abc", value="hit").status_code == 400
    assert post(ann, sample_item=item, value="hit", duration_ms=-5).status_code == 400
    assert post(ann, sample_item=item, value="hit", key="x" * 101).status_code == 400
    assert post(ann, sample_item=item, value="hit", duration_ms=10**10).status_code == 400
    # A corrected label from another taxonomy, by id or by key: no such label there (404).
    elsewhere = Label.objects.get(taxonomy=other_taxonomy)
    for label in (elsewhere.pk, elsewhere.key, "no-such-label"):
        response = post(ann, sample_item=item, value="miss", corrected_label=label)
        assert response.status_code == 404
        assert "taxonomy" in response.json()["detail"]
    # A corrected label with a hit makes no sense.
    mine = Label.objects.filter(taxonomy=taxonomy).last()
    assert post(ann, sample_item=item, value="hit", corrected_label=mine.pk).status_code == 400
    # Unknown item, and an item of a dataset the user is not a member of: 404.
    assert post(ann, sample_item=10**9, value="hit").status_code == 404
    assert post(otto, sample_item=item, value="hit").status_code == 404
    secret = Dataset.objects.create(name="secret")
    membership_set(dataset=secret, user=otto, role=Role.LEAD)
    hidden = sample_draw(run=build_run(secret, taxonomy, [3], "s"), classes=1, per_class=3)
    hidden_item = hidden.items.first().pk
    assert post(ann, sample_item=hidden_item, value="hit").status_code == 404
    assert api_for(ann).get(f"/api/samples/{hidden.pk}/next/").status_code == 404
    assert not Verdict.objects.exists()
    # A valid corrected label by key, then by id on another item.
    ok = post(ann, sample_item=item, value="miss", corrected_label=mine.key, key="a")
    assert ok.status_code == 201
    assert ok.json()["corrected_label"] == mine.pk
    other = next_id(ann, sample)
    ok = post(ann, sample_item=other, value="miss", corrected_label=str(mine.pk))
    assert ok.status_code == 201
    assert ok.json()["corrected_label_key"] == mine.key
    # Someone else's verdict cannot be read, changed or undone.
    theirs = Verdict.objects.filter(annotator=ann).first().pk
    assert api_for(abe).get(f"/api/verdicts/{theirs}/").status_code == 404
    assert api_for(abe).post(f"/api/verdicts/{theirs}/undo/").status_code == 404
    assert api_for(abe).delete(f"/api/verdicts/{theirs}/").status_code == 404
    # The same key used for another item is a conflict, not a silent no-op.
    third = next_id(ann, sample)
    assert post(ann, sample_item=third, value="hit", key="a").status_code == 409


def test_closed_sample_refuses_verdicts_and_undo(sample, ann, lee) -> None:
    item = next_id(ann, sample)
    verdict = post(ann, sample_item=item, value="hit").json()
    other = sample.items.exclude(pk=item).first().pk
    assert api_for(ann).post(f"/api/samples/{sample.pk}/close/").status_code == 403
    closed = api_for(lee).post(f"/api/samples/{sample.pk}/close/")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert api_for(ann).get(f"/api/samples/{sample.pk}/next/").status_code == 204
    # The sample's state refuses them: 409, with no verdict (nothing was judged before).
    refused = post(ann, sample_item=other, value="hit")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "the sample is closed"}
    assert api_for(ann).post(f"/api/verdicts/{verdict['id']}/undo/").status_code == 409
    assert (
        api_for(ann).patch(f"/api/verdicts/{verdict['id']}/", {"value": "miss"}).status_code == 409
    )
    assert api_for(ann).delete(f"/api/verdicts/{verdict['id']}/").status_code == 409
    assert Verdict.objects.count() == 1
    assert not Lease.objects.exists()
    reopened = api_for(lee).post(f"/api/samples/{sample.pk}/reopen/")
    assert reopened.json()["status"] == "open"
    assert post(ann, sample_item=other, value="hit").status_code == 201


def test_expired_lease_given_to_someone_else_keeps_both_verdicts(run, ann, abe) -> None:
    sample = sample_draw(run=run, classes=1, per_class=1, seed=1, overlap=0)
    item = next_id(ann, sample)
    assert next_id(abe, sample) is None  # leased to ann: nothing for abe
    Lease.objects.filter(annotator=ann).update(expires=timezone.now() - timedelta(seconds=1))
    assert next_id(abe, sample) == item  # the lease expired: abe gets the item
    assert post(abe, sample_item=item, value="hit", key="abe-1").status_code == 201
    late = post(ann, sample_item=item, value="miss", key="ann-1")
    assert late.status_code == 201  # kept, next to abe's, not over it
    values = dict(Verdict.objects.values_list("annotator__username", "value"))
    assert values == {"abe": "hit", "ann": "miss"}
    assert SampleItem.objects.get(pk=item).verdict_count == 2
    assert next_id(ann, sample) is None
    assert next_id(abe, sample) is None


def test_skip_frees_the_item_for_someone_else(run, ann, abe) -> None:
    sample = sample_draw(run=run, classes=1, per_class=1, seed=1, overlap=0)
    item = next_id(ann, sample)
    assert post(ann, sample_item=item, value="skip").status_code == 201
    assert next_id(ann, sample) is None
    assert next_id(abe, sample) == item


def test_redundancy_two_gives_each_item_to_two_annotators(run, ann, abe, lee) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1, redundancy=2)
    seen = {"ann": [], "abe": [], "lee": []}
    for user in (ann, abe, lee, ann, abe, lee):
        got = next_id(user, sample)
        if got is not None:
            seen[user.username].append(got)
            assert post(user, sample_item=got, value="hit").status_code == 201
    counts = dict(SampleItem.objects.filter(sample=sample).values_list("pk", "verdict_count"))
    assert set(counts.values()) == {2}
    assert all(len(set(v)) == len(v) for v in seen.values())


def test_export_csv_and_json_for_leads(sample, ann, lee, otto) -> None:
    item = next_id(ann, sample)
    post(ann, sample_item=item, value="hit", duration_ms=1234)
    url = f"/api/samples/{sample.pk}/verdicts/"
    assert api_for(ann).get(url + "?format=json").status_code == 403
    assert api_for(otto).get(url + "?format=json").status_code == 404
    rows = api_for(lee).get(url + "?format=json").json()
    assert len(rows) == 1
    assert rows[0]["annotator"] == "ann"
    assert rows[0]["value"] == "hit"
    csv_response = api_for(lee).get(url + "?format=csv")
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    lines = csv_response.content.decode().strip().splitlines()
    assert lines[0].startswith("id,sample_item,position,external_id,label,probability,annotator")
    assert len(lines) == 2
    assert ",ann,hit," in lines[1]


def test_own_verdicts_only_while_a_member(sample, ann, dataset, django_assert_num_queries) -> None:
    """A verdict is fetched like every other object: one query gives it with the caller's role;
    once the annotator has left the dataset, their own verdict answers 404 too."""
    from annotate.validation.selectors import get_own_verdict_for_user

    verdict = post(ann, sample_item=next_id(ann, sample), value="hit").json()
    with django_assert_num_queries(1):
        fetched, role = get_own_verdict_for_user(ann, verdict["id"])
    assert (fetched.pk, role) == (verdict["id"], Role.ANNOTATOR)
    assert api_for(ann).get(f"/api/verdicts/{verdict['id']}/").status_code == 200
    dataset.memberships.filter(user=ann).delete()
    assert api_for(ann).get(f"/api/verdicts/{verdict['id']}/").status_code == 404
    assert api_for(ann).post(f"/api/verdicts/{verdict['id']}/undo/").status_code == 404
    assert Verdict.objects.filter(pk=verdict["id"]).exists()
