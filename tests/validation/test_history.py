"""The history of one's own verdicts (/history/): the list, a change from a row through the
same service as PATCH /api/verdicts/{id}/ with the same idempotency key rule, a closed sample's
refusal, and the change in Chromium with the label search."""

import pytest
from django.test import Client

from annotate.taxonomies.models import Label
from annotate.validation.models import Sample, SampleItem, Verdict
from annotate.validation.sampling import sample_draw
from annotate.validation.services import verdict_record
from tests.conftest import PASSWORD, login
from tests.validation.conftest import api_for


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def sample(run) -> Sample:
    return sample_draw(run=run, classes=2, per_class=3, seed=1, overlap=0)


def judge(sample: Sample, user, values: list[str]) -> list[Verdict]:
    items = list(SampleItem.objects.filter(sample=sample).order_by("position"))
    return [
        verdict_record(sample_item=item, annotator=user, value=value, key=f"{user.pk}-{item.pk}")[0]
        for item, value in zip(items, values, strict=False)
    ]


def change(client: Client, verdict: Verdict, **form):
    return client.post("/history/", {"verdict": verdict.pk, **form}, HTTP_HX_REQUEST="true")


# ---------------------------------------------------------------- the API


def test_api_change_with_a_key_is_idempotent(sample, ann, abe) -> None:
    hit, other = judge(sample, ann, ["hit", "miss"])
    url = f"/api/verdicts/{hit.pk}/"
    label = Label.objects.get(key="/l/label05")
    first = api_for(ann).patch(
        url, {"value": "miss", "corrected_label": label.key, "key": "c1"}, format="json"
    )
    assert first.status_code == 200, first.content
    assert first.json()["value"] == "miss"
    # The same key again, whatever the body: nothing changes.
    again = api_for(ann).patch(url, {"value": "skip", "key": "c1"}, format="json")
    assert again.status_code == 200
    assert again.json()["value"] == "miss"
    hit.refresh_from_db()
    assert (hit.value, hit.corrected_label_id, hit.key) == ("miss", label.pk, "c1")
    assert SampleItem.objects.get(pk=hit.sample_item_id).verdict_count == 1
    # A new key changes it; a key of another of one's verdicts is refused (409, unchanged).
    assert api_for(ann).patch(url, {"value": "skip", "key": "c2"}, format="json").json()[
        "value"
    ] == ("skip")
    assert SampleItem.objects.get(pk=hit.sample_item_id).verdict_count == 0
    clash = api_for(ann).patch(url, {"value": "hit", "key": other.key}, format="json")
    assert clash.status_code == 409
    hit.refresh_from_db()
    assert (hit.value, hit.key) == ("skip", "c2")
    assert SampleItem.objects.get(pk=hit.sample_item_id).verdict_count == 0
    # Without a key, every PATCH changes (as before).
    assert api_for(ann).patch(url, {"value": "hit"}, format="json").json()["value"] == "hit"
    # Another annotator's key space is their own.
    (abes,) = judge(sample, abe, ["hit"])
    reuse = api_for(abe).patch(f"/api/verdicts/{abes.pk}/", {"value": "miss", "key": "c1"})
    assert reuse.status_code == 200
    assert reuse.json()["value"] == "miss"


# ---------------------------------------------------------------- the page


def test_history_lists_own_verdicts_escaped_newest_first(
    sample, ann, abe, django_assert_num_queries
) -> None:
    mine = judge(sample, ann, ["hit", "miss", "skip"])
    judge(sample, abe, ["miss"])
    client = client_for("ann")
    with django_assert_num_queries(8):
        body = client.get("/history/").content.decode()
    ids = [int(part.split('"')[0]) for part in body.split('id="verdict-')[1:]]
    assert ids == [v.pk for v in reversed(mine)]
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "<b>bold</b>" not in body
    assert "just now" in body
    assert body.count('name="key"') == 3
    assert 'href="/history/">History</a>' in body  # the top bar
    assert f"/samples/{sample.pk}/annotate/labels/" in body
    # The same number of queries with a full page of rows.
    judge(sample, ann, ["hit"] * 6)
    with django_assert_num_queries(8):
        body = client.get("/history/").content.decode()
    assert body.count('class="hist-row"') == 6


