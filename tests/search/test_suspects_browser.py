"""The "Likely errors" page in Chromium at phone width (390 px), as the demo's lead: from the
run page to the page, thumbnails, score bars and reasons, the label filter, and the form that
draws a suspects sample. Its own module: a live server makes the test transactional (the
database is flushed after it), so it gets a demo of its own."""

import pytest
from playwright.sync_api import expect

from annotate.datasets.models import Item
from annotate.validation.models import Sample
from classifier.models import Prediction

PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
def test_page_at_phone_width_draws_a_suspects_sample(demo_storage, browser, live_server) -> None:
    demo = demo_storage
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        login_demo(page, live_server)
        page.goto(f"{live_server.url}/runs/{demo.run.pk}/")
        page.click("#run-links >> text=Likely errors")
        page.wait_for_url(f"**/runs/{demo.run.pk}/suspects/")
        cards = page.locator(".suspect-card")
        expect(cards).to_have_count(100)
        first = cards.first
        assert first.locator("meter.score").count() == 1
        assert first.locator(".reason").count() >= 1
        # Nothing wider than the phone: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        thumb = first.locator("img")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
        )
        top = Item.objects.get(pk=int(first.get_attribute("data-item")))
        # The label filter: only that label's items.
        label = Prediction.objects.get(run=demo.run, item=top).label
        page.fill("input[name=label]", label.key)
        page.click("form.explorer-filters >> text=Apply")
        page.wait_for_url("**/suspects/?label=*")
        assert set(cards.locator(".label").all_inner_texts()) == {label.name}
        before = set(Sample.objects.values_list("pk", flat=True))
        page.fill("#suspects-sample-form input[name=per_class]", "3")
        page.click("#suspects-sample-form button[type=submit]")
        page.wait_for_url(f"**/runs/{demo.run.pk}/")
        (sample,) = Sample.objects.exclude(pk__in=before)
        assert sample.strategy == "suspects"
        assert sample.items.count() == 30
        row = page.locator(f"#sample-list tr[data-sample='{sample.pk}']")
        expect(row.locator(".sample-strategy")).to_contain_text("Likely errors")
        assert problems == []
    finally:
        Sample.objects.filter(strategy="suspects").delete()
        context.close()


def login_demo(page, live_server) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", "sieve-lead-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
