"""`POST /api/runs/{id}/search/` through a real worker of the `search` queue, on the demo
(trained demo model): a scene's prompt finds that scene's drawings, "more like this" finds
the item itself first; bad input, roles, runs without embeddings and a missing worker."""

from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label
from classifier.models import ClassificationRun
from classifier.prompts import label_prompts
from classifier.services import run_import_predictions
from tests.conftest import WorkerProcess, make_user
from tests.validation.conftest import api_for

# Not transactional: the module's demo is committed (the worker reads it) and a flush would
# empty it.
pytestmark = pytest.mark.django_db

# Measured on the demo (500 drawings, 10 scenes, trained demo model): the top 20 of a
# scene's prompt held 0.8 to 1.0 of that scene's drawings.
MIN_SCENE_SHARE = 0.6


@pytest.fixture(scope="module")
def search_worker(demo, django_db_blocker):
    """One real worker on the `search` queue for the module (it loads the cache and the model
    once, as in production)."""
    with override_settings(**demo.storage), django_db_blocker.unblock():
        worker = WorkerProcess("search", 1, "search-test")
    worker.wait_ready()
    yield worker
    worker.kill()


def url(run_id: int) -> str:
    return f"/api/runs/{run_id}/search/"


def lead_api():
    return api_for(User.objects.get(username="lead"))


def search(client, run_id, **body):
    return client.post(url(run_id), body, format="json")


def scenes(demo) -> Counter:
    return Counter(item.metadata.get("scene") for item in Item.objects.filter(dataset=demo.dataset))


def test_text_query_finds_the_scenes_drawings(demo_storage, search_worker) -> None:
    demo, client = demo_storage, lead_api()
    scene_of = dict(Item.objects.filter(dataset=demo.dataset).values_list("id", "metadata__scene"))
    shares = {}
    for scene, _count in scenes(demo).most_common(4):
        label = Label.objects.get(taxonomy=demo.run.taxonomy, key=scene)
        prompt = label_prompts(demo.run, label)[0]
        response = search(client, demo.run.pk, text=prompt, k=20)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) == 20
        assert body["exact"] is True
        assert body["items"] > 0
        assert body["took_ms"] >= body["search_ms"] >= 0
        hits = body["results"]
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        shares[scene] = sum(scene_of[h["item"]] == scene for h in hits) / len(hits)
        first = hits[0]
        assert first["thumbnail_url"].startswith("http")
        assert f"/items/{first['item']}/" in (first["item_url"])
        assert first["label"]
        assert first["label_name"]
        assert 0 <= first["probability"] <= 1
    print("share of the scene in the top 20:", shares)
    assert min(shares.values()) >= MIN_SCENE_SHARE, shares


def test_template_option_and_k(demo_storage, search_worker) -> None:
    client = lead_api()
    response = search(client, demo_storage.run.pk, text="beach", k=7, template=True)
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 7


def test_more_like_this_finds_the_item_first(demo_storage, search_worker) -> None:
    demo, client = demo_storage, lead_api()
    for item in Item.objects.filter(dataset=demo.dataset, status="ok").order_by("id")[:3]:
        response = search(client, demo.run.pk, item=item.pk, k=5)
        assert response.status_code == 200, response.content
        hits = response.json()["results"]
        assert len(hits) == 5
        assert hits[0]["item"] == item.pk
        assert hits[0]["score"] == pytest.approx(1, abs=1e-3)
        assert hits[0]["external_id"] == item.external_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": "a", "item": 1}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"text": 5}, "text"),
        ({"text": "a", "k": 0}, "k"),
        ({"text": "a", "k": 501}, "k"),
        ({"text": "a", "k": "5"}, "k"),
        ({"text": "a", "template": "yes"}, "template"),
        ({"item": "12"}, "item"),
        ({"item": 0}, "item"),
    ],
)
def test_bad_input_is_400(demo_storage, body, field) -> None:
    response = search(lead_api(), demo_storage.run.pk, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_roles(demo_storage) -> None:
    demo = demo_storage
    annotator = api_for(User.objects.get(username="annotator1"))
    response = search(annotator, demo.run.pk, text="beach")
    assert response.status_code == 403
    outsider = api_for(make_user("outsider"))
    assert search(outsider, demo.run.pk, text="beach").status_code == 404
    assert search(lead_api(), 10**12, text="beach").status_code == 404
    assert lead_api().get(url(demo.run.pk)).status_code == 405


def test_item_of_another_dataset_is_404(demo_storage, tmp_path) -> None:
    other = Dataset.objects.create(name="elsewhere", image_root=str(tmp_path))
    item = Item.objects.create(dataset=other, external_id="x.jpg", image_path="x.jpg")
    response = search(lead_api(), demo_storage.run.pk, item=item.pk)
    assert response.status_code == 404


def test_imported_run_is_refused(demo_storage) -> None:
    demo = demo_storage
    label = demo.run.taxonomy.labels.first()
    item = demo.dataset.items.first()
    run, _ = run_import_predictions(
        dataset=demo.dataset, taxonomy=demo.run.taxonomy,
        rows=[(item.external_id, label.key, "0.9")],
    )  # fmt: skip
    response = search(lead_api(), run.pk, text="beach")
    assert response.status_code == 409
    assert "imported" in response.json()["detail"]


def test_run_without_cache_is_refused_without_a_worker(demo_storage) -> None:
    demo = demo_storage
    run = ClassificationRun.objects.create(
        dataset=demo.dataset, taxonomy=demo.run.taxonomy, model="ViT-B-32", weights="openai",
        status="succeeded",
    )  # fmt: skip
    response = search(lead_api(), run.pk, item=demo.dataset.items.first().pk)
    assert response.status_code == 409
    assert "no embedding cache" in response.json()["detail"]


def test_no_worker_is_503(demo_storage, settings, search_worker) -> None:
    """Last in the module: it stops the module's worker."""
    search_worker.kill()
    settings.SIEVE_SEARCH_TIMEOUT = 1
    response = search(lead_api(), demo_storage.run.pk, text="beach")
    assert response.status_code == 503
    assert "start a worker on the `search` queue" in response.json()["detail"]
    client = Client()
    client.force_login(User.objects.get(username="lead"))
    page = client.get(f"/runs/{demo_storage.run.pk}/search/", {"q": "beach"})
    assert page.status_code == 503
    assert "start a worker on the `search` queue" in page.content.decode()
