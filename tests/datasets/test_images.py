"""Image and thumbnail serving: members only, never outside the dataset root."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from annotate.datasets.importers import dataset_import
from annotate.datasets.models import Dataset, Item
from tests.conftest import PASSWORD, ROOT, child_env
from tests.datasets.conftest import write_jpeg, write_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann_client(ann) -> Client:
    client = Client()
    client.login(username="ann", password=PASSWORD)
    return client


def body(response) -> bytes:
    """The response's bytes. Reading a streaming response to its end closes it (and the image
    file a FileResponse holds open); the test client does that with the DB signals in place."""
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def imported(dataset: Dataset) -> dict[str, Item]:
    root = Path(dataset.image_root)
    write_jpeg(root / "red.jpg", size=(40, 20))
    write_png(root / "sub" / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    write_jpeg(root / "rotated.jpg", size=(60, 20), exif=exif)
    Image.new("RGB", (30, 30), (1, 2, 3)).save(root / "tiff.tif")
    dataset_import(name="demo", folder=root)
    return {i.external_id: i for i in Item.objects.filter(dataset=dataset)}


def test_member_gets_original_bytes_with_type_and_nosniff(imported, ann_client, dataset) -> None:
    item = imported["red.jpg"]
    response = ann_client.get(f"/items/{item.pk}/image/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert body(response) == (Path(dataset.image_root) / "red.jpg").read_bytes()
    png = ann_client.get(f"/items/{imported['sub/alpha.png'].pk}/image/")
    assert png["Content-Type"] == "image/png"
    assert body(png).startswith(b"\x89PNG")
    tiff = ann_client.get(f"/items/{imported['tiff.tif'].pk}/image/")
    assert tiff["Content-Type"] == "image/png"  # re-encoded: browsers do not show TIFF
    assert Image.open(io.BytesIO(body(tiff))).format == "PNG"


def test_thumbnails_are_rgb_jpeg_exif_rotated_and_cached(imported, ann_client, settings) -> None:
    rotated = imported["rotated.jpg"]
    response = ann_client.get(f"/items/{rotated.pk}/thumbnail/?size=128")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    thumb = Image.open(io.BytesIO(body(response)))
    assert thumb.format == "JPEG"
    assert thumb.mode == "RGB"
    assert thumb.size == (20, 60)  # transposed by its EXIF orientation
    cached = Path(settings.MEDIA_ROOT) / "thumbs" / str(rotated.dataset_id) / "128"
    assert (cached / f"{rotated.pk}.jpg").exists()
    alpha = ann_client.get(f"/items/{imported['sub/alpha.png'].pk}/thumbnail/")
    assert Image.open(io.BytesIO(body(alpha))).mode == "RGB"
    assert ann_client.get(f"/items/{rotated.pk}/thumbnail/?size=9999").status_code == 400
    assert ann_client.get(f"/items/{rotated.pk}/thumbnail/?size=abc").status_code == 400


def test_non_members_and_anonymous_get_nothing(imported, otto) -> None:
    item = imported["red.jpg"]
    outsider = Client()
    outsider.login(username="otto", password=PASSWORD)
    assert outsider.get(f"/items/{item.pk}/image/").status_code == 404
    assert outsider.get(f"/items/{item.pk}/thumbnail/").status_code == 404
    assert outsider.get("/items/999999/image/").status_code == 404
    assert Client().get(f"/items/{item.pk}/image/").status_code == 302


def test_unreadable_items_have_no_image(dataset, ann_client) -> None:
    root = Path(dataset.image_root)
    (root / "page.jpg").write_text("<html><script>alert(1)</script></html>")
    dataset_import(name="demo", folder=root)
    item = Item.objects.get(external_id="page.jpg")
    assert ann_client.get(f"/items/{item.pk}/image/").status_code == 404
    assert ann_client.get(f"/items/{item.pk}/thumbnail/").status_code == 404


@pytest.mark.parametrize(
    "image_path",
    [
        "../secret.jpg",
        "sub/../../secret.jpg",
        "%2e%2e/secret.jpg",
        "..%2fsecret.jpg",
        "ABSOLUTE",
        "link.jpg",
        "dirlink/secret.jpg",
        "../../outside/secret.jpg",
    ],
)
def test_path_traversal_never_reads_outside_the_root(
    dataset, ann_client, image_root: Path, tmp_path: Path, image_path: str
) -> None:
    """Whatever lands in image_path (a tampered row, a symlink), nothing outside is served."""
    secret = write_jpeg(image_root / "secret.jpg")  # inside the roots, outside the dataset
    outside = write_jpeg(tmp_path / "outside" / "secret.jpg")  # outside every root
    root = Path(dataset.image_root)
    (root / "link.jpg").symlink_to(outside)
    (root / "dirlink").symlink_to(image_root, target_is_directory=True)
    if image_path == "ABSOLUTE":
        image_path = str(secret)
    item = Item.objects.create(
        dataset=dataset, external_id=image_path, image_path=image_path, status="ok",
        image_format="JPEG",
    )  # fmt: skip
    for url in (f"/items/{item.pk}/image/", f"/items/{item.pk}/thumbnail/"):
        response = ann_client.get(url)
        assert response.status_code == 404, url
        assert body(response) != secret.read_bytes()


def test_dataset_root_outside_the_image_roots_serves_nothing(
    dataset, ann_client, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write_jpeg(elsewhere / "a.jpg")
    Dataset.objects.filter(pk=dataset.pk).update(image_root=str(elsewhere))
    item = Item.objects.create(dataset=dataset, external_id="a.jpg", image_path="a.jpg")
    assert ann_client.get(f"/items/{item.pk}/image/").status_code == 404


def test_encoded_traversal_in_the_url_does_not_route(ann_client) -> None:
    for url in ("/items/..%2f..%2fetc%2fpasswd/image/", "/items/%2e%2e/image/"):
        assert ann_client.get(url).status_code == 404


def test_image_broken_after_import_answers_404(imported, ann_client, dataset) -> None:
    item = imported["red.jpg"]
    (Path(dataset.image_root) / "red.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert ann_client.get(f"/items/{item.pk}/thumbnail/?size=256").status_code == 404
    (Path(dataset.image_root) / "tiff.tif").write_bytes(b"II*\x00 broken tiff")
    assert ann_client.get(f"/items/{imported['tiff.tif'].pk}/image/").status_code == 404


def test_undecodable_file_name_is_served(dataset, ann_client) -> None:
    """An item whose file name is not UTF-8 (stored with \\xNN escapes) is readable through
    the image views."""
    root = Path(dataset.image_root)
    write_jpeg(root / "plain.jpg", size=(40, 20))
    data = (root / "plain.jpg").read_bytes()
    with open(os.fsencode(root) + b"/latin1-\xff\xe9-name.jpg", "wb") as fh:
        fh.write(data)
    dataset_import(name="demo", folder=root)
    item = Item.objects.get(external_id="latin1-\\xff\\xe9-name.jpg")
    response = ann_client.get(f"/items/{item.pk}/image/")
    assert response.status_code == 200
    assert body(response) == data
    thumb = ann_client.get(f"/items/{item.pk}/thumbnail/?size=128")
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(body(thumb))).size == (40, 20)  # never enlarged


THUMBNAIL_PEAK = """
import os, resource, sys
import django
django.setup()
from pathlib import Path
from PIL import Image
from annotate.datasets.images import thumbnail_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
thumb = thumbnail_image(Path(sys.argv[1]), 256)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(thumb.size, thumb.mode, (after - before) // 1024)
"""


@pytest.mark.parametrize(("fmt", "budget_mib"), [("PNG", 200), ("JPEG", 40)])
def test_thumbnail_of_a_large_image_stays_small_in_memory(
    tmp_path: Path, fmt: str, budget_mib: int
) -> None:
    """A 6000x6000 RGB image is 137 MiB decoded (Pillow keeps 4 bytes a pixel). A PNG cannot
    decode at a reduced size, so it costs that once (not three full-size copies: 412 MiB); a
    JPEG decodes at 1/8 the scale."""
    path = tmp_path / f"large.{fmt.lower()}"
    Image.new("RGB", (6000, 6000), (10, 120, 200)).save(path, fmt)
    out = subprocess.run(
        [sys.executable, "-c", THUMBNAIL_PEAK, str(path)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    size, rest = out.stdout.split(")")
    mode, peak_mib = rest.split()
    assert size == "(256, 256"
    assert mode == "RGB"
    assert int(peak_mib) < budget_mib, f"{fmt} thumbnail added {peak_mib} MiB"
