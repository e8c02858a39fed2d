"""Writing a curated selection to disk: CSV, JSON lines or Hugging Face's imagefolder layout,
with a manifest that says how to reproduce it (docs/architecture.md#curated-export).

One writer, two callers: the `export_curated` command (a local path) and the queued export
task (curated_jobs.py, under MEDIA_ROOT/exports/).

Streaming: the rows are read by one SQL query whose condition is `curation.selection_filter`
(what is written is exactly what the estimate counted), ordered by item id, through a
PostgreSQL server-side cursor, `CHUNK_ROWS` rows per fetch, and written as they come: memory
does not grow with the selection. The read runs in a transaction of its own on a second
connection when the caller holds none (a worker, the command), so `progress` may write through
the ORM and be seen at once; inside the caller's transaction (tests) it reads there.

Verdicts are facts about (item, label), whatever sample gave them
(docs/architecture.md#verdicts-as-facts): a row whose label the facts confirm is kept
("confirmed"); one they say is wrong is relabelled with the item's one known true label
("corrected"), or dropped ("rejected") when there is none.

Nothing half-written is left behind: files and the imagefolder directory are written under a
temporary name beside `out` and renamed once complete.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from PIL import Image

from annotate.csvexport import csv_cell
from annotate.datasets.models import Item
from annotate.datasets.paths import PathMissing, UnsafePath, safe_path
from annotate.errors import Conflict, FieldInvalid
from annotate.validation import metrics
from annotate.validation.curation import (
    Selection,
    selection_count,
    selection_filter,
    selection_labels,
)
from annotate.validation.duplicates import DEFAULT_MIN_SIMILARITY
from annotate.validation.models import Verdict
from annotate.validation.suspects import top_suspects
from classifier.models import ClassificationRun, DuplicateScan, JobStatus, Prediction

FORMATS = ("csv", "jsonl", "imagefolder")
# The columns of every row, in order (CSV header; JSON keys).
ROW_FIELDS = [
    "item", "external_id", "image_path", "caption", "label", "label_name", "probability",
    "verdict", "predicted_label", "label_precision",
]  # fmt: skip

CHUNK_ROWS = 10_000  # rows per fetch from the server-side cursor, and per progress call
MAX_EXCLUDE_SUSPECTS = 100_000
MISSING_LISTED = 1000  # missing images named one by one in the manifest (all are counted)
CONFIRMED, CORRECTED, REJECTED = "confirmed", "corrected", "rejected"
# Extensions Hugging Face's imagefolder loader reads (its list is longer; these are the
# formats Sieve imports). Another suffix is replaced by the one of the item's format.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
FORMAT_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp",
                   "TIFF": ".tiff"}  # fmt: skip
IMAGE_ERRORS = (UnsafePath, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def manifest_path(fmt: str, out: Path) -> Path:
    """Where the manifest goes: `<out stem>.manifest.json` beside a CSV or JSONL file, and
    `manifest.json` inside an imagefolder directory."""
    if fmt == "imagefolder":
        return out / "manifest.json"
    return out.with_name(out.stem + ".manifest.json")


def default_out(sample_id: int, fmt: str) -> Path:
    """`curated-sample<ID>.csv` / `.jsonl`, or the directory `curated-sample<ID>`."""
    name = f"curated-sample{sample_id}"
    return Path(name if fmt == "imagefolder" else f"{name}.{fmt}")


def export_command(
    selection: Selection, fmt: str, out: Path, exclude_duplicates: bool, exclude_suspects: int
) -> str:
    """The `manage.py export_curated` line that writes this export again (with the verdicts of
    the time: the manifest records how many there were)."""
    rule = selection.rule
    args = ["python", "manage.py", "export_curated", str(selection.sample.pk)]
    if rule.threshold is not None:
        args += ["--threshold", f"{rule.threshold:g}"]
    else:
        args += ["--target-precision", f"{rule.target_precision:g}"]
    if rule.include_unvalidated:
        args.append("--include-unvalidated")
    args += ["--format", fmt, "--out", str(out)]
    if exclude_duplicates:
        args.append("--exclude-duplicates")
    if exclude_suspects:
        args += ["--exclude-suspects", str(exclude_suspects)]
    return shlex.join(args)


def check_out(fmt: str, out: Path) -> None:
    """Refuse an imagefolder target that is a non-empty directory or a file, and a file
    target that is a directory (FieldInvalid "out"). A file is replaced."""
    if fmt == "imagefolder":
        if out.is_dir():
            if any(out.iterdir()):
                raise FieldInvalid(
                    "out", f"{out} is a directory that is not empty: give a new or empty one."
                )
        elif out.exists():
            raise FieldInvalid("out", f"{out} is a file: an imagefolder export is a directory.")
    elif out.is_dir():
        raise FieldInvalid("out", f"{out} is a directory: give a file name.")


def parse_exclude_suspects(value: Any) -> int:
    """0 or None: none excluded; otherwise a whole number from 1 to 100,000."""
    if value in (None, "", 0, "0"):
        return 0
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if isinstance(value, float | bool) or not 1 <= number <= MAX_EXCLUDE_SUSPECTS:
        raise FieldInvalid(
            "exclude_suspects",
            f"exclude_suspects must be 0 (none) or a whole number from 1 to "
            f"{MAX_EXCLUDE_SUSPECTS:,}.",
        )
    return number


# ---------------------------------------------------------------- what is dropped


def duplicate_groups(run: ClassificationRun) -> tuple[DuplicateScan, dict[int, int]]:
    """The run's latest succeeded near-duplicate scan at the default similarity and item id ->
    its group's index; Conflict (409) saying how to run one when there is none."""
    scan = (
        DuplicateScan.objects.filter(
            run=run, min_similarity=DEFAULT_MIN_SIMILARITY, status=JobStatus.SUCCEEDED
        )
        .order_by("-id")
        .first()
    )
    if scan is None:
        if run.source == ClassificationRun.Source.IMPORT:
            raise Conflict(
                f"Run {run.pk}'s predictions were imported: it has no image embeddings, so its "
                "near-duplicates cannot be found. Export without excluding duplicates."
            )
        raise Conflict(
            f"Run {run.pk} has no finished near-duplicate scan at similarity "
            f"{DEFAULT_MIN_SIMILARITY:g}: start one on its duplicates page "
            f"(/runs/{run.pk}/duplicates/) or with POST /api/runs/{run.pk}/duplicates/, "
            "wait for it to finish, then export again."
        )
    groups: dict[int, int] = {}
    for index, group in enumerate(scan.groups or []):
        for item_id in group.get("items", []):
            groups[int(item_id)] = index
    return scan, groups


