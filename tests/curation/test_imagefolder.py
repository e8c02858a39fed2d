"""The imagefolder export: Hugging Face's layout (metadata.jsonl + images/), read back by
`datasets.load_dataset("imagefolder")`; images hard-linked or copied; missing, unreadable and
outside images reported, never fatal; nothing left half-written."""

import json
import os
from pathlib import Path

import pytest

from annotate.errors import FieldInvalid
from annotate.validation import curated_export
from annotate.validation.curated_export import ROW_FIELDS, export_write
from annotate.validation.curation import Rule, selection_compute
from tests.curation.builders import Curated, build_curated, expected_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(dataset, ann) -> Curated:
    return build_curated(dataset, ann)


def select(built: Curated):
    return selection_compute(sample=built.sample, rule=Rule(threshold=0.5))


def metadata(folder: Path) -> list[dict]:
    lines = (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_layout_rows_and_hard_links(built: Curated, tmp_path: Path) -> None:
    out = tmp_path / "export"
    manifest = export_write(selection=select(built), fmt="imagefolder", out=out)
    assert sorted(p.name for p in out.iterdir()) == ["images", "manifest.json", "metadata.jsonl"]
    rows = metadata(out)
    expected = expected_rows(built)
    assert [{k: v for k, v in row.items() if k != "file_name"} for row in rows] == expected
    assert all(list(row) == ["file_name", *ROW_FIELDS] for row in rows)
    root = Path(built.dataset.image_root)
    for row in rows:
        assert row["file_name"] == f"images/{row['item']}.png"
        linked = out / row["file_name"]
        assert linked.stat().st_ino == (root / row["image_path"]).stat().st_ino  # a hard link
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["images"] == {"linked": len(rows), "copied": 0}
    assert manifest["counts"]["rows"] == len(expected) == 10
    assert manifest["counts"]["missing_images"] == 0
    assert manifest["missing_images"] == []
    assert manifest["columns"][0] == "file_name"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary dir


def test_load_dataset_reads_it(built: Curated, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "export"
    export_write(selection=select(built), fmt="imagefolder", out=out)
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "hf-cache")
    )["train"]
    expected = expected_rows(built)
    assert loaded.num_rows == len(expected)
    assert loaded["item"] == [row["item"] for row in expected]
    assert loaded["label"] == [row["label"] for row in expected]  # keys, as strings
    assert loaded["verdict"] == [row["verdict"] for row in expected]
    assert loaded["caption"] == [row["caption"] for row in expected]
    assert loaded[0]["image"].size == (8, 6)
    assert set(loaded.column_names) == {"image", *ROW_FIELDS}  # manifest.json is not read


def test_missing_and_outside_images_are_reported(built: Curated, tmp_path: Path) -> None:
    root = Path(built.dataset.image_root)
    (root / "img09.png").unlink()  # deleted after the import
    (root / "img03.png").write_bytes(b"not an image at all")
    (root.parent / "outside.png").write_bytes((root / "img00.png").read_bytes())
    built.items[11].image_path = "../outside.png"  # inside SIEVE_IMAGE_ROOTS, not the dataset's
    built.items[11].save()
    out = tmp_path / "export"
    manifest = export_write(selection=select(built), fmt="imagefolder", out=out)
    gone = {built.items[i].pk for i in (3, 9, 11)}
    assert [row["item"] for row in metadata(out)] == [
        row["item"] for row in expected_rows(built) if row["item"] not in gone
    ]
    assert manifest["counts"]["missing_images"] == 3
    assert manifest["counts"]["rows"] == 7
    reasons = {entry["item"]: entry["reason"] for entry in manifest["missing_images"]}
    assert set(reasons) == gone
    assert reasons[built.items[9].pk] == "no such file"
    assert reasons[built.items[11].pk] == (
        "not a file inside the dataset's folder and the allowed image roots"
    )
    # The reasons name no folder of the server (leads read the manifest).
    assert not any(str(tmp_path) in reason for reason in reasons.values())
    assert manifest["missing_images"][0]["external_id"] == "ext-03"
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        f"{row['item']}.png" for row in metadata(out)
    )


def test_missing_list_is_capped(built: Curated, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(curated_export, "MISSING_LISTED", 2)
    for path in Path(built.dataset.image_root).rglob("*.png"):
        path.unlink()
    manifest = export_write(selection=select(built), fmt="imagefolder", out=tmp_path / "e")
    assert manifest["counts"]["missing_images"] == 10
    assert len(manifest["missing_images"]) == 2
    assert (tmp_path / "e" / "metadata.jsonl").read_text() == ""


def test_copies_when_links_fail(built: Curated, tmp_path: Path, monkeypatch) -> None:
    def no_link(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(curated_export.os, "link", no_link)
    out = tmp_path / "export"
    manifest = export_write(selection=select(built), fmt="imagefolder", out=out)
    assert manifest["images"] == {"linked": 0, "copied": 10}
    first = metadata(out)[0]
    source = Path(built.dataset.image_root) / first["image_path"]
    assert (out / first["file_name"]).read_bytes() == source.read_bytes()
    assert (out / first["file_name"]).stat().st_ino != source.stat().st_ino


def test_target_directory(built: Curated, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FieldInvalid, match="not empty"):
        export_write(selection=select(built), fmt="imagefolder", out=full)
    assert os.listdir(full) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    export_write(selection=select(built), fmt="imagefolder", out=empty)
    assert (empty / "metadata.jsonl").exists()


def test_a_failure_leaves_nothing(built: Curated, tmp_path: Path) -> None:
    """A worker that dies mid-export leaves no half directory (nor a half file)."""

    def boom(done: int, total: int) -> None:
        if done:
            raise RuntimeError("killed")

    for fmt, name in (("imagefolder", "folder"), ("jsonl", "rows.jsonl")):
        with pytest.raises(RuntimeError):
            export_write(selection=select(built), fmt=fmt, out=tmp_path / "x" / name,
                         progress=boom)  # fmt: skip
        assert list((tmp_path / "x").iterdir()) == []
