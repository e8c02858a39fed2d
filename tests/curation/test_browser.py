"""The dashboard's "What you get" panel in Chromium at phone width, under the site's CSP: the
estimate appears, moving the θ slider changes it, a target precision shows per-label
thresholds, new verdicts refresh it, and the export button gives a download link once a real
worker wrote the file. One test: each browser test costs seconds."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from annotate.validation.models import CuratedExport
from tests.conftest import login

PHONE = {"width": 390, "height": 844}


def estimate(page) -> str:
    return page.locator("#selection-estimate").inner_text()


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_panel_moves_with_the_slider_and_exports(
    published, abe, start_worker, browser, live_server
) -> None:
    start_worker("default")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        login(page, live_server, "lee")
        page.goto(f"{live_server.url}/samples/{published.sample.pk}/?theta=0.6")
        expect(page.locator("#selection-estimate")).to_be_visible()
        expect(page.locator("#selection-theta-value")).to_have_text("0.60")
        first = estimate(page)
        assert "You keep" in first
        assert "%" in first
        # Move θ: the estimate follows (htmx, 250 ms after the last input).
        page.eval_on_selector(
            "#selection-theta",
            "el => { el.value = '0.8'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
        )
        expect(page.locator("#selection-theta-value")).to_have_text("0.80")
        page.wait_for_function(
            "before => document.querySelector('#selection-estimate').innerText !== before",
            arg=first,
        )
        moved = estimate(page)
        assert "p ≥ 0.8" in moved
        # A target precision: per-label thresholds in the table.
        page.fill("#selection-target", "0.5")
        expect(page.locator("#selection-mode-target")).to_be_checked()
        expect(page.locator("#selection-estimate")).to_contain_text("per-label thresholds")
        cells = page.locator("#selection-table td[data-field=threshold]").all_inner_texts()
        assert len(cells) == 10
        assert any(cell not in ("—", "0.8") for cell in cells)
        # Nothing on the page is wider than the phone; the table scrolls inside its card.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # New verdicts (the poller swaps the live tables): the panel asks again by itself.
        page.click("#selection-mode-threshold")
        expect(page.locator("#selection-estimate")).to_contain_text("p ≥ 0.8")
        page.evaluate("window.selectionRequests = 0")
        page.evaluate(
            "document.body.addEventListener('htmx:beforeRequest', e => {"
            " if (e.detail.elt.id === 'selection-form') window.selectionRequests += 1; })"
        )
        token = Token.objects.create(user=abe).key
        item = published.sample_items[0]
        request = urllib.request.Request(
            f"{live_server.url}/api/verdicts/",
            data=json.dumps({"sample_item": item.pk, "value": "skip"}).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
        page.wait_for_function("() => window.selectionRequests > 0", timeout=5000)
        # Export: queued, written by the worker, then a download link that works.
        page.select_option("#export-format", "csv")
        page.click("#export-button")
        expect(page.locator("#export-status .export-status")).to_be_visible()
        link = page.locator("#export-download")
        expect(link).to_be_visible(timeout=60_000)
        (export,) = CuratedExport.objects.all()
        assert export.status == "succeeded"
        assert export.rule["threshold"] == 0.8
        download = page.request.get(f"{live_server.url}{link.get_attribute('href')}")
        assert download.status == 200
        rows = download.text().splitlines()
        assert len(rows) - 1 == export.manifest["counts"]["rows"]  # a header, then the rows
        manifest = page.locator("#export-manifest").get_attribute("href")
        assert page.request.get(f"{live_server.url}{manifest}").json() == export.manifest
        assert problems == []
    finally:
        context.close()
