"""The lead's adjudication of a sample item (docs/architecture.md#adjudication): the API's
create / repeat / change / withdraw and who may do it, and the decision overriding the
annotators' majority in the dashboard's tables."""

from itertools import pairwise
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation import metrics
from annotate.validation.models import Adjudication, Sample
from annotate.validation.services import (
    UnknownLabel,
    adjudication_record,
    adjudication_withdraw,
)
from tests.conftest import PASSWORD, login, make_user
from tests.dashboards.conftest import (
    add_verdicts,
    make_items,
    make_labels,
    make_run,
    make_sample,
)

pytestmark = pytest.mark.django_db


def as_user(client: Client, username: str) -> Client:
    client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def amy(dataset):
    """A third annotator."""
    user = make_user("amy")
    membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def disputed(small, ann, abe, amy):
    """Item 0 (p = 0.95, label 0): ann and abe say miss, amy says hit: majority miss. Item 5
    (label 1): ann hit, abe miss (a tie). Item 1: ann and abe hit (no disagreement)."""
    s = small.sample_items
    add_verdicts(
        [
            (s[0], ann, "miss"), (s[0], abe, "miss"), (s[0], amy, "hit"),
            (s[5], ann, "hit"), (s[5], abe, "miss", small.labels[2]),
            (s[1], ann, "hit"), (s[1], abe, "hit"),
        ]
    )  # fmt: skip
    return small


def post(client: Client, body: dict):
    return client.post("/api/adjudications/", body, content_type="application/json")


def test_create_repeat_change_and_withdraw(client: Client, disputed) -> None:
    as_user(client, "lee")
    item = disputed.sample_items[0]
    body = {"sample_item": item.pk, "value": "hit", "note": "The <b>bakery</b> is there."}
    created = post(client, body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["sample_item"], data["value"], data["decided_by"]) == (item.pk, "hit", "lee")
    assert data["note"] == "The <b>bakery</b> is there."
    # The same decision again: 200 and nothing changes (not even the time of the change).
    again = post(client, body)
    assert again.status_code == 200
    assert again.json() == data
    # A different decision replaces it: a miss with the right label, by key.
    label = disputed.labels[2]
    changed = post(client, {**body, "value": "miss", "corrected_label": label.key})
    assert changed.status_code == 200
    assert (changed.json()["value"], changed.json()["corrected_label"]) == ("miss", label.pk)
    assert changed.json()["id"] == data["id"]
    assert Adjudication.objects.count() == 1
    url = f"/api/adjudications/{data['id']}/"
    assert client.get(url).json()["corrected_label_key"] == label.key
    assert client.post(f"{url}withdraw/").status_code == 204
    assert client.post(f"{url}withdraw/").status_code == 404
    assert Adjudication.objects.count() == 0
    # DELETE withdraws too.
    again = post(client, body).json()
    assert client.delete(f"/api/adjudications/{again['id']}/").status_code == 204
    assert not Adjudication.objects.exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"value": "hit"}, 400),  # no note
        ({"value": "hit", "note": "   "}, 400),  # a blank note
        ({"value": "maybe", "note": "why"}, 400),
        ({"value": "hit", "note": "why", "corrected_label": "/l/label02"}, 400),  # label + hit
        ({"value": "miss", "note": "why", "corrected_label": "/x/nowhere"}, 404),
        ({"value": "miss", "note": "x" * 5001}, 400),
    ],
)
def test_bad_input(client: Client, disputed, body, status) -> None:
    as_user(client, "lee")
    response = post(client, {"sample_item": disputed.sample_items[0].pk, **body})
    assert response.status_code == status, response.content
    assert "detail" in response.json() or response.status_code == 400
    assert not Adjudication.objects.exists()


