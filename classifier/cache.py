"""The embedding cache: image and caption embeddings (float16) per (dataset, model, weights),
one `.npz` file per processed chunk under MEDIA_ROOT/embeddings/. A new run with the same
model re-scores from these files without decoding an image or touching the GPU.

numpy only (no torch, no ORM)."""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings


def weights_identity(weights: str) -> str:
    """A tag is its own identity; a checkpoint file adds its size and mtime, so a new file at
    the same path never reuses stale embeddings."""
    path = Path(weights) if weights else None
    if path is not None and path.is_file():
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    return weights


def cache_dir(*, dataset_id: int, model: str, weights: str) -> Path:
    key = f"{model}|{weights_identity(weights)}".encode()
    digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()[:16]  # a folder name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model)
    return Path(settings.MEDIA_ROOT) / "embeddings" / f"dataset-{dataset_id}" / f"{slug}-{digest}"


def cache_write(
    folder: Path,
    *,
    item_ids: np.ndarray,
    image: np.ndarray,
    caption: np.ndarray,
    has_caption: np.ndarray,
    failed_ids: np.ndarray,
    failed_reasons: list[str],
) -> Path:
    """Write one chunk file atomically (temp file + rename: a killed worker leaves no
    half-written file that a later run would trust)."""
    folder.mkdir(parents=True, exist_ok=True)
    all_ids = np.concatenate([np.asarray(item_ids), np.asarray(failed_ids)]).astype(np.int64)
    lo, hi = (int(all_ids.min()), int(all_ids.max())) if len(all_ids) else (0, 0)
    path = folder / f"items-{lo:012d}-{hi:012d}.npz"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            item_ids=np.asarray(item_ids, np.int64),
            image=np.asarray(image, np.float16),
            caption=np.asarray(caption, np.float16),
            has_caption=np.asarray(has_caption, bool),
            failed_ids=np.asarray(failed_ids, np.int64),
            failed_reasons=np.asarray(failed_reasons, dtype=str),
        )
    os.replace(tmp, path)
    return path


@dataclass
class CachedEmbeddings:
    item_ids: np.ndarray  # int64 [N], sorted
    image: np.ndarray  # float16 [N, D]
    caption: np.ndarray  # float16 [N, D]
    has_caption: np.ndarray  # bool [N]
    failures: dict[int, str]  # item id -> reason

    def covers(self, item_ids) -> bool:
        """Every given item is either embedded or known to be unreadable."""
        wanted = np.asarray(list(item_ids), np.int64)
        known = np.concatenate([self.item_ids, np.fromiter(self.failures, np.int64)])
        return bool(np.isin(wanted, known).all())


def cache_load(folder: Path, *, with_captions: bool = True) -> CachedEmbeddings | None:
    """All chunk files of a cache folder, one row per item sorted by id. with_captions=False
    skips the caption vectors (the `image` ensemble does not need them: half the reading)."""
    files = sorted(folder.glob("items-*.npz")) if folder.is_dir() else []
    if not files:
        return None
    ids, images, captions, has, failures = [], [], [], [], {}
    for path in files:
        with np.load(path) as data:
            if len(data["item_ids"]):
                ids.append(data["item_ids"])
                images.append(data["image"])
                has.append(data["has_caption"])
                if with_captions:
                    captions.append(data["caption"])
            reasons = data["failed_reasons"].tolist()
            failures.update(zip(data["failed_ids"].tolist(), reasons, strict=True))
    if not ids:
        empty = np.zeros((0, 0), np.float16)
        return CachedEmbeddings(np.zeros(0, np.int64), empty, empty, np.zeros(0, bool), failures)
    all_ids = np.concatenate(ids)
    image, has_caption = np.concatenate(images), np.concatenate(has)
    caption = np.concatenate(captions) if with_captions else np.zeros((len(image), 0), np.float16)
    # Two runs may have embedded the same item: keep one row per item, sorted by id.
    item_ids, first = np.unique(all_ids, return_index=True)
    if len(item_ids) != len(all_ids) or not np.array_equal(item_ids, all_ids):
        image, has_caption = image[first], has_caption[first]
        caption = caption[first] if with_captions else caption[: len(first)]
    if failures:
        embedded = set(item_ids.tolist())
        failures = {k: v for k, v in failures.items() if k not in embedded}
    return CachedEmbeddings(item_ids, image, caption, has_caption, failures)
