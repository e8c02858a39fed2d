"""Dataset import: a folder of images plus captions, as one transaction of bulk upserts.

Used by `manage.py import_dataset`, the console's import jobs (run by a worker:
import_jobs.py) and the tests: one function, `dataset_import`, several front doors.

Formats (README.md, "Datasets, taxonomies and members"): images under FOLDER (external id =
the path relative to FOLDER, with `/` separators); captions from a CSV (`filename,caption`), a
JSONL (`{"filename": ..., "caption": ...}`) or, without a captions file, sidecar `.txt` files
with the image's stem next to the image (the InstaCities1M layout).

Only image headers are read (format and size, no pixel decoding). A cheap trailer check catches
truncated JPEG/PNG/GIF/WebP files; files Pillow cannot identify, empty files, images with more
than SIEVE_MAX_IMAGE_PIXELS pixels and images longer than SIEVE_MAX_ASPECT_RATIO (long side :
short side) become items with status `unreadable` and a reason.

File names that are not UTF-8 keep their item: the external id writes the bad bytes as `\\xNN`
escapes (annotate/datasets/paths.py `name_text`), and the image views and the worker find the
file from it.
"""

import csv
import io
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from annotate.datasets.models import Dataset, Item
from annotate.datasets.paths import UnsafePath, name_text, safe_path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
# Rows per upsert (and per `__in` list: SQLite builds may cap a query at 999 parameters).
WRITE_BATCH = 900
UPSERT_FIELDS = [
    "image_path",
    "caption",
    "metadata",
    "status",
    "status_reason",
    "width",
    "height",
    "image_format",
]
MAX_EXAMPLES = 20  # how many offending rows a report lists by name
UNREADABLE = Item.Status.UNREADABLE
NAME_RE = re.compile(r"^[-a-zA-Z0-9_]+$")

Progress = Callable[[int, int], None]


class DatasetImportError(ValueError):
    """The import cannot start (bad name, missing folder, folder outside the roots, bad file).

    Nothing has been written when it is raised."""


@dataclass
class CaptionReport:
    """What reading a captions source found, beyond the captions themselves."""

    source: str = "none"  # csv | jsonl | sidecar | none
    rows: int = 0
    missing_images: int = 0  # rows naming an image that is not in the folder
    missing_examples: list[str] = field(default_factory=list)
    duplicates: int = 0  # rows repeating an earlier filename (the last row wins)
    duplicate_examples: list[str] = field(default_factory=list)
    bad_rows: int = 0  # rows that could not be parsed (line numbers in bad_examples)
    bad_examples: list[str] = field(default_factory=list)
    undecodable_rows: int = 0  # rows with non-UTF-8 bytes (replaced by U+FFFD)
    undecodable_examples: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    dataset_id: int
    dataset: str
    folder: str
    images: int
    created: int
    updated: int
    ok: int
    unreadable: int
    captioned: int
    stale: int  # items of an earlier import whose image is gone (now status "missing")
    seconds: float
    captions: CaptionReport
    unreadable_examples: list[str] = field(default_factory=list)
    # File names that are not UTF-8: stored with `\xNN` escapes (see `name_text`).
    undecodable_names: int = 0
    undecodable_name_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        c = self.captions
        parts = [
            f"{self.dataset}: {self.images} images ({self.created} new, {self.updated} updated),",
            f"{self.unreadable} unreadable, {self.captioned} with captions ({c.source})",
        ]
        if self.stale:
            parts.append(f", {self.stale} no longer in the folder")
        if self.undecodable_names:
            names = "file name" if self.undecodable_names == 1 else "file names"
            parts.append(f", {self.undecodable_names} {names} not UTF-8 (kept, \\xNN escaped)")
        if c.missing_images:
            parts.append(f", {c.missing_images} caption rows without an image")
        if c.duplicates:
            parts.append(f", {c.duplicates} duplicate caption rows (last wins)")
        if c.bad_rows:
            parts.append(f", {c.bad_rows} unparseable caption rows")
        if c.undecodable_rows:
            parts.append(f", {c.undecodable_rows} caption rows with non-UTF-8 bytes")
        return " ".join(parts[:2]) + "".join(parts[2:]) + f" in {self.seconds:.1f}s"


# --- scanning and probing ----------------------------------------------------------------


