"""Near-duplicates on the demo dataset with the trained demo model
(docs/architecture.md#near-duplicates): five byte-identical copies of one drawing come back as
one group, and at the default threshold the scan says that the demo model crowds distinct
drawings together. The scan runs in this process through the worker's own function (the
round trip through a real search worker is in test_duplicates.py)."""

import io
import json
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from annotate.datasets.models import Item
from annotate.validation.duplicates import duplicate_scan_start
from classifier.models import ClassificationRun
from classifier.search_jobs import duplicate_scan_run
from tests.validation.conftest import api_for

pytestmark = pytest.mark.django_db

# The demo model's closest distinct drawings reach about 0.9996; identical files give 1.0.
IDENTICAL = 0.9999


@pytest.fixture
def reposted(demo_storage):
    """Four byte-identical copies of one demo drawing added to the demo dataset, and a run of
    the demo model over all 504 items (the 500 come from the embedding cache)."""
    demo = demo_storage
    original = Item.objects.filter(dataset=demo.dataset).order_by("id").first()
    root = Path(demo.dataset.image_root)
    (root / "reposts").mkdir(exist_ok=True)
    copies = []
    for n in range(1, 5):
        relative = f"reposts/copy-{n}.jpg"
        shutil.copyfile(root / original.image_path, root / relative)
        copy = Item.objects.create(
            dataset=demo.dataset, external_id=relative, image_path=relative,
            caption=original.caption, width=original.width, height=original.height,
            image_format=original.image_format, metadata=original.metadata,
        )  # fmt: skip
        copies.append(copy)
    out = io.StringIO()
    call_command(
        "classify", "demo", "--taxonomy", "places365", "--model", demo.run.model,
        "--weights", demo.run.weights, "--sync", "--json", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    run = ClassificationRun.objects.get(pk=json.loads(out.getvalue())["run"])
    assert run.status == ClassificationRun.Status.SUCCEEDED
    assert run.item_count == 504
    return run, {original.pk, *(item.pk for item in copies)}


def scan(run, threshold: float) -> dict:
    lead = User.objects.get(username="lead")
    made = duplicate_scan_start(run=run, min_similarity=threshold, user=lead)
    assert duplicate_scan_run(scan_id=made.pk) == "succeeded"
    response = api_for(lead).get(f"/api/runs/{run.pk}/duplicates/?min_similarity={threshold}")
    assert response.status_code == 200, response.content
    return response.json()


def test_five_identical_demo_drawings_are_one_group(reposted) -> None:
    run, identical = reposted
    body = scan(run, IDENTICAL)
    assert [set(group["items"]) for group in body["groups"]] == [identical]
    assert body["groups"][0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert body["nearest"]["linked_share"] == pytest.approx(5 / 504, abs=1e-4)


def test_the_default_threshold_says_the_demo_model_crowds_drawings(reposted, client) -> None:
    run, identical = reposted
    body = scan(run, 0.97)
    assert body["nearest"]["linked_share"] > 0.1  # most drawings have a look-alike ≥ 0.97
    assert any(identical <= set(group["items"]) for group in body["groups"])
    client.force_login(User.objects.get(username="lead"))
    page = client.get(f"/runs/{run.pk}/duplicates/?min_similarity=0.97").content.decode()
    assert 'id="duplicates-crowded"' in page
    assert "probably not reposts" in page