def test_history_paginates(sample, ann, settings, monkeypatch) -> None:
    from annotate.validation import views_annotator

    monkeypatch.setattr(views_annotator, "HISTORY_PAGE_SIZE", 2)
    verdicts = judge(sample, ann, ["hit"] * 5)
    client = client_for("ann")
    first = client.get("/history/").content.decode()
    assert "Page 1 of 3" in first
    assert f'id="verdict-{verdicts[-1].pk}"' in first
    last = client.get("/history/?page=3").content.decode()
    assert f'id="verdict-{verdicts[0].pk}"' in last
    assert client.get("/history/?page=nonsense").status_code == 200
    assert (
        "You have not given any verdict yet" in client_for("abe").get("/history/").content.decode()
    )
    assert Client().get("/history/").status_code == 302


def test_change_from_a_row_once_per_key(sample, ann) -> None:
    (verdict,) = judge(sample, ann, ["hit"])
    label = Label.objects.get(key="/l/label03")
    client = client_for("ann")
    response = change(client, verdict, value="miss", corrected_label=label.key, key="row-k1")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith(f'<li class="hist-row" id="verdict-{verdict.pk}">')
    assert "Saved." in html
    assert "label 03" in html
    new_key = html.split('name="key" value="')[1].split('"')[0]
    assert new_key != "row-k1"  # the next change gets a fresh key
    verdict.refresh_from_db()
    assert (verdict.value, verdict.corrected_label, verdict.key) == ("miss", label, "row-k1")
    # The same submission again (a double click, a resent form): nothing changes.
    again = change(client, verdict, value="hit", key="row-k1")
    assert again.status_code == 200
    verdict.refresh_from_db()
    assert (verdict.value, verdict.corrected_label) == ("miss", label)
    # A plain POST (no JavaScript) redirects back to the page with a message.
    plain = client.post(
        "/history/", {"verdict": verdict.pk, "value": "skip", "key": "row-k2", "page": "1"}
    )
    assert plain.status_code == 302
    assert plain["Location"] == f"/history/?page=1#verdict-{verdict.pk}"
    verdict.refresh_from_db()
    assert verdict.value == "skip"
    assert "Verdict changed." in client.get(plain["Location"]).content.decode()


def test_refusals_show_the_message_not_a_500(sample, ann, abe, lee) -> None:
    (verdict,) = judge(sample, ann, ["hit"])
    client = client_for("ann")
    bad = change(client, verdict, value="hit", corrected_label="/l/label03", key="x1")
    assert "Not changed: corrected_label goes only with a miss." in bad.content.decode()
    unknown = change(client, verdict, value="miss", corrected_label="/o/none", key="x2")
    assert "is not a label of this run" in unknown.content.decode()
    assert change(client, verdict, value="maybe", key="x3").status_code == 200
    # Another annotator's verdict: 404, like any object one may not see.
    assert change(client_for("abe"), verdict, value="miss", key="x4").status_code == 404
    # A closed sample: the page shows no form for it, and a late change is refused.
    page = client.get("/history/").content.decode()
    assert 'name="value" value="miss"' in page
    sample.status = Sample.Status.CLOSED
    sample.save()
    closed = change(client, verdict, value="miss", key="x5")
    assert closed.status_code == 200
    assert "Not changed: the sample is closed." in closed.content.decode()
    assert "can no longer be changed" in closed.content.decode()
    page = client.get("/history/").content.decode()
    assert 'name="value" value="miss"' not in page
    assert "can no longer be changed" in page
    verdict.refresh_from_db()
    assert (verdict.value, verdict.key) == ("hit", f"{ann.pk}-{verdict.sample_item_id}")