def test_who_may_adjudicate(client: Client, disputed, dataset, ada, otto) -> None:
    item = disputed.sample_items[0]
    body = {"sample_item": item.pk, "value": "hit", "note": "seen"}
    assert post(as_user(client, "ann"), body).status_code == 403  # an annotator
    assert post(as_user(client, "otto"), body).status_code == 404  # an outsider
    assert client.get(f"/api/samples/{disputed.sample.pk}/disagreements/").status_code == 404
    made = post(as_user(client, "ada"), body)  # an admin
    assert made.status_code == 201
    url = f"/api/adjudications/{made.json()['id']}/"
    for user, status in (("ann", 403), ("otto", 404)):
        as_user(client, user)
        assert client.get(url).status_code == status
        assert client.post(f"{url}withdraw/").status_code == status
        assert client.delete(url).status_code == status
        assert client.get(f"/api/samples/{disputed.sample.pk}/disagreements/").status_code in (
            status,
        )
    # A lead of another dataset only: 404 for this one's items.
    other = Dataset.objects.create(name="other", image_root=dataset.image_root)
    leo = make_user("leo")
    membership_set(dataset=other, user=leo, role=Role.LEAD)
    assert post(as_user(client, "leo"), body).status_code == 404
    assert client.get(url).status_code == 404
    # Anonymous: not logged in.
    client.logout()
    assert post(client, body).status_code in (401, 403)


def test_a_closed_sample_still_takes_decisions(client: Client, disputed) -> None:
    Sample.objects.filter(pk=disputed.sample.pk).update(status=Sample.Status.CLOSED)
    body = {"sample_item": disputed.sample_items[0].pk, "value": "hit", "note": "after close"}
    assert post(as_user(client, "lee"), body).status_code == 201


def rows0(client: Client, sample) -> dict:
    return client.get(f"/api/samples/{sample.pk}/thresholds/").json()


def test_adjudication_overrides_the_majority_in_every_table(client: Client, disputed) -> None:
    """Two annotators say miss, one says hit: a miss. The lead says hit: the tables count a
    hit, marked as adjudicated; withdrawn, the majority is back."""
    as_user(client, "lee")
    sample = disputed.sample
    before = rows0(client, sample)
    # Decided: item 0 (miss) and item 1 (hit); item 5 is a tie.
    assert (before["rows"][0]["hits"], before["rows"][0]["errors"], before["ties"]) == (1, 1, 1)
    assert before["adjudicated"] == 0
    etag = client.get(f"/api/samples/{sample.pk}/thresholds/")["ETag"]
    body = {"sample_item": disputed.sample_items[0].pk, "value": "hit", "note": "a bakery"}
    adjudication = post(client, body).json()
    after = rows0(client, sample)
    by_theta = {r["threshold"]: r for r in after["rows"]}
    assert (by_theta[0.0]["hits"], by_theta[0.0]["errors"]) == (2, 0)
    assert (by_theta[0.9]["hits"], by_theta[0.9]["adjudicated"]) == (1, 1)  # p = 0.95
    assert by_theta[0.0]["adjudicated"] == 1
    assert after["adjudicated"] == 1
    url = f"/api/samples/{sample.pk}/thresholds/"
    assert client.get(url, headers={"if-none-match": etag}).status_code == 200  # changed
    classes = client.get(f"/api/samples/{sample.pk}/classes/").json()["rows"]
    label0 = next(r for r in classes if r["label_id"] == disputed.labels[0].pk)
    assert (label0["hits"], label0["misses"], label0["adjudicated"]) == (2, 0, 1)
    progress = client.get(f"/api/samples/{sample.pk}/progress/").json()
    assert progress["adjudicated"] == 1
    # The tie on item 5 decided by the lead: a miss with the annotator's corrected label.
    tie = {"sample_item": disputed.sample_items[5].pk, "value": "miss", "note": "not label 1"}
    post(client, {**tie, "corrected_label": disputed.labels[2].pk})
    settled = rows0(client, sample)
    assert (settled["ties"], settled["rows"][0]["errors"], settled["adjudicated"]) == (0, 1, 2)
    # Withdrawn: back to the majority.
    client.post(f"/api/adjudications/{adjudication['id']}/withdraw/")
    back = rows0(client, sample)
    assert (back["rows"][0]["hits"], back["rows"][0]["errors"], back["adjudicated"]) == (1, 2, 1)


