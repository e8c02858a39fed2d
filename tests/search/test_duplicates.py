"""Near-duplicates through `GET|POST /api/runs/{id}/duplicates/` and a real worker of the
`search` queue: a folder with five byte-identical copies of one photo among distinct images,
imported with `import_dataset` and classified with `classify --sync` (a tiny random
checkpoint), comes back as exactly one group of those five items. Roles, bad thresholds, runs
without embeddings."""

import io
import json
import time
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image, ImageDraw

from annotate.datasets.models import Dataset, Item, Membership, Role
from classifier.models import ClassificationRun, DuplicateScan
from tests.classifier.conftest import LABELS, make_taxonomy, tiny_checkpoint  # noqa: F401
from tests.conftest import make_user
from tests.validation.conftest import api_for

pytestmark = [pytest.mark.torch, pytest.mark.worker]

# The tiny checkpoint is random: it maps every image near every other (measured cosines between
# these distinct images: 0.89 to 0.99), so at the default 0.97 everything would be one group.
# Identical files embed identically (cosine 1), so a threshold above 0.99 tells them apart
# here; a real CLIP model separates distinct photos far more.
THRESHOLD = "0.995"


def distinct_images() -> list[bytes]:
    """Images unlike each other: colours, stripes, shapes, noise."""
    out = []
    rng = np.random.default_rng(7)
    for n in range(8):
        image = Image.new("RGB", (96, 72), tuple(int(c) for c in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(image)
        for k in range(n + 1):
            box = [int(v) for v in rng.integers(0, 72, 4)]
            box = [min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]) + 8,
                   max(box[1], box[3]) + 8]  # fmt: skip
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            (draw.ellipse if k % 2 else draw.rectangle)(box, fill=colour)
        if n % 3 == 0:
            noise = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
            image = Image.blend(image, Image.fromarray(noise), 0.5)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def run_command(*args: str) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def copies_run(settings, tiny_checkpoint):  # noqa: F811
    """A dataset of 7 distinct images and 5 byte-identical copies of an eighth, classified."""
    return make_copies_run(settings, tiny_checkpoint)


def make_copies_run(settings, checkpoint: Path) -> tuple[ClassificationRun, object]:
    folder = Path(settings.SIEVE_IMAGE_ROOTS[0]) / "reposts"
    folder.mkdir()
    images = distinct_images()
    for n, data in enumerate(images[:-1]):
        (folder / f"distinct{n}.jpg").write_bytes(data)
    for n in range(5):
        (folder / f"repost{n}.jpg").write_bytes(images[-1])
    run_command("import_dataset", "reposts", str(folder))
    taxonomy = make_taxonomy("places-mini", LABELS)
    summary = run_command(
        "classify", "reposts", "--taxonomy", taxonomy.name, "--model", "sieve-tiny",
        "--weights", str(checkpoint), "--sync",
    )  # fmt: skip
    assert summary["status"] == "succeeded", summary
    run = ClassificationRun.objects.get(pk=summary["run"])
    lead = make_user("lead")
    Membership.objects.create(dataset=run.dataset, user=lead, role=Role.LEAD)
    return run, lead


def url(run_id: int, threshold: str | None = None) -> str:
    query = f"?min_similarity={threshold}" if threshold is not None else ""
    return f"/api/runs/{run_id}/duplicates/{query}"


