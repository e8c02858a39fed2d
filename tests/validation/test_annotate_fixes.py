"""The annotation page in Chromium: no key acts on an item nobody has seen (the focus left on a
clicked button, keys pressed while the next item is on its way), images decoded before they
show and three items preloaded, the label search chosen with the arrow keys, and a layout whose
buttons never move (phone included). Verdicts are checked through the ORM."""

from pathlib import Path

import pytest
from PIL import Image

from annotate.taxonomies.models import Label
from annotate.validation.models import Lease, Sample, SampleItem, Verdict
from annotate.validation.sampling import sample_draw
from tests.conftest import login
from tests.validation.test_annotate_page import current_item, settle

LONG_CAPTION = "A very long caption about the place, " * 12


def with_images(sample: Sample, size: tuple[int, int] = (40, 30)) -> list[SampleItem]:
    """Real (small) images for the sample's items, in the order the page shows them."""
    items = list(
        SampleItem.objects.filter(sample=sample)
        .select_related("prediction__item__dataset")
        .order_by("position")
    )
    for n, item in enumerate(items):
        image = item.prediction.item
        path = Path(image.dataset.image_root) / image.image_path
        Image.new("RGB", size, (40 * n % 255, 120, 200)).save(path, "JPEG")
    return items


def open_page(page, live_server, sample: Sample, **goto) -> None:
    login(page, live_server, "ann")
    page.goto(f"{live_server.url}/samples/{sample.pk}/annotate/", **goto)
    wait_shown(page)


def wait_shown(page, item: int | None = None) -> int:
    """Wait until an item (this one, when given) is on screen and painted: keys act on it."""
    test = "d.shown" if item is None else f"d.shown === '{item}'"
    page.wait_for_function(f"() => {{ const d = document.getElementById('annotate').dataset;"
                           f" return {test}; }}")  # fmt: skip
    return current_item(page)