def test_version_changes_with_every_adjudication(disputed, lee) -> None:
    sample, item = disputed.sample, disputed.sample_items[0]
    versions = [metrics.sample_version(sample=sample)]
    adjudication_record(sample_item=item, lead=lee, value="hit", note="a")
    versions.append(metrics.sample_version(sample=sample))
    adjudication_record(sample_item=item, lead=lee, value="hit", note="a")  # the same again
    assert metrics.sample_version(sample=sample) == versions[-1]
    adjudication_record(sample_item=item, lead=lee, value="hit", note="another reason")
    versions.append(metrics.sample_version(sample=sample))
    assert adjudication_withdraw(sample_item=item)
    versions.append(metrics.sample_version(sample=sample))
    # Each change gives a new version (withdrawn, the tables are as before any decision).
    assert all(a != b for a, b in pairwise(versions)), versions
    assert len(set(versions)) == 3, versions
    assert not adjudication_withdraw(sample_item=item)  # twice: harmless


def test_adjudication_gives_facts_to_score_runs(client: Client, disputed, dataset) -> None:
    """Item 0 (label 0) is a majority miss; the lead says miss with label 2 as the right one:
    a run predicting label 2 for it is right. Item 5's tie, decided hit by the lead, makes
    label 1 right for it."""
    l0, l1, l2 = disputed.labels
    labels = [l2, l0, l0, l0, l0, l1, l1, l1, l1, l1, l2, l2]
    make_run(dataset, disputed.taxonomy, disputed.items, labels, [0.5] * 12, name="other")
    as_user(client, "lee")
    url = f"/api/samples/{disputed.sample.pk}/scores/"
    rows = {r["name"]: r for r in client.get(url).json()["rows"]}
    # Before: item 0 is "not label 0" only (the other run's label 2 is not decided); item 1
    # is label 0 for both runs; item 5 is a tie.
    assert (rows["run"]["covered"], rows["run"]["correct"]) == (2, 1)
    assert (rows["other"]["covered"], rows["other"]["correct"]) == (1, 1)
    s = disputed.sample_items
    post(client, {"sample_item": s[0].pk, "value": "miss", "corrected_label": l2.pk, "note": "2"})
    post(client, {"sample_item": s[5].pk, "value": "hit", "note": "label 1 after all"})
    rows = {r["name"]: r for r in client.get(url).json()["rows"]}
    assert (rows["run"]["covered"], rows["run"]["correct"]) == (3, 2)  # 0 wrong, 1 and 5 right
    assert (rows["other"]["covered"], rows["other"]["correct"]) == (3, 3)


def test_disagreements_list(client: Client, disputed, lee) -> None:
    as_user(client, "lee")
    url = f"/api/samples/{disputed.sample.pk}/disagreements/"
    body = client.get(url).json()
    assert body["count"] == 2  # items 0 and 5; item 1 has no disagreement
    first, second = body["results"]
    assert (first["id"], first["hits"], first["misses"], first["majority"]) == (
        disputed.sample_items[0].pk, 1, 2, "miss",
    )  # fmt: skip
    assert [v["annotator"] for v in first["verdicts"]] == ["ann", "abe", "amy"]
    assert second["majority"] == "tie"
    assert second["verdicts"][1]["corrected_label"]["key"] == disputed.labels[2].key
    assert first["adjudication"] is None
    assert first["thumbnail_url"].startswith("http")
    adjudication_record(sample_item=disputed.sample_items[0], lead=lee, value="hit", note="ok")
    assert client.get(f"{url}?status=open").json()["count"] == 1
    decided = client.get(f"{url}?status=decided").json()["results"]
    assert [d["adjudication"]["value"] for d in decided] == ["hit"]
    assert client.get(f"{url}?status=nonsense").status_code == 400


def test_disagreements_of_differing_corrections(client: Client, small, ann, abe) -> None:
    """Two misses with different right labels: a disagreement about the label."""
    s = small.sample_items
    add_verdicts([(s[2], ann, "miss", small.labels[1]), (s[2], abe, "miss", small.labels[2])])
    body = as_user(client, "lee").get(f"/api/samples/{small.sample.pk}/disagreements/").json()
    assert [r["id"] for r in body["results"]] == [s[2].pk]


