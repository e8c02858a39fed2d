"""Annotators see the prompts the model used: the annotation item's `prompt`/`prompts` and the
worker's encoded prompts come from one function, `classifier.prompts.label_prompts`."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.datasets.models import Item
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.sampling import sample_draw
from classifier.models import ClassificationRun, Prediction
from classifier.prompts import label_prompts, run_label_prompts
from tests.classifier.conftest import add_items

pytestmark = pytest.mark.django_db

KEYS = {"/a/auditorium": "auditorium", "/c/church/outdoor": "church outdoor", "/b/beach": "beach"}


@pytest.fixture
def scenes(db) -> Taxonomy:
    taxonomy = Taxonomy.objects.create(name="scenes")
    for position, (key, name) in enumerate(KEYS.items()):
        Label.objects.create(taxonomy=taxonomy, key=key, name=name, position=position)
    return taxonomy


def shown_prompts(run: ClassificationRun, user) -> dict[str, tuple[str, list[str]]]:
    """label key -> (prompt, prompts) as the annotation page gets them, for every item."""
    sample = sample_draw(run=run, classes=3, per_class=2, seed=1, overlap=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    shown, seen = {}, []
    while True:
        url = f"/api/samples/{sample.pk}/next/"
        if seen:
            url += "?exclude=" + ",".join(map(str, seen))
        response = client.get(url)
        assert response.status_code in (200, 204), response.content
        if response.status_code == 204:
            return shown
        body = response.json()
        seen.append(body["id"])
        shown[body["label"]["key"]] = (body["prompt"], body["prompts"])


def finished_run(dataset, taxonomy, templates: list[str]) -> ClassificationRun:
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, status="succeeded", templates=templates
    )
    items = Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{n}-{run.pk}", image_path="") for n in range(6)
    )
    labels = list(taxonomy.labels.order_by("position"))
    Prediction.objects.bulk_create(
        Prediction(run=run, item=item, label=labels[n % 3], probability=0.5, top5=[])
        for n, item in enumerate(items)
    )
    return run


def test_annotators_see_the_taxonomy_prompts(dataset, scenes, ann) -> None:
    run = finished_run(dataset, scenes, templates=[])
    assert shown_prompts(run, ann) == {
        "/a/auditorium": ("A photo of an auditorium.", ["A photo of an auditorium."]),
        "/c/church/outdoor": (
            "A photo of the outdoor of a church.",
            ["A photo of the outdoor of a church."],
        ),
        "/b/beach": ("A photo of a beach.", ["A photo of a beach."]),
    }


def test_annotators_see_the_runs_templates(dataset, scenes, ann) -> None:
    templates = ["A blurry photo of a {}.", "art of the {}."]
    run = finished_run(dataset, scenes, templates=templates)
    shown = shown_prompts(run, ann)
    assert shown["/a/auditorium"] == (
        "A blurry photo of a auditorium.",  # a run's own template is used as written
        ["A blurry photo of a auditorium.", "art of the auditorium."],
    )
    # A key with the outdoor qualifier keeps the study's outdoor form.
    assert shown["/c/church/outdoor"][1] == ["A photo of the outdoor of a church."]
    ids, prompts = run_label_prompts(run)
    for label_id, label_prompts_ in zip(ids, prompts, strict=True):
        label = Label.objects.get(pk=label_id)
        assert shown[label.key][1] == label_prompts_ == label_prompts(run, label)


@pytest.mark.torch
def test_the_worker_encodes_the_same_prompts(dataset, scenes, tiny_checkpoint, monkeypatch):
    from classifier import engine
    from classifier.services import run_create
    from classifier.tasks import chunk_process

    add_items(dataset, 2)
    encoded = []
    encode_texts = engine.encode_texts

    def recording(loaded, texts, **kw):
        encoded.append(texts)
        return encode_texts(loaded, texts, **kw)

    monkeypatch.setattr(engine, "encode_texts", recording)
    run = run_create(
        dataset=dataset, taxonomy=scenes, model="sieve-tiny", weights=str(tiny_checkpoint),
        templates=["A sketch of a {}."], send=False,
    )  # fmt: skip
    chunk_process(chunk_id=run.chunks.get().pk)
    labels = scenes.labels.order_by("position")
    assert encoded[0] == [label_prompts(run, label) for label in labels]
    assert encoded[0] == [
        ["A sketch of a auditorium."],
        ["A photo of the outdoor of a church."],
        ["A sketch of a beach."],
    ]