@dataclass
class FolderScan:
    """What is under an import folder, by external id (a path relative to the folder, `/`
    separated, as text: see `name_text`)."""

    images: list[str]  # sorted
    texts: set[str]  # sidecar .txt files
    on_disk: dict[str, str] = field(default_factory=dict)  # external id -> OS path, if not equal

    def disk_path(self, rel: str) -> str:
        return self.on_disk.get(rel, rel)


def scan_folder(folder: Path) -> FolderScan:
    """Image paths and sidecar `.txt` paths under `folder`.

    Hidden files and folders are skipped; symlinked folders are not followed (a symlinked file
    is listed, and the import refuses it when it points outside the folder). A name that is not
    UTF-8 gets a text id with `\\xNN` escapes; in the unlikely case that this id is also
    another file's real name, that file keeps the id and the undecodable one is left out."""
    scan = FolderScan(images=[], texts=set())
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(folder / rel_dir if rel_dir else folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                    continue
                ext = os.path.splitext(entry.name)[1].lower()
                if ext not in IMAGE_EXTENSIONS and ext != ".txt":
                    continue
                text = name_text(rel)
                if text != rel:
                    scan.on_disk[text] = rel
                if ext == ".txt":
                    scan.texts.add(text)
                else:
                    scan.images.append(text)
    # A text id that is also a real file's name: the real name wins, the escaped one is left.
    for text in [t for t in scan.on_disk if os.path.lexists(folder / t)]:
        del scan.on_disk[text]
    scan.images = sorted(set(scan.images))
    return scan


def _trailer_problem(fmt: str, tail: bytes) -> str:
    """A reason when the file's last bytes show it was cut short; empty when they look fine."""
    if fmt in ("JPEG", "MPO"):
        # JPEG ends with the EOI marker; 0xFFD9 cannot occur inside entropy-coded data, so a
        # file cut in its scan data has none in its tail (some cameras append a few bytes).
        return "" if b"\xff\xd9" in tail else "truncated JPEG (no end-of-image marker)"
    if fmt == "PNG":
        return "" if b"IEND" in tail else "truncated PNG (no IEND chunk)"
    if fmt == "GIF":
        return "" if tail.rstrip(b"\x00").endswith(b";") else "truncated GIF (no trailer)"
    return ""  # WebP is checked against its RIFF header in probe_image


def _size_problem(width: int, height: int, *, max_pixels: int, max_ratio: float) -> str:
    """Why an image of this size is refused before any pixel is decoded (the engine applies
    the same limits when it decodes)."""
    if width * height > max_pixels:
        return (
            f"decompression bomb: {width}x{height} pixels exceeds "
            f"SIEVE_MAX_IMAGE_PIXELS={max_pixels}"
        )
    ratio = max(width, height) / max(1, min(width, height))
    if ratio > max_ratio:
        return (
            f"extreme aspect ratio: {width}x{height} is {ratio:.0f}:1, over "
            f"SIEVE_MAX_ASPECT_RATIO={max_ratio:g} (resizing it for the model needs gigabytes)"
        )
    return ""


def probe_image(
    path: Path, *, max_pixels: int | None = None, max_aspect_ratio: float | None = None
) -> dict:
    """Format, size and status of one image file, reading only its header and last bytes."""
    max_pixels = max_pixels or settings.SIEVE_MAX_IMAGE_PIXELS
    max_aspect_ratio = max_aspect_ratio or settings.SIEVE_MAX_ASPECT_RATIO
    result = {"status": Item.Status.OK, "reason": "", "width": None, "height": None, "fmt": ""}
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return {**result, "status": Item.Status.UNREADABLE, "reason": "empty file"}
            fh.seek(max(size - 1024, 0))
            tail = fh.read()
            fh.seek(0)
            with Image.open(fh) as im:
                width, height = im.size
                fmt = im.format or ""
            if fmt == "WEBP":
                # RIFF header: bytes 4-8 hold the file size minus 8.
                fh.seek(4)
                declared = int.from_bytes(fh.read(4), "little") + 8
                if declared > size:
                    return {
                        **result,
                        "status": Item.Status.UNREADABLE,
                        "reason": "truncated WebP (shorter than its header says)",
                        "fmt": fmt,
                    }
    except Image.DecompressionBombError as exc:
        return {**result, "status": UNREADABLE, "reason": f"decompression bomb: {exc}"}
    except UnidentifiedImageError:
        return {**result, "status": UNREADABLE, "reason": "not an image Pillow can read"}
    except (OSError, SyntaxError, ValueError) as exc:
        return {**result, "status": UNREADABLE, "reason": f"unreadable: {exc}"[:500]}
    result.update(width=width, height=height, fmt=fmt)
    problem = _size_problem(width, height, max_pixels=max_pixels, max_ratio=max_aspect_ratio)
    if problem:
        result.update(status=Item.Status.UNREADABLE, reason=problem)
        return result
    problem = _trailer_problem(fmt, tail)
    if problem:
        result.update(status=Item.Status.UNREADABLE, reason=problem)
    return result


# --- captions ----------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, bool]:
    """UTF-8 text (BOM dropped); invalid bytes become U+FFFD. Second value: was it clean?"""
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors="replace"), False