def next_shown(page, before: int) -> int:
    page.wait_for_function(
        "b => { const d = document.getElementById('annotate').dataset;"
        " return d.shown && d.shown !== String(b); }",
        arg=before,
    )
    return current_item(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_space_or_enter_after_a_click_never_judges_the_next_item(
    live_server, run, ann, page
) -> None:
    sample = sample_draw(run=run, classes=1, per_class=4, seed=3, overlap=0)
    open_page(page, live_server, sample)
    first = current_item(page)
    page.click("#btn-miss")  # with the mouse
    second = next_shown(page, first)
    assert page.evaluate("document.activeElement === document.body")
    page.keyboard.press(" ")
    page.keyboard.press("Enter")
    # Even a button that has the focus again (as after a click) and a key held down do nothing.
    page.focus("#btn-hit")
    page.keyboard.press("Enter")
    page.keyboard.press(" ")
    page.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'h', repeat: true}))")
    page.wait_for_timeout(400)
    settle(page)
    assert current_item(page) == second
    assert not Verdict.objects.filter(sample_item_id=second).exists()
    assert list(Verdict.objects.values_list("sample_item_id", "value")) == [(first, "miss")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_next_images_are_decoded_before_they_show_and_keys_wait_for_them(
    live_server, run, ann, page
) -> None:
    sample = sample_draw(run=run, classes=1, per_class=6, seed=5, overlap=0)
    items = with_images(sample)
    # Every item put on screen is recorded with its image's state at that moment.
    page.add_init_script(
        """
        window.swaps = [];
        new MutationObserver(() => {
          const el = document.querySelector('#stage .ann-item');
          if (!el || window.swaps.some((s) => s.id === el.dataset.item)) return;
          const img = el.querySelector('img');
          if (!img) return;
          window.swaps.push({id: el.dataset.item, complete: img.complete,
                             width: img.naturalWidth});
        }).observe(document, {childList: true, subtree: true});
        """
    )
    # The second item's image is held back until the test lets it go.
    second_image = f"/items/{items[1].prediction.item_id}/image/"
    held: list = []
    page.route(
        f"**{second_image}", lambda route: held.append(route)
    )  # fmt: skip
    open_page(page, live_server, sample, wait_until="domcontentloaded")
    first = current_item(page)
    assert first == items[0].pk
    # Three items are preloaded (leased to this page, their images requested) behind the one
    # on screen.
    preloaded = {item.pk for item in items[:4]}
    for _ in range(100):
        leased = set(Lease.objects.filter(annotator=ann).values_list("sample_item_id", flat=True))
        if leased == preloaded:
            break
        page.wait_for_timeout(100)
    assert leased == preloaded
    for item in items[2:4]:
        page.wait_for_function(
            "url => performance.getEntriesByType('resource').some(e => e.name.endsWith(url))",
            arg=f"/items/{item.prediction.item_id}/image/",
        )

    page.keyboard.press("h")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent.includes('Loading the next')"
    )
    # The saved item stays on screen (never an empty box) and keys do nothing meanwhile.
    assert current_item(page) == first
    page.keyboard.press("h")
    page.keyboard.press("m")
    page.wait_for_timeout(300)
    assert Verdict.objects.count() == 1
    assert held, "the second image was requested"
    for route in held:
        route.continue_()
    second = next_shown(page, first)
    assert second == items[1].pk
    page.keyboard.press("m")
    third = next_shown(page, second)
    page.keyboard.press("s")
    next_shown(page, third)
    swaps = page.evaluate("window.swaps")
    assert [int(s["id"]) for s in swaps] == [item.pk for item in items[:4]]
    assert all(s["complete"] and s["width"] == 40 for s in swaps[1:]), swaps
    got = dict(Verdict.objects.values_list("sample_item_id", "value"))
    assert got == {first: "hit", second: "miss", third: "skip"}
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_arrow_keys_choose_the_label_and_enter_takes_the_highlighted_one(
    live_server, run, ann, page
) -> None:
    sample = sample_draw(run=run, classes=1, per_class=4, seed=2, overlap=0)
    indoor = Label.objects.create(
        taxonomy=run.taxonomy, key="/c/church/indoor", name="church indoor"
    )
    outdoor = Label.objects.create(
        taxonomy=run.taxonomy, key="/c/church/outdoor", name="church outdoor"
    )
    open_page(page, live_server, sample)
    first = current_item(page)
    page.keyboard.press("/")
    page.keyboard.type("church")
    page.wait_for_function(
        "() => document.getElementById('label-search').dataset.answered === 'church'"
    )
    options = page.locator("#label-results [role=option]")
    assert options.all_inner_texts() == ["church indoor", "church outdoor"]
    search = page.locator("#label-search")
    assert search.get_attribute("role") == "combobox"
    assert search.get_attribute("aria-activedescendant") == options.nth(0).get_attribute("id")
    page.keyboard.press("ArrowDown")
    assert search.get_attribute("aria-activedescendant") == options.nth(1).get_attribute("id")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    assert options.nth(0).get_attribute("aria-selected") == "false"
    page.keyboard.press("Enter")
    second = next_shown(page, first)
    verdict = Verdict.objects.get(sample_item_id=first)
    assert (verdict.value, verdict.corrected_label_id) == ("miss", outdoor.pk)
    assert search.input_value() == ""

    # ArrowUp from the first wraps to the last; Escape leaves the search.
    page.keyboard.press("/")
    page.keyboard.type("church")
    page.wait_for_function(
        "() => document.getElementById('label-search').dataset.answered === 'church'"
    )
    page.keyboard.press("ArrowUp")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowUp")
    assert options.nth(0).get_attribute("aria-selected") == "true"
    # Typing on and pressing Enter before the new results come takes the new first result,
    # never the highlighted one of the old results.
    page.keyboard.type(" out")
    page.keyboard.press("Enter")
    third = next_shown(page, second)
    verdict = Verdict.objects.get(sample_item_id=second)
    assert (verdict.value, verdict.corrected_label_id) == ("miss", outdoor.pk)
    assert indoor.pk not in Verdict.objects.values_list("corrected_label_id", flat=True)
    assert current_item(page) == third
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_buttons_stay_put_and_images_fill_the_box(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=1, per_class=4, seed=7, overlap=0)
    items = with_images(sample, size=(40, 30))
    long = items[1].prediction.item
    long.caption = LONG_CAPTION
    long.save()
    page.set_viewport_size({"width": 1440, "height": 900})
    open_page(page, live_server, sample)
    boxes = []
    for key in ("h", "m", "s"):
        before = current_item(page)
        boxes.append({
            "hit": page.locator("#btn-hit").bounding_box(),
            "figure": page.locator("#stage .ann-figure").bounding_box(),
            "img": page.locator("#stage .ann-figure img").bounding_box(),
            "meta": page.locator("#stage .ann-meta").inner_text(),
        })  # fmt: skip
        page.keyboard.press(key)
        next_shown(page, before)
    assert all(b["hit"] == boxes[0]["hit"] for b in boxes), boxes
    assert all(b["figure"] == boxes[0]["figure"] for b in boxes)
    # A 40x30 image is scaled up to fit the box, keeping its shape.
    img = boxes[0]["img"]
    assert img["height"] > 300
    fit = page.evaluate(
        "(() => { const i = document.querySelector('#stage .ann-figure img');"
        " return [getComputedStyle(i).objectFit, i.naturalWidth, i.naturalHeight]; })()"
    )
    assert fit == ["contain", 40, 30]
    # Positions count from 1.
    assert boxes[0]["meta"].endswith("· #1")
    assert boxes[1]["meta"].endswith("· #2")
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_phone_shows_caption_and_suggestions_above_the_buttons(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=1, per_class=3, seed=4, overlap=0)
    items = with_images(sample, size=(300, 200))
    first = items[0].prediction.item
    first.caption = LONG_CAPTION[:160]
    first.save()
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, live_server, sample)
    bar = page.locator(".ann-actions").bounding_box()
    assert bar["y"] + bar["height"] <= 844
    for selector in ("#stage .ann-caption", "#stage .ann-suggest", "#stage .ann-label"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0
        assert box["y"] + box["height"] <= bar["y"], (selector, box, bar)
        assert box["x"] + box["width"] <= 390
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    settle(page)
