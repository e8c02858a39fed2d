"""The near-duplicates page: in Chromium at phone width from the run page (a queued scan, the
htmx progress, then the groups with thumbnails linking to the items, a sample holding two
copies, a new threshold, a rescan), and through Django's test client: roles, bad thresholds,
runs without embeddings. The dataset is `copies_run` (five byte-identical copies among
distinct images, classified by the tiny random checkpoint)."""

import pytest
from playwright.sync_api import expect

from annotate.datasets.models import Dataset, Item, Membership, Role
from annotate.validation.models import Sample, SampleItem
from classifier.models import ClassificationRun, DuplicateScan, Prediction
from tests.classifier.conftest import tiny_checkpoint  # noqa: F401
from tests.conftest import PASSWORD, login, make_user
from tests.search.test_duplicates import THRESHOLD, copies_run  # noqa: F401

pytestmark = [pytest.mark.torch]
PHONE = {"width": 390, "height": 844}


def page_url(run_id: int, threshold: str | None = None) -> str:
    query = f"?min_similarity={threshold}" if threshold is not None else ""
    return f"/runs/{run_id}/duplicates/{query}"


def sample_with_two_copies(run: ClassificationRun) -> Sample:
    sample = Sample.objects.create(run=run, classes=1, per_class=3)
    reposts = Prediction.objects.filter(run=run, item__external_id__startswith="repost")
    distinct = Prediction.objects.filter(run=run, item__external_id="distinct0.jpg")
    chosen = [*reposts.order_by("item__external_id")[:2], *distinct]
    SampleItem.objects.bulk_create(
        SampleItem(sample=sample, prediction=p, position=n) for n, p in enumerate(chosen)
    )
    return sample


@pytest.mark.browser
@pytest.mark.worker
def test_page_at_phone_width(copies_run, start_worker, browser, live_server) -> None:  # noqa: F811
    run, _lead = copies_run
    sample = sample_with_two_copies(run)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        login(page, live_server, "lead")
        page.goto(f"{live_server.url}/runs/{run.pk}/")
        page.click("text=Near-duplicates")
        page.wait_for_url(f"**/runs/{run.pk}/duplicates/")
        # No scan yet: one is queued, and the page says so while it polls.
        expect(page.locator("#duplicates-progress")).to_contain_text("queued")
        expect(page.locator("#duplicates-bar")).to_be_visible()
        assert DuplicateScan.objects.filter(run=run, min_similarity=0.97).count() == 1
        start_worker("search")
        # The poll reloads the page once the scan is done: the groups appear.
        expect(page.locator("#duplicate-groups")).to_be_visible()
        expect(page.locator("#duplicates-progress")).to_have_count(0)  # no progress once done
        # A stricter threshold: only the five copies.
        page.fill("#duplicates-threshold", THRESHOLD)
        page.click("form.explorer-filters >> text=Show")
        page.wait_for_url(f"**/duplicates/?min_similarity={THRESHOLD}")
        groups = page.locator(".duplicate-group")
        expect(groups).to_have_count(1)
        group = groups.first
        expect(group).to_contain_text("5 items")
        expect(group.locator(".badge.in-sample")).to_contain_text(f"2 copies in sample {sample.pk}")
        cards = group.locator(".explorer-card")
        expect(cards).to_have_count(5)
        reposts = set(
            Item.objects.filter(dataset=run.dataset, external_id__startswith="repost").values_list(
                "id", flat=True
            )
        )
        assert {int(i) for i in cards.evaluate_all("cs => cs.map(c => c.dataset.item)")} == reposts
        thumb = cards.first.locator("img")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
        )
        expect(page.locator("#duplicates-summary")).to_contain_text("1 group")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Rescan (POST with the CSRF token): a new scan, the same group.
        before = DuplicateScan.objects.count()
        page.click("#duplicates-rescan")
        page.wait_for_url(f"**/duplicates/?min_similarity={THRESHOLD}")
        expect(page.locator(".duplicate-group")).to_have_count(1)
        assert DuplicateScan.objects.count() == before + 1
        # The item link leads to the item page.
        href = cards.first.locator("a.thumb").get_attribute("href")
        page.goto(f"{live_server.url}{href}")
        expect(page.locator("body")).to_contain_text("repost")
        assert problems == []
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_page_roles_and_bad_input(copies_run, client) -> None:  # noqa: F811
    run, lead = copies_run
    annotator = make_user("ann")
    Membership.objects.create(dataset=run.dataset, user=annotator, role=Role.ANNOTATOR)
    outsider = make_user("out")
    other = Dataset.objects.create(name="other", image_root=str(run.dataset.image_root))
    Membership.objects.create(dataset=other, user=outsider, role=Role.LEAD)
    assert client.get(page_url(run.pk)).status_code == 302  # to the login page
    client.login(username="ann", password=PASSWORD)
    assert client.get(page_url(run.pk)).status_code == 403
    client.login(username="out", password=PASSWORD)
    assert client.get(page_url(run.pk)).status_code == 404
    assert client.post(page_url(run.pk)).status_code == 404
    client.login(username="lead", password=PASSWORD)
    for bad in ("0.2", "abc", "nan", "1e400", "%00", "0.9" * 100):
        response = client.get(page_url(run.pk, bad))
        assert response.status_code == 400, bad
        assert b"min_similarity must be a number" in response.content
    response = client.post(page_url(run.pk), {"min_similarity": "7"})
    assert response.status_code == 400
    assert not DuplicateScan.objects.exists()
    response = client.get(page_url(run.pk))  # queues a scan (no worker here)
    assert response.status_code == 200
    assert b"queued" in response.content
    (scan,) = DuplicateScan.objects.all()
    assert scan.created_by == lead
    # The htmx poll never starts a scan, and reloads the page once the scan is over.
    poll = client.get(page_url(run.pk, "0.99"), headers={"HX-Request": "true"})
    assert poll.status_code == 200
    assert DuplicateScan.objects.count() == 1
    DuplicateScan.objects.filter(pk=scan.pk).update(status="failed", error="Boom <b>")
    poll = client.get(page_url(run.pk), headers={"HX-Request": "true"})
    assert poll["HX-Refresh"] == "true"
    page = client.get(page_url(run.pk))
    assert b"The scan failed" in page.content
    assert b"Boom <b>" not in page.content  # a lead reads no raw error
    run.source = ClassificationRun.Source.IMPORT
    run.save(update_fields=["source"])
    assert client.get(page_url(run.pk, "0.98")).status_code == 409
