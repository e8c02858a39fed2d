"""The search page `/runs/{id}/search/` through a real worker of the `search` queue, on the
demo: a text query, "more like this", the links from the explorer and the item page, errors
as messages; then in Chromium at a phone's width."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label
from classifier.prompts import label_prompts
from tests.conftest import WorkerProcess

# Not transactional (the module's demo is committed and a flush would empty it), except the
# browser test, last in the module (its live server flushes the database after it).
pytestmark = pytest.mark.django_db

LEAD_PASSWORD = "sieve-lead-demo"


@pytest.fixture(scope="module")
def search_worker(demo, django_db_blocker):
    with override_settings(**demo.storage), django_db_blocker.unblock():
        worker = WorkerProcess("search", 1, "search-page-test")
    worker.wait_ready()
    yield worker
    worker.kill()


def lead_client(client):
    client.force_login(User.objects.get(username="lead"))
    return client


def scene_prompt(demo) -> tuple[str, str]:
    scene = Item.objects.filter(dataset=demo.dataset).first().metadata["scene"]
    label = Label.objects.get(taxonomy=demo.run.taxonomy, key=scene)
    return scene, label_prompts(demo.run, label)[0]


def test_text_query(demo_storage, search_worker, client) -> None:
    demo = demo_storage
    _, prompt = scene_prompt(demo)
    response = lead_client(client).get(f"/runs/{demo.run.pk}/search/", {"q": prompt, "k": 12})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="explorer-card search-hit"') == 12
    assert body.count('class="more-like"') == 12
    assert "score <strong>" in body
    assert f'value="{prompt}"' in body


def test_more_like_this(demo_storage, search_worker, client) -> None:
    demo = demo_storage
    item = Item.objects.filter(dataset=demo.dataset, status="ok").order_by("-id").first()
    response = lead_client(client).get(f"/runs/{demo.run.pk}/search/", {"item": item.pk})
    assert response.status_code == 200
    hits = response.context["answer"].hits
    assert len(hits) == 50
    assert hits[0].item == item.pk
    assert f'More like <a href="/items/{item.pk}/?run={demo.run.pk}">' in (
        response.content.decode()
    )


def test_captions_are_escaped(demo_storage, search_worker, client) -> None:
    demo = demo_storage
    item = Item.objects.filter(dataset=demo.dataset, status="ok").order_by("id")[5]
    Item.objects.filter(pk=item.pk).update(caption='<script>alert("x")</script> & more')
    response = lead_client(client).get(f"/runs/{demo.run.pk}/search/", {"item": item.pk})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in body


def test_links_to_search(demo_storage, client) -> None:
    demo = demo_storage
    lead_client(client)
    explorer = client.get(f"/runs/{demo.run.pk}/items/?limit=5").content.decode()
    assert f'href="/runs/{demo.run.pk}/search/"' in explorer
    assert explorer.count(f'href="/runs/{demo.run.pk}/search/?item=') == 5
    item = Item.objects.filter(dataset=demo.dataset, status="ok").first()
    detail = client.get(f"/items/{item.pk}/").content.decode()
    assert f'href="/runs/{demo.run.pk}/search/?item={item.pk}"' in detail


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"q": "beach", "k": "abc"}, 400, "k must be a whole number"),
        ({"q": "beach", "k": "0"}, 400, "k must be a whole number"),
        ({"q": "beach", "k": "²"}, 400, "k must be a whole number"),
        ({"item": "x"}, 400, "item must be an item id"),
        ({"q": "   "}, 400, "Type something"),
        ({"q": "x" * 1001}, 400, "longer than 1000"),
        ({"q": "a\x00b"}, 400, "NUL"),
    ],
)
def test_bad_input_is_a_message(demo_storage, client, query, status, message) -> None:
    response = lead_client(client).get(f"/runs/{demo_storage.run.pk}/search/", query)
    assert response.status_code == status
    assert message in response.content.decode()


def test_item_of_another_dataset_and_roles(demo_storage, client, tmp_path) -> None:
    demo = demo_storage
    other = Dataset.objects.create(name="elsewhere", image_root=str(tmp_path))
    item = Item.objects.create(dataset=other, external_id="x.jpg", image_path="x.jpg")
    response = lead_client(client).get(f"/runs/{demo.run.pk}/search/", {"item": item.pk})
    assert response.status_code == 404
    assert "No such item in this run" in response.content.decode()
    client.force_login(User.objects.get(username="annotator1"))
    assert client.get(f"/runs/{demo.run.pk}/search/").status_code == 403
    assert client.get("/runs/999999999/search/").status_code == 404


def test_empty_page_is_just_the_form(demo_storage, client) -> None:
    response = lead_client(client).get(f"/runs/{demo_storage.run.pk}/search/")
    assert response.status_code == 200
    assert 'id="search-text"' in response.content.decode()
    assert response.context["answer"] is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_search_in_chromium_at_phone_width(demo_storage, search_worker, live_server, browser):
    """Last in the module: the live server flushes the database after it."""
    demo = demo_storage
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", LEAD_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/runs/{demo.run.pk}/items/?limit=6")
    page.click("#explorer-search")
    page.wait_for_url(f"**/runs/{demo.run.pk}/search/")
    _, prompt = scene_prompt(demo)
    page.fill("#search-text", prompt)
    page.select_option("select[name=k]", "20")
    page.click("form.search-form button[type=submit]")
    page.wait_for_url(f"**/runs/{demo.run.pk}/search/?q=*")
    hits = page.locator(".search-hit")
    assert hits.count() == 20
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide at 390px"
    first = hits.first.get_attribute("data-item")
    page.locator(".more-like").first.click()
    page.wait_for_url(f"**/runs/{demo.run.pk}/search/?item={first}")
    assert hits.first.get_attribute("data-item") == first
    assert page.locator(".search-query h2").inner_text().startswith("More like")
    hits.nth(1).click()
    page.wait_for_url("**/items/*/?run=*")
    assert page.locator(".more-like-run").count() >= 1
    assert problems == []
    context.close()
