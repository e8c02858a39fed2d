"""import_dataset: caption formats, the InstaCities layout, re-import and every bad input."""

import csv
import json
import os
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.urls import reverse

from annotate.datasets.import_jobs import import_job_run
from annotate.datasets.importers import DatasetImportError, dataset_import
from annotate.datasets.models import Dataset, ImportJob, Item
from tests.conftest import PASSWORD
from tests.datasets.conftest import (
    bomb_png_bytes,
    noisy_jpeg_bytes,
    run,
    write_jpeg,
    write_png,
)

pytestmark = pytest.mark.django_db


def items(name: str = "photos") -> dict[str, Item]:
    return {i.external_id: i for i in Item.objects.filter(dataset__name=name)}


def test_folder_import_reads_headers_recursively(folder: Path) -> None:
    _text, summary = run("import_dataset", "photos", str(folder), "--json")
    assert summary["images"] == 3
    assert summary["created"] == 3
    assert summary["unreadable"] == 0
    got = items()
    assert set(got) == {"a.jpg", "b.jpg", "city/c.png"}
    assert (got["b.jpg"].width, got["b.jpg"].height, got["b.jpg"].image_format) == (40, 30, "JPEG")
    assert got["city/c.png"].image_path == "city/c.png"
    assert Dataset.objects.get(name="photos").image_root == str(folder.resolve())


