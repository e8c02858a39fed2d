"""Classifier fixtures: a tiny random open_clip checkpoint, small generated images, taxonomies."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy
from tests.conftest import session_models

LABELS = ["bakery shop", "beach", "forest path", "kitchen", "street"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """In the session's checkpoint folder, one of SIEVE_MODEL_ROOTS in every test."""
    from classifier.engine import write_random_checkpoint

    return write_random_checkpoint(session_models(tmp_path_factory) / "sieve-tiny.pt")


def make_taxonomy(name: str, labels: list[str]) -> Taxonomy:
    taxonomy = Taxonomy.objects.create(name=name)
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=f"/{n[0]}/{n.replace(' ', '_')}", name=n, position=i)
        for i, n in enumerate(labels)
    )
    return taxonomy


@pytest.fixture
def taxonomy(db) -> Taxonomy:
    return make_taxonomy("places-mini", LABELS)


def jpeg_bytes(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def add_items(dataset: Dataset, count: int, *, start: int = 0, caption: str = "a photo") -> list:
    """`count` readable JPEG items named img00000.jpg... with captions."""
    folder = Path(dataset.image_root)
    items = []
    for n in range(start, start + count):
        name = f"img{n:05d}.jpg"
        (folder / name).write_bytes(jpeg_bytes(n))
        items.append(Item(dataset=dataset, external_id=name, image_path=name, caption=caption))
    return Item.objects.bulk_create(items)


def add_file_item(dataset: Dataset, name: str, data: bytes | None, caption: str = "") -> Item:
    if data is not None:
        (Path(dataset.image_root) / name).write_bytes(data)
    return Item.objects.create(dataset=dataset, external_id=name, image_path=name, caption=caption)


@pytest.fixture(autouse=True)
def _small_chunks(settings) -> None:
    settings.SIEVE_CHUNK_SIZE = 8
    settings.SIEVE_BATCH_SIZE = 4
    settings.SIEVE_DECODE_WORKERS = 1
