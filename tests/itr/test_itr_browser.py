"""ITR end to end in headless Chromium: two reviewers review with the keyboard (three items,
one with a reason, then a second opinion), and the lead comments on and decides the split
item on the adjudication page. Everything is checked through the ORM."""

import pytest

from annotate.itr.models import ItrComment, ItrDecision, ItrItem, ItrReview
from tests.conftest import login

# Rows 0-4, all in the test split: original labels (text_is_represented, image_adds).
LABELS = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]


def item_on_screen(page) -> int:
    return int(page.locator("#stage .itr-item").get_attribute("data-item"))


def saved_then_next(page, before: int) -> None:
    """Wait until the page shows another item (the review was saved first)."""
    page.wait_for_function(
        "b => { const el = document.querySelector('#stage .itr-item');"
        " return !el || Number(el.dataset.item) !== b; }",
        arg=before,
    )


def settle(page) -> None:
    """No request in flight (a late preload must not meet the test database's flush)."""
    page.wait_for_function(
        "() => document.getElementById('review').dataset.inflight === '0'"
        " && !document.querySelector('.htmx-request')"
    )


def row_of(item_id: int) -> int:
    return ItrItem.objects.get(pk=item_id).row


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reviewers_review_with_keys_and_the_lead_decides(
    live_server, make_itr, reviewers, lee, browser, page
) -> None:
    dataset = make_itr(LABELS, split=0)
    rev1, rev2 = reviewers[0], reviewers[1]

    # rev1: three items with the keyboard. Row 0 as published (Enter); row 1 changed to type 4
    # with a reason (r, typing, Enter); row 2 toggled away and back (t t), then Enter.
    login(page, live_server, "rev1")
    page.goto(f"{live_server.url}/itr/{dataset.pk}/review/")
    first = item_on_screen(page)
    assert row_of(first) == 0
    page.keyboard.press("Enter")
    saved_then_next(page, first)
    second = item_on_screen(page)
    page.keyboard.press("4")
    assert page.locator("#stage .itr-reason").get_attribute("class").endswith("is-required")
    page.keyboard.press("r")
    page.keyboard.type("the caption names the team in the photo")
    page.keyboard.press("Enter")
    saved_then_next(page, second)
    third = item_on_screen(page)
    page.keyboard.press("t")
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    saved_then_next(page, third)
    settle(page)
    mine = {r.item_id: r for r in ItrReview.objects.filter(reviewer=rev1)}
    assert {row_of(pk) for pk in mine} == {0, 1, 2}
    assert (mine[first].text_is_represented, mine[first].image_adds, mine[first].reason) == (
        0,
        0,
        "",
    )
    assert (mine[second].text_is_represented, mine[second].image_adds) == (1, 1)
    assert mine[second].reason == "the caption names the team in the photo"
    assert (mine[third].text_is_represented, mine[third].image_adds, mine[third].reason) == (
        1,
        0,
        "",
    )

    # rev2 sees row 0 first (it wants two more reviews) and says the image adds (type 2).
    other = browser.new_context()
    try:
        page2 = other.new_page()
        page2.set_default_timeout(15_000)
        login(page2, live_server, "rev2")
        page2.goto(f"{live_server.url}/itr/{dataset.pk}/review/")
        assert item_on_screen(page2) == first
        page2.keyboard.press("2")
        page2.keyboard.press("r")
        page2.keyboard.type("the photo is the joke")
        page2.keyboard.press("Enter")
        saved_then_next(page2, first)
        settle(page2)
    finally:
        other.close()
    split = ItrItem.objects.get(pk=first)
    assert (split.review_count, split.disagreement, split.margin) == (2, True, 0.0)

    # The lead: row 0 (a split vote) comes before row 1 (one vote against the original).
    lead_context = browser.new_context()
    try:
        lead = lead_context.new_page()
        lead.set_default_timeout(15_000)
        problems: list[str] = []  # console errors and CSP reports: the pages need none
        lead.on(
            "console",
            lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
        )
        lead.on("pageerror", lambda error: problems.append(str(error)))
        login(lead, live_server, "lee")
        lead.goto(f"{live_server.url}/itr/{dataset.pk}/adjudicate/")
        cards = lead.locator("#queue article.adj-item")
        assert [cards.nth(n).get_attribute("data-row") for n in range(cards.count())] == ["0", "1"]
        card = lead.locator(f"#item-{first}")
        assert "the photo is the joke" in card.locator(".adj-votes").inner_text()
        card.locator("textarea[name=text]").fill("<b>rev1</b>, what did you see?")
        card.locator(".adj-comment-form button").click()
        lead.wait_for_function(f"() => document.querySelector('#comments-{first} .adj-thread li')")
        assert "<b>rev1</b>, what did you see?" in card.locator(".adj-thread").inner_text()
        card = lead.locator(f"#item-{first}")
        card.locator("input[name=image_adds][value='1']").check()
        card.locator("textarea[name=note]").fill("The photo carries the punchline.")
        card.locator(".adj-decide button[type=submit]").click()
        lead.wait_for_function(f"() => document.querySelector('#item-{first} .adj-saved')")
        card = lead.locator(f"#item-{first}")
        assert "Decision saved." in card.inner_text()
        assert "Decided" in card.locator(".adj-status").inner_text()
        assert "The photo carries the punchline." in card.locator(".adj-note").inner_text()
        # The dashboard counts the decision and draws its chart.
        lead.goto(f"{live_server.url}/itr/{dataset.pk}/")
        lead.wait_for_load_state("networkidle")
        assert lead.evaluate("Chart.getChart('chart-distribution') !== undefined")
        decided_figure = lead.locator("#itr-progress-card dt:text-is('Decided') + dd")
        assert decided_figure.inner_text() == "1"
        assert problems == []
    finally:
        lead_context.close()
    decision = ItrDecision.objects.get(item_id=first)
    assert (decision.text_is_represented, decision.image_adds) == (0, 1)
    assert (decision.note, decision.decided_by) == ("The photo carries the punchline.", lee)
    decided = ItrItem.objects.get(pk=first)
    assert (decided.status, decided.final) == ("decided", (0, 1))
    assert ItrComment.objects.get(item_id=first).text == "<b>rev1</b>, what did you see?"
    assert not ItrDecision.objects.exclude(item_id=first).exists()
    assert rev2.itr_reviews.count() == 1