def test_disagreements_in_constant_queries(client: Client, dataset, ann, abe) -> None:
    """The same number of queries for 2 and for 60 disagreements (one page)."""
    taxonomy, labels = make_labels(3, name="cost")
    counts = []
    for n, prefix in ((2, "few"), (60, "many")):
        items = make_items(dataset, n, prefix=prefix)
        run, predictions = make_run(dataset, taxonomy, items, [labels[0]] * n, [0.5] * n)
        sample, sample_items = make_sample(run, predictions)
        add_verdicts([(si, ann, "hit") for si in sample_items])
        add_verdicts([(si, abe, "miss", labels[1]) for si in sample_items])
        for si in sample_items[::2]:
            adjudication_record(sample_item=si, lead=ann, value="hit", note="n")
        as_user(client, "lee")
        for url in (
            f"/api/samples/{sample.pk}/disagreements/",
            f"/samples/{sample.pk}/disagreements/?status=all",
        ):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            counts.append(len(ctx.captured_queries))
    assert counts[:2] == counts[2:], counts


def test_label_of_another_taxonomy_is_refused(disputed, lee) -> None:
    other = Label.objects.create(taxonomy=Taxonomy.objects.create(name="x"), key="/x", name="x")
    with pytest.raises(UnknownLabel):
        adjudication_record(
            sample_item=disputed.sample_items[0], lead=lee, value="miss", corrected_label=other,
            note="n",
        )  # fmt: skip


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lead_adjudicates_in_the_browser_and_the_dashboard_follows(
    browser, live_server, disputed, dataset
) -> None:
    """The dashboard open in one tab; in another the lead decides item 0 (a majority miss) is a
    hit, with a note, then item 5 (a tie) is a miss with a right label found by searching the
    taxonomy. The dashboard's counts change by themselves; no console error, no CSP report."""
    for item in disputed.items:  # the thumbnails the page shows
        Image.new("RGB", (64, 48), (200, 120, 40)).save(Path(dataset.image_root) / item.image_path)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    dashboard, page = context.new_page(), context.new_page()
    for tab in (dashboard, page):
        tab.set_default_timeout(15_000)
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    login(page, live_server, "lee")
    sample, s = disputed.sample, disputed.sample_items
    dashboard.goto(f"{live_server.url}/samples/{sample.pk}/")
    hits = dashboard.locator("#dash-summary [data-field=hits]")
    errors = dashboard.locator("#dash-summary [data-field=errors]")
    assert (hits.inner_text(), errors.inner_text()) == ("1", "1")

    page.goto(f"{live_server.url}/samples/{sample.pk}/disagreements/")
    card = page.locator(f"#item-{s[0].pk}")
    assert "2 misses" in card.locator(".dis-votes").inner_text()
    assert card.locator(".dis-verdicts tbody tr").count() == 3
    card.locator("input[name=value][value=hit]").check()
    card.locator("textarea[name=note]").fill("The <b>shop</b> is plainly there.")
    card.locator("button[type=submit].primary").click()
    card = page.locator(f"#item-{s[0].pk}")
    card.locator(".dis-saved").wait_for()
    assert "decided by the lead: hit" in card.locator(".dis-badge").inner_text()
    assert card.locator(".dis-note").inner_text() == "The <b>shop</b> is plainly there."
    dashboard.wait_for_function(
        "() => document.querySelector('#dash-summary [data-field=hits]').textContent === '2'"
    )
    assert errors.inner_text() == "0"

    # A miss with the right label: abe's correction is offered; typing in the taxonomy search
    # and Enter takes the first match (the shared keyboard label search).
    tie = page.locator(f"#item-{s[5].pk}")
    assert tie.locator(".dis-suggested .label-pick").inner_text() == "label 02"
    tie.locator("input[name=q]").fill("label 02")
    tie.locator("input[name=q]").press("Enter")
    corrected = tie.locator("input[name=corrected_label]")
    page.wait_for_function(
        "([el, key]) => el.value === key", arg=[corrected.element_handle(), disputed.labels[2].key]
    )
    assert tie.locator("input[name=value][value=miss]").is_checked()
    assert tie.locator(".dis-chosen [data-chosen]").inner_text() == "label 02"
    tie.locator("textarea[name=note]").fill("Not label 1.")
    tie.locator("button[type=submit].primary").click()
    page.locator(f"#item-{s[5].pk} .dis-saved").wait_for()
    dashboard.wait_for_function(
        "() => document.querySelector('#dash-summary [data-field=errors]').textContent === '1'"
    )
    decided = {a.sample_item_id: a for a in Adjudication.objects.select_related("corrected_label")}
    assert decided[s[0].pk].value == "hit"
    assert (decided[s[5].pk].value, decided[s[5].pk].corrected_label.key) == (
        "miss", disputed.labels[2].key,
    )  # fmt: skip

    # Withdrawn from the "decided" list: the majority counts again.
    page.goto(f"{live_server.url}/samples/{sample.pk}/disagreements/?status=decided")
    card = page.locator(f"#item-{s[0].pk}")
    card.locator("button", has_text="Withdraw decision").click()
    page.locator(f"#item-{s[0].pk} .dis-saved").wait_for()
    dashboard.wait_for_function(
        "() => document.querySelector('#dash-summary [data-field=hits]').textContent === '1'"
    )
    assert not Adjudication.objects.filter(sample_item=s[0]).exists()
    # A note is required: the browser refuses an empty one, and nothing is saved.
    card = page.locator(f"#item-{s[0].pk}")
    card.locator("input[name=value][value=hit]").check()
    card.locator("button[type=submit].primary").click()
    assert card.locator("textarea[name=note]").evaluate("el => !el.validity.valid")
    assert not Adjudication.objects.filter(sample_item=s[0]).exists()
    assert problems == []
    context.close()