def poll(client, run_id: int, threshold: str | None = None, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url(run_id, threshold))
        assert response.status_code in (200, 202), response.content
        body = response.json()
        if body["status"] in ("succeeded", "failed"):
            assert response.status_code == 200
            return body
        assert response.status_code == 202
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_five_identical_copies_are_one_group(copies_run, start_worker) -> None:
    run, lead = copies_run
    client = api_for(lead)
    first = client.get(url(run.pk, THRESHOLD))  # no scan yet: one is queued
    assert first.status_code == 202, first.content
    body = first.json()
    assert body["status"] == "queued"
    assert body["groups"] == []
    assert body["min_similarity"] == float(THRESHOLD)
    assert set(body) >= {"done", "total", "scanned", "exact", "created", "scan"}
    start_worker("search")
    body = poll(client, run.pk, THRESHOLD)
    assert body["status"] == "succeeded", body
    reposts = set(
        Item.objects.filter(dataset=run.dataset, external_id__startswith="repost").values_list(
            "id", flat=True
        )
    )
    assert len(reposts) == 5
    assert len(body["groups"]) == 1, body["groups"]
    group = body["groups"][0]
    assert set(group["items"]) == reposts
    assert group["size"] == 5
    assert group["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert body["exact"] is True
    assert body["total"] == body["done"] == body["scanned"] == 12
    assert body["error"] is None
    # Each item's nearest other item: the five copies have theirs at 1.0, no other item above
    # the threshold.
    assert body["nearest"]["linked_share"] == pytest.approx(5 / 12, abs=1e-3)
    assert body["nearest"]["median"] <= body["nearest"]["p90"] <= body["nearest"]["p99"]
    # The same threshold again: the stored scan, no new one.
    again = client.get(url(run.pk, THRESHOLD + "0"))
    assert again.status_code == 200
    assert again.json()["scan"] == body["scan"]
    # A rescan, by POST: a new scan, the same answer.
    posted = client.post(url(run.pk), {"min_similarity": float(THRESHOLD)}, format="json")
    assert posted.status_code == 202, posted.content
    assert posted.json()["scan"] != body["scan"]
    rescan = poll(client, run.pk, THRESHOLD)
    assert rescan["scan"] == posted.json()["scan"]
    assert [set(g["items"]) for g in rescan["groups"]] == [reposts]
    # The default threshold (0.97) links this random model's distinct images too.
    default = poll(client, run.pk)
    assert default["min_similarity"] == 0.97
    assert reposts <= set(default["groups"][0]["items"])
    assert DuplicateScan.objects.filter(run=run).count() == 3


@pytest.mark.django_db(transaction=True)
def test_roles_thresholds_and_runs_without_embeddings(copies_run) -> None:
    run, lead = copies_run
    annotator = make_user("ann")
    Membership.objects.create(dataset=run.dataset, user=annotator, role=Role.ANNOTATOR)
    outsider = make_user("out")
    other = Dataset.objects.create(name="other", image_root=str(run.dataset.image_root))
    Membership.objects.create(dataset=other, user=outsider, role=Role.LEAD)
    assert api_for(annotator).get(url(run.pk)).status_code == 403
    assert api_for(outsider).get(url(run.pk)).status_code == 404
    assert api_for(outsider).post(url(run.pk)).status_code == 404
    assert api_for(lead).get(url(999999)).status_code == 404
    client = api_for(lead)
    for bad in ("0.4", "1.5", "abc", "nan", "inf", "-1", "0.97x", "%00"):
        response = client.get(url(run.pk, bad))
        assert response.status_code == 400, (bad, response.content)
        assert "min_similarity" in response.json()
    assert client.post(url(run.pk), {"min_similarity": "2"}, format="json").status_code == 400
    # A body that is not a number from 0.5 to 1 is refused, even beside a good query string.
    for body in (-0.5, "0.9", None, True, [0.9]):
        response = client.post(url(run.pk, "0.97"), {"min_similarity": body}, format="json")
        assert response.status_code == 400, (body, response.content)
    for body in ([None, None], [], "0.9"):  # not an object
        response = client.post(url(run.pk, "0.97"), body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert not DuplicateScan.objects.exists()  # nothing queued by refused requests
    # A run of imported predictions has no embeddings: 409, nothing queued.
    run.source = ClassificationRun.Source.IMPORT
    run.save(update_fields=["source"])
    response = client.get(url(run.pk))
    assert response.status_code == 409, response.content
    assert not DuplicateScan.objects.exists()
