"""The annotation page: server-rendered parts with the test client, the keyboard workflow in
headless Chromium."""

import pytest
from django.test import Client

from annotate.validation.models import Sample, Verdict
from annotate.validation.sampling import sample_draw
from tests.conftest import PASSWORD, login
from tests.validation.conftest import api_for


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_page_shows_item_escaped_and_hides_probability_when_blind(run, ann, otto) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1)
    body = client_for("ann").get(f"/samples/{sample.pk}/annotate/").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "<b>bold</b>" not in body
    assert "Probability" in body
    assert "/image/" in body
    assert "Prompt:" in body
    assert 'id="help"' in body
    assert "js/annotate.js" in body
    blind = sample_draw(run=run, classes=1, per_class=2, seed=1, blind=True)
    body = client_for("ann").get(f"/samples/{blind.pk}/annotate/").content.decode()
    assert "Probability" not in body
    assert client_for("otto").get(f"/samples/{sample.pk}/annotate/").status_code == 404
    assert Client().get(f"/samples/{sample.pk}/annotate/").status_code == 302


def test_fragments(run, ann) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1, overlap=0)
    client = client_for("ann")
    first = client.get(f"/samples/{sample.pk}/annotate/item/")
    assert first.status_code == 200
    assert b'class="ann-item"' in first.content
    held = [int(x) for x in sample.items.values_list("pk", flat=True)]
    none = client.get(f"/samples/{sample.pk}/annotate/item/?exclude={held[0]},{held[1]}")
    assert none.status_code == 204
    labels = client.get(f"/samples/{sample.pk}/annotate/labels/?q=label 1")
    assert labels.content.decode().count('class="label-pick"') == 5  # label10..label14
    assert b"/o/" not in labels.content
    progress = client.get(f"/samples/{sample.pk}/annotate/progress/")
    assert b"Mine:" in progress.content


def test_run_sample_form(run, lee, ann) -> None:
    url = f"/runs/{run.pk}/samples/new/"
    form = {"classes": "2", "per_class": "4", "seed": "3", "redundancy": "1", "overlap": "0"}
    assert client_for("ann").post(url, form).status_code == 403
    assert not Sample.objects.exists()
    response = client_for("lee").post(url, form, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    sample = Sample.objects.get()
    html = response.content.decode()
    assert f"/samples/{sample.pk}/annotate/" in html
    assert 'id="sample-form"' in html
    assert sample.items.count() == 8
    assert sample.created_by.username == "lee"
    bad = client_for("lee").post(url, {**form, "classes": "x"}, HTTP_HX_REQUEST="true")
    assert "Please enter numbers" in bad.content.decode()
    plain = client_for("lee").post(url, form)
    assert plain.status_code == 302
    assert plain["Location"] == f"/runs/{run.pk}/"


def test_run_samples_card_renders_for_members(run, lee, ann, django_assert_max_num_queries):
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1)
    for user, has_form in ((lee, True), (ann, False)):
        client = client_for(user.username)
        with django_assert_max_num_queries(20):
            page = client.get(f"/runs/{run.pk}/").content.decode()
        assert 'id="run-samples"' in page
        assert f"/samples/{sample.pk}/annotate/" in page
        assert ('id="sample-form"' in page) is has_form


def settle(page) -> None:
    """Wait until the page has no request in flight (a late preload must not meet the test
    database's flush at teardown)."""
    page.wait_for_function(
        "() => document.getElementById('annotate').dataset.inflight === '0'"
        " && !document.querySelector('.htmx-request')"
    )


def current_item(page) -> int:
    return int(page.locator("#stage .ann-item").get_attribute("data-item"))


def wait_item(page, op: str, item: int) -> None:
    page.wait_for_function(
        f"() => document.querySelector('#stage .ann-item')?.dataset.item {op} {item}"
    )