def test_csv_captions_with_header_and_extra_columns(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "captions.csv"
    captions.write_text(
        'filename,caption,city\na.jpg,"A bakery, at dawn",paris\ncity/c.png,Church,rome\n',
        encoding="utf-8",
    )
    _, summary = run("import_dataset", "photos", str(folder), "--captions", str(captions), "--json")
    got = items()
    assert got["a.jpg"].caption == "A bakery, at dawn"
    assert got["a.jpg"].metadata == {"city": "paris"}
    assert got["city/c.png"].caption == "Church"
    assert got["b.jpg"].caption == ""
    assert summary["captioned"] == 2
    assert summary["captions"]["source"] == "csv"


def test_csv_captions_without_header(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "captions.txt"
    captions.write_text("a.jpg,first\n./b.jpg,second\n", encoding="utf-8")
    run("import_dataset", "photos", str(folder), "--captions", str(captions))
    assert items()["a.jpg"].caption == "first"
    assert items()["b.jpg"].caption == "second"


def test_csv_with_bom_crlf_and_multiline_captions(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "captions.csv"
    captions.write_bytes(
        '\ufefffilename,caption\r\na.jpg,"two\r\nlines"\r\nb.jpg,caf\u00e9 \u2615\r\n'.encode()
    )
    _, summary = run("import_dataset", "photos", str(folder), "--captions", str(captions), "--json")
    assert items()["a.jpg"].caption == "two\r\nlines"
    assert items()["b.jpg"].caption == "caf\u00e9 \u2615"
    assert summary["captions"]["bad_rows"] == 0
    assert summary["captions"]["undecodable_rows"] == 0


def test_jsonl_captions(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "captions.jsonl"
    lines = [
        {"filename": "a.jpg", "caption": "Sunny beach", "likes": 3},
        {"filename": "city/c.png", "caption": "Snowy street"},
    ]
    captions.write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n\nnot json\n", encoding="utf-8"
    )
    _, summary = run("import_dataset", "photos", str(folder), "--captions", str(captions), "--json")
    assert items()["a.jpg"].caption == "Sunny beach"
    assert items()["a.jpg"].metadata == {"likes": 3}
    assert items()["city/c.png"].caption == "Snowy street"
    assert summary["captions"]["bad_rows"] == 1
    assert "line 4" in summary["captions"]["bad_examples"][0]


def test_instacities_sidecar_layout(image_root: Path) -> None:
    root = image_root / "instacities"
    for city, n in (("newyork", 1), ("newyork", 2), ("london", 7)):
        write_jpeg(root / city / f"{n}.jpg")
        (root / city / f"{n}.txt").write_text(f" #{city} photo {n}\n", encoding="utf-8")
    write_jpeg(root / "london" / "8.jpg")  # no sidecar
    _, summary = run("import_dataset", "insta", str(root), "--json")
    got = items("insta")
    assert got["newyork/2.jpg"].caption == "#newyork photo 2"
    assert got["london/7.jpg"].caption == "#london photo 7"
    assert got["london/8.jpg"].caption == ""
    assert summary["captions"]["source"] == "sidecar"
    assert summary["captioned"] == 3


def test_reimport_updates_never_duplicates(folder: Path, tmp_path: Path) -> None:
    captions = tmp_path / "c.csv"
    captions.write_text("a.jpg,old caption\n", encoding="utf-8")
    run("import_dataset", "photos", str(folder), "--captions", str(captions))
    first_ids = {k: v.pk for k, v in items().items()}

    captions.write_text("a.jpg,new caption\n", encoding="utf-8")
    write_jpeg(folder / "b.jpg", size=(64, 48))  # changed image
    write_jpeg(folder / "d.jpg")  # new image
    (folder / "city" / "c.png").unlink()  # gone
    _, summary = run("import_dataset", "photos", str(folder), "--captions", str(captions), "--json")
    got = items()
    assert Item.objects.filter(dataset__name="photos").count() == 4
    assert summary["created"] == 1
    assert summary["updated"] == 2
    assert summary["stale"] == 1
    assert got["a.jpg"].pk == first_ids["a.jpg"]
    assert got["a.jpg"].caption == "new caption"
    assert (got["b.jpg"].width, got["b.jpg"].height) == (64, 48)
    assert got["city/c.png"].status == Item.Status.MISSING

    # Without a captions source, existing captions are kept.
    run("import_dataset", "photos", str(folder))
    assert items()["a.jpg"].caption == "new caption"
    assert Item.objects.filter(dataset__name="photos").count() == 4


def test_missing_folder_is_a_clear_error(image_root: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        run("import_dataset", "photos", str(image_root / "nope"))
    assert not Dataset.objects.exists()


def test_folder_outside_image_roots_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write_jpeg(outside / "a.jpg")
    with pytest.raises(CommandError, match="outside the allowed image roots"):
        run("import_dataset", "photos", str(outside))
    assert not Dataset.objects.exists()


def test_symlinked_folder_escaping_roots_is_refused(image_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write_jpeg(outside / "a.jpg")
    (image_root / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetImportError, match="outside the allowed image roots"):
        dataset_import(name="photos", folder=image_root / "sneaky")
    with pytest.raises(DatasetImportError, match="outside the allowed image roots"):
        dataset_import(name="photos", folder=f"{image_root}/../elsewhere")


def test_bad_dataset_name_is_refused(folder: Path) -> None:
    with pytest.raises(CommandError, match="slug"):
        run("import_dataset", "bad name!", str(folder))


def test_unreadable_files_are_kept_with_a_reason(folder: Path, settings) -> None:
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "page.jpg").write_text("<!doctype html><html><body>hi</body></html>")
    data = noisy_jpeg_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) * 2 // 3])
    (folder / "bomb.png").write_bytes(bomb_png_bytes())
    write_jpeg(folder / "large.jpg", size=(300, 200))
    settings.SIEVE_MAX_IMAGE_PIXELS = 50_000  # large.jpg (60,000 px) is over the limit
    _, summary = run("import_dataset", "photos", str(folder), "--json")
    got = items()
    assert summary["images"] == 8
    assert summary["unreadable"] == 5
    assert summary["ok"] == 3
    reasons = {k: v.status_reason for k, v in got.items() if v.status == Item.Status.UNREADABLE}
    assert reasons["zero.jpg"] == "empty file"
    assert "not an image" in reasons["page.jpg"]
    assert "truncated" in reasons["truncated.jpg"].lower()
    assert "decompression bomb" in reasons["bomb.png"]
    assert "decompression bomb" in reasons["large.jpg"]
    assert got["a.jpg"].status == Item.Status.OK  # the import went on


def test_symlinked_file_pointing_outside_is_unreadable(folder: Path, tmp_path: Path) -> None:
    secret = write_jpeg(tmp_path / "secret" / "s.jpg")
    (folder / "link.jpg").symlink_to(secret)
    run("import_dataset", "photos", str(folder))
    link = items()["link.jpg"]
    assert link.status == Item.Status.UNREADABLE
    assert "outside" in link.status_reason
    assert link.width is None


def test_bad_caption_rows_are_reported_not_fatal(folder: Path, tmp_path: Path) -> None:
    long_caption = "x" * 100_000
    script = '<script>alert("x")</script> & <b>bold</b>'
    captions = tmp_path / "c.csv"
    captions.write_bytes(
        b"filename,caption\n"
        b"a.jpg,first\n"
        b"ghost.jpg,no such image\n"
        b"a.jpg,second wins\n"
        b"b.jpg,caf\xe9 latin-1 bytes\n" + f'city/c.png,"{long_caption}"\n'.encode() + b"lonely\n"
    )
    _, summary = run("import_dataset", "photos", str(folder), "--captions", str(captions), "--json")
    report = summary["captions"]
    assert report["missing_images"] == 1
    assert "ghost.jpg" in report["missing_examples"][0]
    assert report["duplicates"] == 1
    assert "a.jpg" in report["duplicate_examples"][0]
    assert report["undecodable_rows"] == 1
    assert "b.jpg" in report["undecodable_examples"][0]
    assert report["bad_rows"] == 1
    got = items()
    assert got["a.jpg"].caption == "second wins"
    assert got["b.jpg"].caption == "caf\ufffd latin-1 bytes"
    assert got["city/c.png"].caption == long_caption
    assert not Item.objects.filter(external_id="ghost.jpg").exists()

    with captions.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerow(["a.jpg", script])
    run("import_dataset", "photos", str(folder), "--captions", str(captions))
    assert items()["a.jpg"].caption == script  # stored as text, escaped when rendered


def test_missing_captions_file_writes_nothing(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="captions file"):
        run("import_dataset", "photos", str(folder), "--captions", str(tmp_path / "no.csv"))
    assert not Dataset.objects.exists()


def test_progress_goes_to_stderr_and_json_is_last_line(folder: Path) -> None:
    import io

    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("import_dataset", "photos", str(folder), "--json", stdout=out, stderr=err)
    assert "3/3" in err.getvalue()
    assert json.loads(out.getvalue().strip().splitlines()[-1])["dataset"] == "photos"


def test_reimport_across_write_batches(image_root: Path, tmp_path: Path) -> None:
    """More items than one write batch: captions kept and stale items found in every batch."""
    from annotate.datasets.importers import WRITE_BATCH

    root = image_root / "many"
    root.mkdir()
    data = write_jpeg(tmp_path / "one.jpg", size=(4, 4)).read_bytes()
    count = WRITE_BATCH + 100
    for n in range(count):
        (root / f"{n:05d}.jpg").write_bytes(data)
        (root / f"{n:05d}.txt").write_text(f"caption {n}")
    _, first = run("import_dataset", "many", str(root), "--json")
    assert first["created"] == count
    assert first["captioned"] == count
    for n in range(count):
        (root / f"{n:05d}.txt").unlink()
        if n % 2:
            (root / f"{n:05d}.jpg").unlink()
    _, second = run("import_dataset", "many", str(root), "--json")
    assert second["created"] == 0
    assert second["stale"] == count // 2
    got = items("many")
    assert len(got) == count
    assert got[f"{count - 2:05d}.jpg"].caption == f"caption {count - 2}"  # kept
    assert got[f"{count - 1:05d}.jpg"].status == Item.Status.MISSING


def write_bytes_named(folder: Path, name: bytes, data: bytes) -> bytes:
    """A file whose name is raw bytes (not necessarily UTF-8)."""
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as fh:
        fh.write(data)
    return path


LATIN1_NAME = b"latin1-\xff\xe9-name.jpg"
ESCAPED_ID = "latin1-\\xff\\xe9-name.jpg"  # the bad bytes as \xNN escapes, as text


def test_undecodable_file_names_keep_their_item(folder: Path) -> None:
    """A file name that is not UTF-8 does not abort the import: its item gets a text id with
    \\xNN escapes, the same on every import, and a sidecar caption still finds it."""
    jpeg = (folder / "a.jpg").read_bytes()
    write_bytes_named(folder, LATIN1_NAME, jpeg)
    write_bytes_named(folder, b"latin1-\xff\xe9-name.txt", b"caption of the latin-1 file")
    (folder / "sub-\udcff").mkdir()  # an undecodable folder name (surrogate-escaped)
    write_bytes_named(folder / "sub-\udcff", b"inner.jpg", jpeg)
    _text, summary = run("import_dataset", "photos", str(folder), "--json")
    assert summary["images"] == 5
    assert summary["unreadable"] == 0
    assert summary["undecodable_names"] == 3  # the image, its sidecar and the folder's image
    assert ESCAPED_ID in summary["undecodable_name_examples"]
    got = items()
    assert got[ESCAPED_ID].image_path == ESCAPED_ID
    assert got[ESCAPED_ID].caption == "caption of the latin-1 file"
    assert (got[ESCAPED_ID].width, got[ESCAPED_ID].image_format) == (32, "JPEG")
    assert got["sub-\\xff/inner.jpg"].status == Item.Status.OK
    first_ids = {k: v.pk for k, v in got.items()}
    _, again = run("import_dataset", "photos", str(folder), "--json")
    assert again["created"] == 0
    assert again["updated"] == 5
    assert {k: v.pk for k, v in items().items()} == first_ids


def test_undecodable_file_name_next_to_its_escaped_twin(folder: Path) -> None:
    """A real file named like the escaped id keeps it; the undecodable one is left out."""
    jpeg = (folder / "a.jpg").read_bytes()
    write_bytes_named(folder, LATIN1_NAME, jpeg)
    write_jpeg(folder / ESCAPED_ID, size=(40, 30))
    _, summary = run("import_dataset", "photos", str(folder), "--json")
    assert summary["images"] == 4
    assert summary["undecodable_names"] == 0
    assert items()[ESCAPED_ID].width == 40  # the real file with that name


def test_console_import_with_undecodable_file_name(ada, image_root: Path, client) -> None:
    shots = image_root / "shots"
    write_jpeg(shots / "a.jpg")
    write_bytes_named(shots, LATIN1_NAME, (shots / "a.jpg").read_bytes())
    client.login(username="ada", password=PASSWORD)
    response = client.post(
        reverse("console-import-dataset"), {"name": "shots", "folder": str(shots)}
    )
    assert response.status_code == 302
    import_job_run(job_id=ImportJob.objects.get().pk)  # what the worker does
    page = client.get(reverse("console")).content.decode()
    assert "shots: 2 images (2 new, 0 updated)" in page
    assert "1 file name not UTF-8" in page
    assert Item.objects.get(external_id=ESCAPED_ID).status == Item.Status.OK


def test_extreme_aspect_ratios_are_unreadable(folder: Path, settings) -> None:
    """1 x 89,000 passes the pixel limit, but resizing its short side to the model's input
    needs gigabytes: refused by its header, with the ratio in the reason."""
    (folder / "strip.png").write_bytes(bomb_png_bytes(width=1, height=89_000))
    write_png(folder / "wide.png", size=(400, 20))  # 20:1 exactly: accepted
    write_png(folder / "wider.png", size=(420, 20))  # 21:1
    _, summary = run("import_dataset", "photos", str(folder), "--json")
    assert summary["unreadable"] == 2
    assert summary["ok"] == 4
    got = items()
    assert got["strip.png"].status_reason == (
        "extreme aspect ratio: 1x89000 is 89000:1, over SIEVE_MAX_ASPECT_RATIO=20 "
        "(resizing it for the model needs gigabytes)"
    )
    assert got["wider.png"].status == Item.Status.UNREADABLE
    assert got["wide.png"].status == Item.Status.OK
    settings.SIEVE_MAX_ASPECT_RATIO = 25
    run("import_dataset", "photos", str(folder))
    assert items()["wider.png"].status == Item.Status.OK