# ---------------------------------------------------------------- reading the rows


@contextmanager
def _row_cursor() -> Iterator[Any]:
    """A cursor to read the selection's rows with: on PostgreSQL a server-side (named) cursor
    inside a transaction, on a second connection unless the caller holds a transaction; on
    SQLite (the demo) a plain cursor, read with fetchmany."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    if connection.in_atomic_block:
        with transaction.atomic(), connection.chunked_cursor() as cursor:
            yield cursor
        return
    # The read's transaction lives on its own connection: the caller's progress writes (the
    # export task's `done`) commit as they happen instead of at the end of the read.
    default = connections[DEFAULT_DB_ALIAS]
    reader = type(default)(dict(default.settings_dict), DEFAULT_DB_ALIAS)
    try:
        reader.set_autocommit(False)
        with reader.cursor() as plain:
            plain.execute("SET TRANSACTION READ ONLY")
        with reader.chunked_cursor() as cursor:
            yield cursor
    finally:
        with suppress(Exception):
            reader.rollback()
        reader.close()


def stream_rows(selection: Selection) -> Iterator[list[tuple]]:
    """The selection's prediction rows in chunks, ordered by item id: (item id, external_id,
    image_path, caption, label id, probability)."""
    where, params = selection_filter(selection, alias="p")
    # Only the models' table names and the filter's placeholders are formatted in.
    tables = f"{Prediction._meta.db_table} p JOIN {Item._meta.db_table} i ON i.id = p.item_id"
    columns = "p.item_id, i.external_id, i.image_path, i.caption, p.label_id, p.probability"
    sql = f"SELECT {columns} FROM {tables} WHERE {where} ORDER BY p.item_id"  # noqa: S608
    with _row_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(CHUNK_ROWS):
            yield chunk


# ---------------------------------------------------------------- writers


@dataclass
class Counts:
    rows: int = 0
    confirmed: int = 0
    corrected: int = 0
    rejected: int = 0
    excluded_duplicates: int = 0
    excluded_suspects: int = 0
    missing_images: int = 0
    missing: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows, "confirmed": self.confirmed, "corrected": self.corrected,
            "rejected": self.rejected, "excluded_duplicates": self.excluded_duplicates,
            "excluded_suspects": self.excluded_suspects, "missing_images": self.missing_images,
        }  # fmt: skip


def missing_reason(exc: BaseException) -> str:
    """Why an image was left out, in words that name no server path (the manifest reaches
    leads, who do not see the dataset's folder)."""
    if isinstance(exc, PathMissing | FileNotFoundError):
        return "no such file"
    if isinstance(exc, UnsafePath):
        return "not a file inside the dataset's folder and the allowed image roots"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels (a decompression bomb)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "not a readable image"


class _Writer:
    """Writes kept rows; `write` returns False when the row could not be written (an
    imagefolder row without a readable image)."""

    def write(self, row: dict[str, Any]) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass


_text = json.encoder.encode_basestring  # the C encoder json.dumps uses with ensure_ascii=False


def _unit(value: Any) -> bool:
    return type(value) is float and 0.0 <= value <= 1.0  # also refuses NaN


def json_line(row: dict[str, Any]) -> str:
    """A row (ROW_FIELDS, in order) as `json.dumps(row, ensure_ascii=False)` writes it, without
    its per-call encoder: about three times faster, most of the export's time at 10^6 rows.
    Rows of other types than the usual (int id, text, probabilities in [0, 1]) go through
    json.dumps."""
    p, q = row["probability"], row["label_precision"]
    if type(row["item"]) is not int or not _unit(p) or not (q is None or _unit(q)):
        return json.dumps(row, ensure_ascii=False)
    return (
        f'{{"item": {row["item"]}, "external_id": {_text(row["external_id"])}, '
        f'"image_path": {_text(row["image_path"])}, "caption": {_text(row["caption"])}, '
        f'"label": {_text(row["label"])}, "label_name": {_text(row["label_name"])}, '
        f'"probability": {float.__repr__(p)}, "verdict": {_text(row["verdict"])}, '
        f'"predicted_label": {_text(row["predicted_label"])}, '
        f'"label_precision": {"null" if q is None else float.__repr__(q)}}}'
    )


class _JsonlWriter(_Writer):
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, row: dict[str, Any]) -> bool:
        self.stream.write(json_line(row) + "\n")
        return True