def press_and_wait(page, key: str) -> None:
    """Press a verdict key and wait until the next item is on screen."""
    before = current_item(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "b => { const el = document.querySelector('#stage .ann-item');"
        " return !el || Number(el.dataset.item) !== b; }",
        arg=before,
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_annotator_works_ten_items_with_the_keys(live_server, run, lee, ann, page) -> None:
    sample = sample_draw(run=run, classes=2, per_class=10, seed=8, overlap=0)
    login(page, live_server, "ann")
    page.goto(f"{live_server.url}/samples/{sample.pk}/annotate/")
    expected: dict[int, tuple[str, str]] = {}

    # The next item's image is requested while the first one is on screen (preloaded).
    images = "performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/image/'))"  # noqa: E501
    page.wait_for_function(f"() => new Set({images}).size >= 2")
    preloaded = set(page.evaluate(images))
    first_image = page.locator("#stage .ann-item").get_attribute("data-image")

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()

    for key, value in (("h", "hit"), ("ArrowRight", "hit"), ("m", "miss"),
                       ("ArrowLeft", "miss"), ("s", "skip")):  # fmt: skip
        expected[current_item(page)] = (value, "")
        press_and_wait(page, key)
        if len(expected) == 1:
            shown = page.locator("#stage .ann-item").get_attribute("data-image")
            assert shown != first_image
            assert any(url.endswith(shown) for url in preloaded)
    skipped = list(expected)[-1]
    # Undo the skip: the skipped item comes back, judged again as a hit.
    page.keyboard.press("u")
    wait_item(page, "==", skipped)
    expected[skipped] = ("hit", "")
    press_and_wait(page, "h")
    # A miss with the first suggested label (key 1).
    suggestion = page.locator("#stage .ann-suggest .label-pick").first.get_attribute("data-label")
    expected[current_item(page)] = ("miss", suggestion)
    press_and_wait(page, "1")
    # A miss with a label found by the type-ahead search, then undone with Backspace.
    searched = current_item(page)
    page.keyboard.press("/")
    page.keyboard.type("label 14")
    page.locator("#label-results .label-pick").first.wait_for()
    press_and_wait(page, "Enter")
    page.keyboard.press("Backspace")
    wait_item(page, "==", searched)
    assert Verdict.objects.filter(sample_item_id=searched).count() == 0
    page.keyboard.press("/")
    page.keyboard.type("label 14")
    page.locator("#label-results .label-pick").first.wait_for()
    expected[searched] = ("miss", "/l/label14")
    press_and_wait(page, "Enter")
    # A failed save (network down) keeps the verdict and retries until it is saved.
    failures = {"left": 1}

    def flaky(route) -> None:
        if failures["left"]:
            failures["left"] -= 1
            route.abort()
        else:
            route.continue_()

    page.route("**/api/verdicts/", flaky)
    expected[current_item(page)] = ("hit", "")
    press_and_wait(page, "h")
    assert failures["left"] == 0
    page.unroute("**/api/verdicts/")
    # Mouse buttons do the same as keys.
    expected[current_item(page)] = ("miss", "")
    before = current_item(page)
    page.click("#btn-miss")
    wait_item(page, "!=", before)
    expected[current_item(page)] = ("hit", "")
    press_and_wait(page, "h")
    assert len(expected) == 10

    page.wait_for_function("() => document.getElementById('mine-count')?.textContent == '10'")
    rows = api_for(lee).get(f"/api/samples/{sample.pk}/verdicts/?format=json").json()
    got = {r["sample_item"]: (r["value"], r["corrected_label"] or "") for r in rows}  # null: none
    assert got == expected
    assert all(r["annotator"] == "ann" and r["duration_ms"] is not None for r in rows)
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_phone_sized_screen(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=1, per_class=3, seed=2, overlap=0)
    page.set_viewport_size({"width": 375, "height": 700})
    login(page, live_server, "ann")
    page.goto(f"{live_server.url}/samples/{sample.pk}/annotate/")
    for button in ("#btn-hit", "#btn-miss", "#btn-skip"):
        box = page.locator(button).bounding_box()
        assert box
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375
        assert box["y"] >= 0
        assert box["y"] + box["height"] <= 700
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    before = current_item(page)
    page.click("#btn-hit")
    wait_item(page, "!=", before)
    assert Verdict.objects.get().value == "hit"
    settle(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_expired_session_keeps_the_verdict_until_saved(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=1, per_class=3, seed=4, overlap=0)
    login(page, live_server, "ann")
    page.goto(f"{live_server.url}/samples/{sample.pk}/annotate/")
    item = current_item(page)
    page.context.clear_cookies()  # the session expires
    page.keyboard.press("m")
    page.wait_for_function(
        "() => document.getElementById('save-status').textContent.includes('session expired')"
    )
    assert current_item(page) == item
    assert not Verdict.objects.exists()
    # The annotator logs in again (a new session and a new CSRF cookie, as after logging in
    # in another tab); the page picks the new cookie up on its next retry.
    from django.middleware.csrf import _get_new_csrf_string

    fresh = client_for("ann")
    page.context.add_cookies([
        {"name": "sessionid", "value": fresh.cookies["sessionid"].value, "url": live_server.url},
        {"name": "csrftoken", "value": _get_new_csrf_string(), "url": live_server.url},
    ])  # fmt: skip
    wait_item(page, "!=", item)  # the kept verdict was retried and saved
    assert Verdict.objects.get().sample_item_id == item
    assert Verdict.objects.get().value == "miss"
    settle(page)
