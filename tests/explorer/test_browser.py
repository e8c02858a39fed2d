"""In Chromium, as a lead: filter the explorer by label, load the next page, open an item,
switch its image between fit and actual size; the caption's <script> stays text. No console
error and no dialog on the way."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import login
from tests.datasets.conftest import write_jpeg
from tests.explorer.conftest import SCRIPT_CAPTION


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_filter_page_through_and_open_an_item(page, live_server, explored, lee) -> None:
    root = Path(explored.run.dataset.image_root)
    for n, item in enumerate(explored.items):
        write_jpeg(root / item.image_path, size=(60, 40), colour=(20 * (n % 12), 90, 160))
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append(dialog.message), dialog.dismiss()))
    login(page, live_server, "lee")
    page.goto(f"{live_server.url}/runs/{explored.run.pk}/items/?limit=4")
    street = explored.labels[0]  # label 0: items 0, 4, 8, ... (10 of the 40)
    page.fill("input[name=label]", street.key)
    page.click("form.explorer-filters button[type=submit]")
    page.wait_for_url(f"**/runs/{explored.run.pk}/items/?label=*")
    assert "min_probability" not in page.url  # empty fields stay out of the query string
    cards = page.locator(".explorer-card")
    assert cards.count() == 4
    assert set(cards.locator(".label").all_inner_texts()) == {street.name}
    page.click("#explorer-next")  # htmx appends the next page to the grid
    expect(cards).to_have_count(8)
    page.click("#explorer-next")
    expect(cards).to_have_count(10)
    assert page.locator(".explorer-more").inner_text().strip() == "End of the list."
    first = explored.items[0]
    page.click(f".explorer-card[href^='/items/{first.pk}/']")
    page.wait_for_url(f"**/items/{first.pk}/?run={explored.run.pk}")
    assert page.locator(".caption").inner_text() == SCRIPT_CAPTION
    image = page.locator("#item-image")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    toggle = page.locator("#zoom-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert "fit" not in (page.locator("#image-frame").get_attribute("class") or "")
    image.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    # Back to the explorer keeps the filters the lead came from.
    back = page.locator("#back-to-explorer")
    assert f"label={street.key.replace('/', '%2F')}" in (back.get_attribute("href") or "")
    assert problems == []