class _CsvWriter(_Writer):
    """Through annotate/csvexport.py: formula-like text cells (a caption `=cmd`) are quoted."""

    def __init__(self, stream: IO[str]) -> None:
        self.writer = csv.writer(stream)
        self.writer.writerow([csv_cell(c) for c in ROW_FIELDS])

    def write(self, row: dict[str, Any]) -> bool:
        self.writer.writerow([csv_cell(row[c]) for c in ROW_FIELDS])
        return True


class _ImagefolderWriter(_Writer):
    """`metadata.jsonl` (`file_name` first, then the row) and `images/<item id><ext>`, each
    image hard-linked to the dataset's file when on the same filesystem, copied otherwise."""

    def __init__(self, folder: Path, image_root: str, counts: Counts) -> None:
        self.folder = folder
        (folder / "images").mkdir()
        self.metadata = open(folder / "metadata.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.image_root = image_root
        self.counts = counts
        self.linked = 0
        self.copied = 0

    def _missing(self, row: dict[str, Any], reason: str) -> bool:
        self.counts.missing_images += 1
        if len(self.counts.missing) < MISSING_LISTED:
            self.counts.missing.append({
                "item": row["item"], "external_id": row["external_id"],
                "image_path": row["image_path"], "reason": reason,
            })  # fmt: skip
        return False

    def write(self, row: dict[str, Any]) -> bool:
        if not self.image_root or not row["image_path"]:
            return self._missing(row, "the item has no image file")
        try:
            source = safe_path(row["image_path"], base=self.image_root, kind="file")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(source) as im:  # the header only: is it an image at all
                    image_format = im.format or ""
        except IMAGE_ERRORS as exc:
            return self._missing(row, missing_reason(exc))
        suffix = source.suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            suffix = FORMAT_SUFFIXES.get(image_format, "")
            if not suffix:
                return self._missing(row, f"unsupported image format {image_format or '?'}")
        name = f"images/{row['item']}{suffix}"
        target = self.folder / name
        try:
            try:
                os.link(source, target)
                self.linked += 1
            except OSError:  # another filesystem, or links not allowed: a copy
                shutil.copyfile(source, target)
                self.copied += 1
        except OSError as exc:
            with suppress(OSError):
                target.unlink()
            return self._missing(row, missing_reason(exc))
        self.metadata.write(f'{{"file_name": {_text(name)}, {json_line(row)[1:]}\n')
        return True

    def close(self) -> None:
        self.metadata.close()


# ---------------------------------------------------------------- the export


def export_write(
    *,
    selection: Selection,
    fmt: str,
    out: Path,
    exclude_duplicates: bool = False,
    exclude_suspects: int = 0,
    progress: Callable[[int, int], None] | None = None,
    server_paths: bool = True,
) -> dict[str, Any]:
    """Stream the selection's rows to `out` in `fmt` and write the manifest; return the
    manifest. `progress(done, total)` is called as rows are written: `total` is the rows the
    selection holds (`selection_count`), `done` those considered so far, every CHUNK_ROWS.

    Raises FieldInvalid for a bad format, target or suspects count and Conflict when
    duplicates are to be excluded and the run has no finished scan; an image that cannot be
    read is reported in the manifest, never raised (docs/architecture.md#curated-export)."""
    if fmt not in FORMATS:
        raise FieldInvalid("format", f"format must be one of {', '.join(FORMATS)}.")
    exclude_suspects = parse_exclude_suspects(exclude_suspects)
    out = Path(out)
    check_out(fmt, out)
    sample = selection.sample
    run = ClassificationRun.objects.select_related("dataset", "taxonomy").get(pk=sample.run_id)
    dataset = run.dataset

    scan, groups = duplicate_groups(run) if exclude_duplicates else (None, {})
    suspects: set[int] = set()
    if exclude_suspects:
        suspects = {s.item for s in top_suspects(run=run, limit=exclude_suspects)}
    facts = metrics.dataset_facts(dataset_id=run.dataset_id, taxonomy_id=run.taxonomy_id)
    labels = selection_labels(selection)
    precision = selection.label_precision()
    total = selection_count(selection)

    out.parent.mkdir(parents=True, exist_ok=True)
    counts = Counts()
    linked: dict[str, int] = {}
    if fmt == "imagefolder":
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        work = Path(tmp)
    try:
        if fmt == "imagefolder":
            writer: _Writer = _ImagefolderWriter(work, dataset.image_root, counts)
            stream = None
        else:
            stream = open(work, "w", encoding="utf-8", newline="")  # noqa: SIM115
            writer = _CsvWriter(stream) if fmt == "csv" else _JsonlWriter(stream)
        try:
            _write_rows(
                selection, writer, counts, facts=facts, labels=labels, precision=precision,
                suspects=suspects, groups=groups, total=total, progress=progress,
            )  # fmt: skip
        finally:
            writer.close()
            if stream is not None:
                stream.close()
        if isinstance(writer, _ImagefolderWriter):
            linked = {"linked": writer.linked, "copied": writer.copied}

        manifest = _manifest(
            selection, run, fmt, out, counts, scan=scan, exclude_duplicates=exclude_duplicates,
            exclude_suspects=exclude_suspects, facts=facts, images=linked,
            server_paths=server_paths,
        )  # fmt: skip
        if fmt == "imagefolder":
            _write_json(work / "manifest.json", manifest)
            check_out(fmt, out)  # nothing appeared there meanwhile
            if out.is_dir():
                out.rmdir()  # empty
            os.rename(work, out)
        else:
            target = manifest_path(fmt, out)
            _write_json(target, manifest)
            os.replace(work, out)
    except BaseException:
        if work.is_dir():
            shutil.rmtree(work, ignore_errors=True)
        else:
            with suppress(OSError):
                work.unlink()
        raise
    return manifest


def row_verdict(label_id: int, known: tuple[set, set]) -> tuple[str, int | None]:
    """(verdict, label to write) for a row whose item has verdict facts: ("confirmed", the
    label), ("corrected", the item's one known true label), ("", the label) when the facts do
    not decide, or ("rejected", None): wrong, with no single true label to put instead."""
    right = metrics.fact_judgement(label_id, known)
    if right is None:
        return "", label_id
    if right:
        return CONFIRMED, label_id
    true = known[0]
    if len(true) == 1:
        (corrected,) = true
        return CORRECTED, corrected
    return REJECTED, None


def _write_rows(
    selection: Selection,
    writer: _Writer,
    counts: Counts,
    *,
    facts: dict[int, tuple[set, set]],
    labels: dict[int, tuple[str, str]],
    precision: dict[int, float | None],
    suspects: set[int],
    groups: dict[int, int],
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Each row in item order: suspects dropped, then verdicts applied (confirmed, corrected
    or rejected), then near-duplicates (the first member of a group that is written stays, so
    a dropped first member leaves its place to the next)."""
    done = 0
    written_groups: set[int] = set()
    if progress is not None:
        progress(0, total)
    for chunk in stream_rows(selection):
        for item_id, external_id, image_path, caption, label_id, probability in chunk:
            if item_id in suspects:
                counts.excluded_suspects += 1
                continue
            known = facts.get(item_id)
            verdict, final = ("", label_id) if known is None else row_verdict(label_id, known)
            if final is None:
                counts.rejected += 1
                continue
            group = groups.get(item_id)
            if group is not None and group in written_groups:
                counts.excluded_duplicates += 1
                continue
            key, name = labels.get(final, ("?", "?"))
            row = {
                "item": item_id, "external_id": external_id, "image_path": image_path,
                "caption": caption, "label": key, "label_name": name,
                "probability": probability, "verdict": verdict,
                "predicted_label": labels.get(label_id, ("?", "?"))[0],
                "label_precision": precision.get(label_id),
            }  # fmt: skip
            if not writer.write(row):
                continue
            counts.rows += 1
            if verdict == CONFIRMED:
                counts.confirmed += 1
            elif verdict == CORRECTED:
                counts.corrected += 1
            if group is not None:
                written_groups.add(group)
        done += len(chunk)
        if progress is not None:
            progress(done, total)


def _manifest(
    selection: Selection,
    run: ClassificationRun,
    fmt: str,
    out: Path,
    counts: Counts,
    *,
    scan: DuplicateScan | None,
    exclude_duplicates: bool,
    exclude_suspects: int,
    facts: dict[int, tuple[set, set]],
    images: dict[str, int],
    server_paths: bool = True,
) -> dict[str, Any]:
    """With `server_paths` off (the queued export, which leads download) the manifest names
    no folder of the server: no `image_root`, and the command writes to the file's name."""
    sample = selection.sample
    estimate = selection.as_dict()
    estimate.pop("rule", None)
    judged = Verdict.objects.filter(
        sample_item__sample=sample, value__in=[Verdict.Value.HIT, Verdict.Value.MISS]
    ).count()
    manifest: dict[str, Any] = {
        "format": fmt,
        "file": out.name,
        "created": timezone.now().isoformat(),
        "run": {
            "id": run.pk, "name": run.name, "model": run.model, "weights": run.weights,
            "ensemble": run.ensemble, "source": run.source, "dataset": run.dataset.name,
            "taxonomy": run.taxonomy.name,
        },
        "sample": {
            "id": sample.pk, "seed": sample.seed, "classes": sample.classes,
            "per_class": sample.per_class, "strategy": sample.strategy,
            "min_probability": sample.min_probability,
        },
        "rule": {
            **selection.rule.as_dict(), "exclude_duplicates": exclude_duplicates,
            "exclude_suspects": exclude_suspects,
        },
        "estimate": estimate,
        "verdicts": {
            "sample_verdicts": judged,  # hits and misses given on this sample
            "items_with_facts": len(facts),  # items of the dataset any verdict speaks about
            "rows_decided": counts.confirmed + counts.corrected + counts.rejected,
        },
        "counts": counts.as_dict(),
        "missing_images": counts.missing,
        "columns": (["file_name"] if fmt == "imagefolder" else []) + ROW_FIELDS,
        "command": export_command(selection, fmt, out if server_paths else Path(out.name),
                                  exclude_duplicates, exclude_suspects),
    }  # fmt: skip
    if server_paths:
        manifest["image_root"] = run.dataset.image_root
    if scan is not None:
        manifest["duplicates_scan"] = {
            "id": scan.pk, "min_similarity": scan.min_similarity, "groups": len(scan.groups or []),
        }  # fmt: skip
    if images:
        manifest["images"] = images
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """The manifest, written under a temporary name and renamed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