def test_the_later_adjudication_of_an_item_and_label_wins(client: Client, disputed, lee) -> None:
    """Two samples hold item 0 with label 0; the lead's later decision is the fact."""
    second, second_items = make_sample(disputed.run, disputed.predictions[:10])
    adjudication_record(sample_item=disputed.sample_items[0], lead=lee, value="hit", note="1")
    adjudication_record(sample_item=second_items[0], lead=lee, value="miss", note="2")
    client.login(username="lee", password=PASSWORD)
    rows = client.get(f"/api/samples/{second.pk}/scores/").json()["rows"]
    # Item 1 (two hits) right; item 0 wrong: the later decision, a miss, wins over the hit.
    assert (rows[0]["covered"], rows[0]["correct"]) == (2, 1)
    Adjudication.objects.get(sample_item=disputed.sample_items[0]).save()  # now the later one
    rows = client.get(f"/api/samples/{second.pk}/scores/").json()["rows"]
    assert (rows[0]["covered"], rows[0]["correct"]) == (2, 2)


def test_page_forms_refuse_bad_input_without_errors(client: Client, disputed) -> None:
    """The page's decision form (htmx): a refused decision comes back in the card with its
    reason; an item of another sample or a huge id answers 404; a plain POST redirects."""
    as_user(client, "lee")
    url = f"/samples/{disputed.sample.pk}/disagreements/"
    item = disputed.sample_items[0].pk
    htmx = {"HX-Request": "true"}
    for body in (
        {"item": item, "action": "decide", "value": "hit", "note": ""},
        {"item": item, "action": "decide", "value": "hit", "note": "nul \x00 here"},
        {"item": item, "action": "decide", "value": "miss", "note": "n", "corrected_label": "\x00"},
        {"item": item, "action": "decide", "value": "perhaps", "note": "n"},
    ):
        response = client.post(url, body, headers=htmx)
        assert response.status_code == 200, body
        assert 'role="alert"' in response.content.decode(), body
    assert not Adjudication.objects.exists()
    for bad in ("99999999999999999999999", "x", "", str(10**12)):
        assert client.post(url, {"item": bad, "value": "hit", "note": "n"}).status_code == 404
    done = client.post(url, {"item": item, "action": "decide", "value": "hit", "note": "<i>ok</i>"})
    assert done.status_code == 302
    assert done["Location"].endswith(f"#item-{item}")
    caption = disputed.items[0]
    caption.caption = "<script>alert(1)</script> bakery"
    caption.save()
    page = client.get(url).content.decode()
    assert "&lt;i&gt;ok&lt;/i&gt;" in page  # the note
    assert "<i>ok</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; bakery" in page  # the caption
    assert "<script>alert(1)" not in page
    # An annotator may not post decisions (403), an outsider gets 404.
    as_user(client, "ann")
    assert client.post(url, {"item": item, "value": "hit", "note": "n"}).status_code == 403
