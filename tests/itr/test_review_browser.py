"""The ITR review page in headless Chromium: the keyboard workflow, undo, a save that reaches
the server twice, blind mode and a phone-sized screen. Reviews are checked through the ORM."""

import pytest

from annotate.itr.models import ItrItem, ItrReview
from tests.conftest import login

# Rows 0-4, all in the test split: original labels (text_is_represented, image_adds).
LABELS = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]


def settle(page) -> None:
    """Wait until the page has no request in flight (a late preload must not meet the test
    database's flush at teardown)."""
    page.wait_for_function(
        "() => document.getElementById('review').dataset.inflight === '0'"
        " && !document.querySelector('.htmx-request')"
    )


def current_item(page) -> int:
    return int(page.locator("#stage .itr-item").get_attribute("data-item"))


def wait_item(page, op: str, item: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#stage .itr-item')?.dataset.item {op} {item}"
    )


def wait_next(page, before: int) -> None:
    """Wait until another item (or nothing) is on screen."""
    page.wait_for_function(
        "b => { const el = document.querySelector('#stage .itr-item');"
        " return !el || Number(el.dataset.item) !== b; }",
        arg=before,
    )


def original(item_id: int) -> tuple[int, int]:
    return ItrItem.objects.get(pk=item_id).original


def pressed(page, task: str) -> list[str]:
    """The values of a task whose toggle is pressed ([] when unset)."""
    buttons = page.locator(f"#stage .itr-choice button[data-task={task}][aria-pressed=true]")
    return [buttons.nth(n).get_attribute("data-value") for n in range(buttons.count())]


def status_text(page) -> str:
    return page.inner_text("#save-status")