def test_verdicts_on_a_dataset_one_left_are_not_listed(sample, ann, dataset) -> None:
    judge(sample, ann, ["hit"])
    dataset.memberships.filter(user=ann).delete()
    body = client_for("ann").get("/history/").content.decode()
    assert 'class="hist-row"' not in body


# ---------------------------------------------------------------- in the browser


def settle(page) -> None:
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_change_a_verdict_from_the_history_in_the_browser(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=2, per_class=3, seed=1, overlap=0)
    taxonomy = run.taxonomy
    Label.objects.create(taxonomy=taxonomy, key="/c/church/indoor", name="church indoor")
    outdoor = Label.objects.create(
        taxonomy=taxonomy, key="/c/church/outdoor", name="church outdoor"
    )
    verdicts = judge(sample, ann, ["hit", "hit"])
    target = verdicts[0]
    login(page, live_server, "ann")
    page.click("text=History")
    page.wait_for_url(f"{live_server.url}/history/")
    row = page.locator(f"#verdict-{target.pk}")
    key = row.locator("input[name=key]").input_value()
    assert row.locator("button[value=hit]").get_attribute("aria-pressed") == "true"

    # Hit -> miss with the corrected label: type, ArrowDown to the second result, Enter.
    row.locator(".hist-search").fill("church")
    row.locator(".hist-results .label-pick").nth(1).wait_for()
    page.wait_for_function(
        f"() => document.querySelector('#verdict-{target.pk} .hist-search').dataset.answered"
        " === 'church'"
    )
    page.keyboard.press("ArrowDown")
    highlighted = row.locator(".label-pick[aria-selected=true]")
    assert highlighted.inner_text() == "church outdoor"
    page.keyboard.press("Enter")
    page.locator(f"#verdict-{target.pk} .hist-note").wait_for()
    row = page.locator(f"#verdict-{target.pk}")
    assert "church outdoor" in row.locator(".hist-corrected").inner_text()
    assert row.locator(".verdict").inner_text() == "Miss"
    target.refresh_from_db()
    assert (target.value, target.corrected_label_id, target.key) == ("miss", outdoor.pk, key)
    assert row.locator("input[name=key]").input_value() != key

    # The same submission again (same key, as a resent form would): nothing changes.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    again = page.request.post(
        f"{live_server.url}/history/",
        form={"verdict": str(target.pk), "value": "hit", "key": key},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert again.status == 200
    target.refresh_from_db()
    assert (target.value, target.corrected_label_id) == ("miss", outdoor.pk)

    # A plain button: back to hit (the corrected label goes with the miss).
    row.locator("button[value=hit]").click()
    page.wait_for_function(
        f"() => document.querySelector('#verdict-{target.pk} .verdict')?.textContent === 'Hit'"
    )
    target.refresh_from_db()
    assert (target.value, target.corrected_label_id) == ("hit", None)
    settle(page)


def test_superscript_ids_are_refused_not_crashed(sample, ann, lee) -> None:
    """ "²" passes `str.isdigit` and `int` refuses it: the validation pages and services answer
    such an id like any other bad one (annotate.rest.id_param), never with a 500."""
    (verdict,) = judge(sample, ann, ["hit"])
    annotator, lead = client_for("ann"), client_for("lee")
    base = f"/samples/{sample.pk}"
    assert annotator.get(f"{base}/annotate/item/?item=²").status_code == 404
    assert annotator.get(f"{base}/annotate/item/?exclude=²,1").status_code in (200, 204)
    assert lead.get(f"{base}/disagreements/?page=²").status_code == 200
    assert lead.post(f"{base}/disagreements/", {"item": "²", "action": "decide"}).status_code == 404
    item = SampleItem.objects.filter(sample=sample).first().prediction.item_id
    assert lead.get(f"/items/{item}/?run=²").status_code == 200
    refused = change(annotator, verdict, value="miss", corrected_label="²", key="k1")
    assert "is not a label of this run" in refused.content.decode()
    form = {"verdict": verdict.pk, "value": "hit", "page": "²", "key": "k2"}
    assert annotator.post("/history/", form).status_code == 302