def _normalise_name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _add_example(examples: list[str], value: str) -> None:
    if len(examples) < MAX_EXAMPLES:
        examples.append(value[:200])


def _caption_rows_csv(text: str, report: CaptionReport) -> Iterable[tuple[int, str, str, dict]]:
    csv.field_size_limit(max(csv.field_size_limit(), 16 * 1024 * 1024))
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    first = True
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if first:
            first = False
            lowered = [c.strip().lower() for c in row]
            if len(lowered) >= 2 and lowered[0] in ("filename", "file", "image", "path"):
                header = lowered  # an optional header row; extra named columns -> metadata
                continue
        if len(row) < 2 or (len(row) > 2 and header is None):
            report.bad_rows += 1
            _add_example(report.bad_examples, f"line {line}: expected 2 columns, got {len(row)}")
            continue
        extra = {}
        if header is not None and len(row) > 2:
            extra = {h: v for h, v in zip(header[2:], row[2:], strict=False) if h}
        yield line, row[0], row[1], extra


def _caption_rows_jsonl(text: str, report: CaptionReport) -> Iterable[tuple[int, str, str, dict]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.bad_rows += 1
            _add_example(report.bad_examples, f"line {number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("filename"), str):
            report.bad_rows += 1
            _add_example(report.bad_examples, f'line {number}: no "filename" string')
            continue
        caption = obj.get("caption", "")
        if not isinstance(caption, str):
            caption = "" if caption is None else str(caption)
        extra = {k: v for k, v in obj.items() if k not in ("filename", "caption")}
        yield number, obj["filename"], caption, extra


def read_captions(
    path: Path, images: set[str]
) -> tuple[dict[str, str], dict[str, dict], CaptionReport]:
    """Captions (and extra metadata) by external id from a CSV or JSONL file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetImportError(f"cannot read captions file {str(path)!r}: {exc}") from None
    text, _clean = _decode(data)
    suffix = path.suffix.lower()
    stripped = text.lstrip()
    is_jsonl = suffix in (".jsonl", ".ndjson", ".json") or (
        suffix != ".csv" and stripped.startswith("{")
    )
    report = CaptionReport(source="jsonl" if is_jsonl else "csv")
    rows = _caption_rows_jsonl(text, report) if is_jsonl else _caption_rows_csv(text, report)
    captions: dict[str, str] = {}
    metadata: dict[str, dict] = {}
    for line, raw_name, caption, extra in rows:
        report.rows += 1
        name = _normalise_name(raw_name)
        if "\ufffd" in caption or "\ufffd" in raw_name:
            report.undecodable_rows += 1
            _add_example(report.undecodable_examples, f"line {line}: {name}")
        if name not in images:
            report.missing_images += 1
            _add_example(report.missing_examples, f"line {line}: {name}")
            continue
        if name in captions:
            report.duplicates += 1
            _add_example(report.duplicate_examples, f"line {line}: {name}")
        captions[name] = caption
        if extra:
            metadata[name] = extra
    return captions, metadata, report


def read_sidecars(folder: Path, scan: FolderScan) -> tuple[dict[str, str], CaptionReport]:
    """InstaCities1M layout: `city/123.jpg` takes its caption from `city/123.txt`."""
    report = CaptionReport(source="sidecar" if scan.texts else "none")
    captions: dict[str, str] = {}
    if not scan.texts:
        return captions, report
    for rel in scan.images:
        sidecar = os.path.splitext(rel)[0] + ".txt"
        if sidecar not in scan.texts:
            continue
        try:
            text, clean = _decode((folder / scan.disk_path(sidecar)).read_bytes())
        except OSError as exc:
            report.bad_rows += 1
            _add_example(report.bad_examples, f"{sidecar}: {exc}")
            continue
        report.rows += 1
        if not clean:
            report.undecodable_rows += 1
            _add_example(report.undecodable_examples, sidecar)
        captions[rel] = text.strip()
    return captions, report


# --- the import --------------------------------------------------------------------------


def _link_inside(rel: str, root: Path) -> bool:
    try:
        safe_path(rel, base=root)
    except UnsafePath:
        return False
    return True


def resolve_import_folder(folder: str | Path) -> Path:
    try:
        return safe_path(folder, kind="dir")
    except UnsafePath as exc:
        raise DatasetImportError(f"image folder {exc}") from None


def _check_request(
    name: str, folder: str | Path, captions: str | Path | None
) -> tuple[Path, Path | None]:
    """The import folder and captions file of a valid request; raises before anything is read."""
    if not NAME_RE.match(name or ""):
        raise DatasetImportError(
            f"dataset name {name!r} must be letters, digits, '-' or '_' (a slug)"
        )
    root = resolve_import_folder(folder)
    existing = Dataset.objects.filter(name=name).first()
    if existing is not None and existing.kind != Dataset.Kind.IMAGES:
        raise DatasetImportError(f"dataset {name!r} is a {existing.kind} dataset")
    captions_path = Path(captions).expanduser().resolve() if captions else None
    if captions_path is not None and not captions_path.is_file():
        raise DatasetImportError(f"captions file {str(captions)!r} does not exist")
    return root, captions_path


@dataclass
class _Captions:
    """The captions and metadata an import brings, by external id."""

    captions: dict[str, str]
    metadata: dict[str, dict]


def _read_caption_source(
    captions_path: Path | None, root: Path, scan: FolderScan
) -> tuple[_Captions, CaptionReport]:
    """Captions and metadata from the captions file, or from sidecar files without one."""
    if captions_path is not None:
        captions, metadata, report = read_captions(captions_path, set(scan.images))
        return _Captions(captions, metadata), report
    captions, report = read_sidecars(root, scan)
    return _Captions(captions, {}), report


def _probe_one(root: Path, scan: FolderScan, rel: str) -> tuple:
    """(status, reason, width, height, format) of one image; a compact tuple so that a
    million items stay in memory."""
    path = root / scan.disk_path(rel)
    if path.is_symlink() and not _link_inside(rel, root):
        return (UNREADABLE, "symbolic link leading outside the dataset folder (or nowhere)")
    p = probe_image(path)
    return (p["status"], p["reason"], p["width"], p["height"], p["fmt"])


def _probe_all(root: Path, scan: FolderScan, progress: Progress | None) -> list[tuple]:
    """One probe tuple per image of the scan, in order, reporting progress every 500."""
    probes: list[tuple] = []
    total = len(scan.images)
    with warnings.catch_warnings():
        # We apply our own pixel limit; Pillow's (global) warning would only add noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for index, rel in enumerate(scan.images, start=1):
            probes.append(_probe_one(root, scan, rel))
            if progress and (index % 500 == 0 or index == total):
                progress(index, total)
    if progress and not total:
        progress(0, 0)
    return probes


@dataclass
class _Written:
    """What writing the items did to the database."""

    dataset: Dataset
    previous: set[str]  # external ids the dataset had before the import
    stale: int
    unreadable_examples: list[str]


def _dataset_for(name: str, root: Path) -> Dataset:
    """Dataset `name`, created or pointed at `root`."""
    dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"image_root": str(root)})
    if dataset.image_root != str(root):
        dataset.image_root = str(root)
        dataset.save(update_fields=["image_root", "updated"])
    return dataset


def _old_values(dataset: Dataset, batch: list[str], previous: set[str]) -> dict[str, tuple]:
    """(caption, metadata) by external id of the batch's items that already exist."""
    if not previous:
        return {}
    rows = dataset.items.filter(external_id__in=batch).values_list(
        "external_id", "caption", "metadata"
    )
    return {eid: (caption, meta) for eid, caption, meta in rows}


def _item(dataset: Dataset, rel: str, probe: tuple, old: tuple, new: _Captions) -> Item:
    """The item to upsert: items without a new caption keep theirs; metadata is merged."""
    status, reason, width, height, fmt = (*probe, None, None, "")[:5]
    old_caption, old_meta = old
    return Item(
        dataset=dataset,
        external_id=rel,
        image_path=rel,
        caption=new.captions.get(rel, old_caption),
        metadata={**(old_meta or {}), **new.metadata.get(rel, {})},
        status=status,
        status_reason=reason[:500],
        width=width,
        height=height,
        image_format=fmt,
    )


def _upsert_batch(
    dataset: Dataset,
    batch: list[str],
    probes: list[tuple],
    new: _Captions,
    previous: set[str],
    unreadable_examples: list[str],
) -> None:
    """Insert or update one batch of items (`probes` aligned with `batch`)."""
    old = _old_values(dataset, batch, previous)
    objs = []
    for rel, probe in zip(batch, probes, strict=True):
        if probe[0] != Item.Status.OK:
            _add_example(unreadable_examples, f"{rel}: {probe[1]}")
        objs.append(_item(dataset, rel, probe, old.get(rel, ("", {})), new))
    Item.objects.bulk_create(
        objs,
        update_conflicts=True,
        unique_fields=["dataset", "external_id"],
        update_fields=UPSERT_FIELDS,
    )


def _mark_stale(dataset: Dataset, previous: set[str], images: set[str]) -> int:
    """Items of an earlier import whose image is gone get status `missing`; their count."""
    gone = [eid for eid in previous if eid not in images]
    stale = 0
    for start in range(0, len(gone), WRITE_BATCH):
        stale += (
            dataset.items.filter(external_id__in=gone[start : start + WRITE_BATCH])
            .exclude(image_path="")
            .update(status=Item.Status.MISSING, status_reason="image not found at last import")
        )
    return stale


def _write_items(
    name: str, root: Path, images: list[str], probes: list[tuple], new: _Captions
) -> _Written:
    """Upsert every item and mark the stale ones, in one transaction."""
    with transaction.atomic():
        dataset = _dataset_for(name, root)
        previous = set(dataset.items.values_list("external_id", flat=True))
        unreadable_examples: list[str] = []
        for start in range(0, len(images), WRITE_BATCH):
            end = start + WRITE_BATCH
            _upsert_batch(
                dataset, images[start:end], probes[start:end], new, previous, unreadable_examples
            )
        stale = _mark_stale(dataset, previous, set(images))
        dataset.save(update_fields=["updated"])
    return _Written(dataset, previous, stale, unreadable_examples)


def _import_result(
    *,
    root: Path,
    scan: FolderScan,
    probes: list[tuple],
    new: _Captions,
    report: CaptionReport,
    written: _Written,
    started: float,
) -> ImportResult:
    """The counts an import reports, from what each phase found."""
    images = scan.images
    total = len(images)
    unreadable = sum(1 for p in probes if p[0] != Item.Status.OK)
    created = sum(1 for rel in images if rel not in written.previous)
    return ImportResult(
        dataset_id=written.dataset.pk,
        dataset=written.dataset.name,
        folder=str(root),
        images=total,
        created=created,
        updated=total - created,
        ok=total - unreadable,
        unreadable=unreadable,
        captioned=sum(1 for rel in images if rel in new.captions),
        stale=written.stale,
        seconds=round(time.monotonic() - started, 3),
        captions=report,
        unreadable_examples=written.unreadable_examples,
        undecodable_names=len(scan.on_disk),
        undecodable_name_examples=sorted(scan.on_disk)[:MAX_EXAMPLES],
    )


def dataset_import(
    *,
    name: str,
    folder: str | Path,
    captions: str | Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Create or update dataset `name` from the images under `folder`.

    Re-importing upserts by (dataset, external id): items are updated, never duplicated;
    items whose image disappeared get status `missing`. Items without a new caption keep the
    one they had. Everything is written in one transaction. `progress(done, total)` is
    called as image headers are read (every 500 images and at the end).
    """
    started = time.monotonic()
    root, captions_path = _check_request(name, folder, captions)
    scan = scan_folder(root)
    new, report = _read_caption_source(captions_path, root, scan)
    probes = _probe_all(root, scan, progress)
    # Headers are read before the transaction: with SQLite the write lock is held only while
    # rows are written, not while files are read.
    written = _write_items(name, root, scan.images, probes, new)
    return _import_result(
        root=root,
        scan=scan,
        probes=probes,
        new=new,
        report=report,
        written=written,
        started=started,
    )