def reviews_of(user) -> dict[int, tuple[int, int, str]]:
    rows = ItrReview.objects.filter(reviewer=user)
    return {r.item_id: (r.text_is_represented, r.image_adds, r.reason) for r in rows}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_reviewer_works_with_the_keys(live_server, make_itr, reviewers, page) -> None:
    dataset = make_itr(LABELS, split=0)
    rev1 = reviewers[0]
    login(page, live_server, "rev1")
    page.goto(f"{live_server.url}/itr/{dataset.pk}/review/")
    expected: dict[int, tuple[int, int, str]] = {}

    # Help (?) and the guidelines panel (g) are one key away.
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert page.locator("#help").get_by_text("decorative or redundant").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_visible()
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_hidden()

    # First item: the toggles start at the original labels; t and i disagree with them, and
    # Enter then asks for a reason instead of saving.
    first = current_item(page)
    text, image = original(first)
    assert pressed(page, "text") == [str(text)]
    assert pressed(page, "image") == [str(image)]
    page.keyboard.press("t")
    page.keyboard.press("i")
    page.keyboard.press("i")  # back to the original image label
    assert pressed(page, "text") == [str(1 - text)]
    assert pressed(page, "image") == [str(image)]
    assert page.locator("#stage .itr-reason.is-required").is_visible()
    page.keyboard.press("Enter")
    assert "reason is required" in status_text(page)
    assert current_item(page) == first
    assert not ItrReview.objects.exists()
    page.keyboard.press("Escape")  # leave the reason field; keys are shortcuts again
    page.keyboard.press("r")
    page.keyboard.type("the sign in the photo repeats the tweet")
    expected[first] = (1 - text, image, "the sign in the photo repeats the tweet")
    page.keyboard.press("Enter")
    wait_next(page, first)

    # Second item: a digit sets both labels (the type); the original type needs no reason.
    second = current_item(page)
    text, image = original(second)
    page.keyboard.press("4" if (text, image) != (1, 1) else "1")
    assert page.locator("#stage .itr-reason.is-required").is_visible()
    page.keyboard.press(str(1 + 2 * text + image))
    assert page.locator("#stage .itr-reason.is-required").count() == 0
    expected[second] = (text, image, "")
    page.keyboard.press("Enter")
    wait_next(page, second)

    # Third item, saved as it is, then undone with u: it comes back, unreviewed.
    third = current_item(page)
    page.keyboard.press("Enter")
    wait_next(page, third)
    fourth_on_screen = current_item(page)
    assert ItrReview.objects.filter(item_id=third).exists()
    page.keyboard.press("u")
    wait_item(page, "==", third)
    assert not ItrReview.objects.filter(item_id=third).exists()
    # Reviewed again as type 4, with a reason.
    page.keyboard.press("4")
    page.keyboard.press("r")
    page.keyboard.type("both")
    expected[third] = (1, 1, "both")
    page.keyboard.press("Enter")
    wait_item(page, "==", fourth_on_screen)  # the item that was on screen comes next

    # A save that reaches the server but whose answer is lost: the page retries with the
    # same key and the server answers the review it already has (never a second one).
    calls = {"n": 0}

    def answer_lost(route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            route.fetch()  # the server records the review...
            route.abort()  # ...but the page never hears back
        else:
            route.continue_()

    page.route("**/api/itr/reviews/", answer_lost)
    fourth = current_item(page)
    expected[fourth] = (*original(fourth), "")
    page.keyboard.press("Enter")
    wait_next(page, fourth)
    assert calls["n"] == 2
    page.unroute("**/api/itr/reviews/")

    page.wait_for_function("() => document.getElementById('mine-count')?.textContent == '4'")
    assert reviews_of(rev1) == expected
    assert ItrReview.objects.filter(reviewer=rev1).count() == 4
    assert ItrItem.objects.get(pk=fourth).review_count == 1
    keys = list(ItrReview.objects.values_list("key", flat=True))
    assert all(keys)
    assert len(set(keys)) == 4
    assert not ItrReview.objects.filter(duration_ms__isnull=True).exists()
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_blind_mode(live_server, make_itr, reviewers, page) -> None:
    dataset = make_itr([(1, 1), (0, 0), (1, 0)], split=0)
    login(page, live_server, "rev2")
    page.goto(f"{live_server.url}/itr/{dataset.pk}/review/?blind=1")
    assert page.locator("[data-original-text]").count() == 0
    assert "Original labels:" not in page.inner_text("#stage")
    assert page.locator("#stage .itr-orig-mark").count() == 0

    # The toggles start unset: Enter needs both.
    first = current_item(page)
    assert pressed(page, "text") == []
    assert pressed(page, "image") == []
    page.keyboard.press("Enter")
    assert "Set both labels first" in status_text(page)
    page.keyboard.press("t")
    assert pressed(page, "text") == ["1"]
    assert current_item(page) == first
    page.keyboard.press("Enter")
    assert "Set both labels first" in status_text(page)
    page.keyboard.press("i")
    page.keyboard.press("Enter")  # 11, the original labels of row 0: no reason needed
    wait_next(page, first)

    # A change without a reason: the server refuses (400) and the page asks for one.
    second = current_item(page)
    assert original(second) == (0, 0)
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent.includes('reason is required')"
    )
    assert page.locator("#stage .itr-reason.is-required").is_visible()
    assert page.evaluate("document.activeElement.name") == "reason"
    assert not ItrReview.objects.filter(item_id=second).exists()
    page.keyboard.type("a chart of the results")
    page.keyboard.press("Enter")
    wait_next(page, second)
    assert reviews_of(reviewers[1]) == {
        first: (1, 1, ""),
        second: (1, 1, "a chart of the results"),
    }

    # b leaves blind mode (the original labels come from the server), and b enters it again.
    settle(page)
    page.keyboard.press("b")
    page.wait_for_url(lambda url: "blind" not in url)
    assert page.locator("#stage [data-original-text]").count() == 1
    page.keyboard.press("b")
    page.wait_for_url(lambda url: url.endswith("?blind=1"))
    assert page.locator("[data-original-text]").count() == 0
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_phone_sized_screen(live_server, make_itr, reviewers, page) -> None:
    dataset = make_itr([(0, 1), (1, 0)], split=0)
    first = ItrItem.objects.select_related("item").get(dataset=dataset, row=0)
    first.item.caption = "@mention https://t.co/" + "x" * 300 + " <b>not bold</b>"
    first.item.save(update_fields=["caption"])
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server, "rev3")
    page.goto(f"{live_server.url}/itr/{dataset.pk}/review/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert "<b>not bold</b>" in page.inner_text("#stage .itr-text")
    assert page.locator("#stage .itr-text a").count() == 0
    assert page.get_by_text("The image is missing.").is_visible()
    for button in ("#btn-submit", "#btn-undo", "#btn-guide", "#btn-blind"):
        box = page.locator(button).bounding_box()
        assert box
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        assert box["y"] + box["height"] <= 844
    # Tap the toggles and the save button: text yes (a change), a reason, save.
    assert current_item(page) == first.pk
    page.click("#stage .itr-choice button[data-task=text][data-value='1']")
    page.fill("#stage input[name=reason]", "the mention is the photo's subject")
    page.click("#btn-submit")
    wait_next(page, first.pk)
    review = ItrReview.objects.get()
    assert (review.item_id, review.text_is_represented, review.image_adds) == (first.pk, 1, 1)
    page.click("#btn-undo")
    wait_item(page, "==", first.pk)
    assert not ItrReview.objects.exists()
    settle(page)
