"""ITR import: the published CSV, optional images, and controversial lists
(docs/architecture.md#itr).

The CSV is read exactly as published: quoted fields with backslash escapes (`doublequote=False,
escapechar='\\'`), columns `tweet_id, user_id, tweet, text_is_represented, image_adds, ...`
(others are ignored). Data row n (0-based, header excluded) is the item's `row`; rows before
`split` are the train split, the others the test split. Any bad row (wrong number of fields,
a quote that ends a field early, a label other than 0/1, a repeated tweet id) is reported with
its line number and nothing is imported.

A controversial list has one line per transition, `01->11: 3997, 4067` (original
`text_is_represented image_adds` -> corrected, ids are rows). Rows that do not exist, labels that
contradict the dataset and rows listed twice are reported per line, and nothing is imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import F

from annotate.datasets.importers import (
    NAME_RE,
    UPSERT_FIELDS,
    probe_image,
    resolve_import_folder,
)
from annotate.datasets.models import Dataset, Item
from annotate.errors import Invalid
from annotate.itr.consensus import CHANGE_KINDS, change_kind
from annotate.itr.models import ItrItem
from annotate.itr.services import priorities_refresh, refresh_items

REQUIRED = ("tweet_id", "user_id", "tweet", "text_is_represented", "image_adds")
DEFAULT_SPLIT = 3576
ROW_SHIFT = 10**9  # above any row number: a temporary place while rows swap
MAX_ERRORS = 50  # a report lists at most this many lines
LINE_RE = re.compile(r"^\s*([01])([01])\s*->\s*([01])([01])\s*:\s*(.*?)\s*$")

Progress = Callable[[int, int], None]


class ItrImportError(Invalid):
    """A file that cannot be imported; `errors` lists the problems, one per line."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = errors or []
        shown = "\n".join(f"  {e}" for e in self.errors[:MAX_ERRORS])
        more = len(self.errors) - MAX_ERRORS
        if more > 0:
            shown += f"\n  ... and {more} more"
        super().__init__(f"{message}\n{shown}" if shown else message)


@dataclass
class ItrRow:
    row: int
    tweet_id: str
    user_id: str
    text: str
    text_is_represented: int
    image_adds: int


def _label(value: str, column: str, line: int, errors: list[str]) -> int:
    if value not in ("0", "1"):
        errors.append(f"line {line}: {column} is {value[:20]!r}, not 0 or 1")
        return 0
    return int(value)


def _stray_quote(record: str, fields: list[str]) -> bool:
    """Did the reader take an unescaped quote into a field? Every quote inside a field must
    come from a `\\"` of the record; the csv module keeps a stray one silently."""
    return sum(f.count('"') for f in fields) > record.count('\\"')


def _read_header(reader) -> dict[str, int]:
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        raise ItrImportError("the file is empty or has no header line") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ItrImportError(f"the header lacks the column(s) {', '.join(missing)}")
    return {name: header.index(name) for name in header}


def parse_itr_csv(text: str) -> list[ItrRow]:
    """The rows of an ITR CSV, or ItrImportError listing every bad line."""
    lines = list(io.StringIO(text))  # the physical lines, split as the reader splits them
    reader = csv.reader(iter(lines), doublequote=False, escapechar="\\", strict=True)
    col = _read_header(reader)
    width = len(col)
    errors: list[str] = []
    rows: list[ItrRow] = []
    seen: dict[str, int] = {}
    while True:
        start = reader.line_num
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"line {reader.line_num}: {exc} (an unescaped quote?)")
            break  # the reader cannot find the next row boundary reliably
        line = start + 1
        if not fields:
            continue
        if len(fields) != width:
            errors.append(
                f"line {line}: {len(fields)} fields where the header has {width} "
                "(an unescaped quote or a stray comma?)"
            )
            continue
        if _stray_quote("".join(lines[start : reader.line_num]), fields):
            errors.append(f'line {line}: a quote inside a field is not escaped as \\"')
            continue
        tweet_id = fields[col["tweet_id"]].strip()
        if not (tweet_id.isascii() and tweet_id.isdigit()) or len(tweet_id) > 32:
            errors.append(f"line {line}: tweet_id {tweet_id[:40]!r} is not a number")
        elif tweet_id in seen:
            errors.append(f"line {line}: tweet_id {tweet_id} repeats line {seen[tweet_id]}")
        seen.setdefault(tweet_id, line)
        rows.append(
            ItrRow(
                row=len(rows),
                tweet_id=tweet_id,
                user_id=fields[col["user_id"]].strip()[:32],
                text=fields[col["tweet"]],
                text_is_represented=_label(
                    fields[col["text_is_represented"]].strip(), "text_is_represented", line, errors
                ),
                image_adds=_label(fields[col["image_adds"]].strip(), "image_adds", line, errors),
            )
        )
    if errors:
        raise ItrImportError(f"{len(errors)} bad line(s); nothing was imported", errors)
    if not rows:
        raise ItrImportError("the file has no data rows")
    return rows


@dataclass
class ItrImportResult:
    dataset_id: int
    dataset: str
    items: int
    train: int
    test: int
    created: int
    updated: int
    with_image: int
    unreadable_images: int
    text_is_represented_percent: float
    image_adds_percent: float
    controversial: dict | None = None
    unreadable_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"Dataset {self.dataset!r} (id {self.dataset_id}): {self.items:,} items "
            f"({self.train:,} train, {self.test:,} test; {self.created:,} new, "
            f"{self.updated:,} updated), {self.with_image:,} with an image "
            f"({self.unreadable_images:,} unreadable); text is represented "
            f"{self.text_is_represented_percent:.1f} %, image adds {self.image_adds_percent:.1f} %"
        )


def _image_probe(root: Path | None, tweet_id: str) -> tuple[str, tuple]:
    """(image path, (status, reason, width, height, format)) of a tweet's image, if any."""
    if root is None:
        return "", (Item.Status.MISSING, "no image was imported", None, None, "")
    name = f"T{tweet_id}.jpg"
    path = root / name
    if not path.is_file():
        return "", (Item.Status.MISSING, f"{name} is not in the image folder", None, None, "")
    probe = probe_image(path)
    return name, (probe["status"], probe["reason"], probe["width"], probe["height"], probe["fmt"])


def _check_target(name: str) -> Dataset | None:
    if not NAME_RE.match(name or ""):
        raise ItrImportError(f"dataset name {name!r} must be letters, digits, '-' or '_'")
    existing = Dataset.objects.filter(name=name).first()
    if existing is not None and existing.kind != Dataset.Kind.ITR:
        raise ItrImportError(f"dataset {name!r} exists and is not an ITR dataset")
    return existing


def itr_import(
    *,
    name: str,
    csv_path: str | Path,
    images: str | Path | None = None,
    split: int = DEFAULT_SPLIT,
    controversial: str | Path | None = None,
    quorum: int = 3,
    progress: Progress | None = None,
) -> ItrImportResult:
    """Create or update ITR dataset `name` from the published CSV (and images named
    `T{tweet_id}.jpg` under `images`, inside SIEVE_IMAGE_ROOTS). Re-importing updates by tweet
    id, never duplicates; reviews and decisions are kept. All in one transaction."""
    _check_target(name)
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise ItrImportError(f"CSV file {str(csv_path)!r} does not exist")
    if split < 0:
        raise ItrImportError("--split must be 0 or more")
    if not 1 <= quorum <= 20:
        raise ItrImportError("quorum must be between 1 and 20")
    rows = parse_itr_csv(path.read_bytes().decode("utf-8-sig", errors="replace"))
    list_text = None
    if controversial is not None:
        list_path = Path(controversial).expanduser()
        if not list_path.is_file():
            raise ItrImportError(f"list file {str(controversial)!r} does not exist")
        list_text = list_path.read_text(encoding="utf-8", errors="replace")
    root = resolve_import_folder(images) if images else None
    probes = []
    for index, row in enumerate(rows, start=1):
        probes.append(_image_probe(root, row.tweet_id))
        if progress and (index % 500 == 0 or index == len(rows)):
            progress(index, len(rows))
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(
            name=name, defaults={"kind": Dataset.Kind.ITR, "image_root": str(root or "")}
        )
        if root is not None and dataset.image_root != str(root):
            dataset.image_root = str(root)
            dataset.save(update_fields=["image_root", "updated"])
        created = _write_rows(dataset, rows, probes, split=split, quorum=quorum)
        summary = controversial_import(dataset=dataset, text=list_text) if list_text else None
    unreadable = [
        f"{row.tweet_id}: {probe[1]}"
        for row, (_, probe) in zip(rows, probes, strict=True)
        if probe[0] == Item.Status.UNREADABLE
    ]
    n = len(rows)
    return ItrImportResult(
        dataset_id=dataset.pk,
        dataset=dataset.name,
        items=n,
        train=min(split, n),
        test=max(n - split, 0),
        created=created,
        updated=n - created,
        with_image=sum(1 for image, _ in probes if image),
        unreadable_images=len(unreadable),
        text_is_represented_percent=round(100 * sum(r.text_is_represented for r in rows) / n, 1),
        image_adds_percent=round(100 * sum(r.image_adds for r in rows) / n, 1),
        controversial=summary,
        unreadable_examples=unreadable[:20],
    )


def _write_rows(
    dataset: Dataset, rows: list[ItrRow], probes: list, *, split: int, quorum: int
) -> int:
    """Upsert the items and their ITR rows; returns how many were new."""
    items = []
    for row, (image, probe) in zip(rows, probes, strict=True):
        status, reason, width, height, fmt = probe
        items.append(
            Item(
                dataset=dataset,
                external_id=row.tweet_id,
                image_path=image,
                caption=row.text,
                metadata={"user_id": row.user_id, "row": row.row},
                status=status,
                status_reason=reason[:500],
                width=width,
                height=height,
                image_format=fmt,
            )
        )
    Item.objects.bulk_create(
        items,
        batch_size=900,
        update_conflicts=True,
        unique_fields=["dataset", "external_id"],
        update_fields=UPSERT_FIELDS,
    )
    item_ids = dict(dataset.items.values_list("external_id", "pk"))
    existing = {i.tweet_id: i for i in ItrItem.objects.filter(dataset=dataset)}
    new, changed = [], []
    for row in rows:
        values = {
            "row": row.row,
            "user_id": row.user_id,
            "split": ItrItem.Split.TRAIN if row.row < split else ItrItem.Split.TEST,
            "text_is_represented": row.text_is_represented,
            "image_adds": row.image_adds,
        }
        found = existing.get(row.tweet_id)
        if found is None:
            new.append(
                ItrItem(
                    dataset=dataset,
                    item_id=item_ids[row.tweet_id],
                    tweet_id=row.tweet_id,
                    wanted_reviews=quorum,
                    final_text=row.text_is_represented,
                    final_image=row.image_adds,
                    **values,
                )
            )
        elif any(getattr(found, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(found, key, value)
            changed.append(found)
    if changed:
        # Rows may swap places: move them out of the way of the unique (dataset, row) first
        # (shifted by more than any row number, they stay distinct).
        ids = [item.pk for item in changed]
        ItrItem.objects.filter(pk__in=ids).update(row=F("row") + ROW_SHIFT)
        ItrItem.objects.bulk_update(changed, list(values), batch_size=900)
        refresh_items(ids)
    ItrItem.objects.bulk_create(new, batch_size=900)
    priorities_refresh(dataset=dataset)
    return len(new)


@dataclass
class ListEntry:
    row: int
    original: tuple[int, int]
    corrected: tuple[int, int]
    line: int


def parse_controversial(text: str) -> tuple[list[ListEntry], list[str]]:
    """The entries of a controversial list and the problems of its malformed lines."""
    entries: list[ListEntry] = []
    errors: list[str] = []
    seen: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE_RE.match(line)
        if match is None:
            errors.append(f"line {number}: expected 'AB->CD: row, row, ...' (A..D are 0 or 1)")
            continue
        a, b, c, d, ids = match.groups()
        original, corrected = (int(a), int(b)), (int(c), int(d))
        if original == corrected:
            errors.append(f"line {number}: {a}{b}->{c}{d} changes nothing")
        for token in (t.strip() for t in ids.split(",")):
            if not (token.isascii() and token.isdigit()):
                errors.append(f"line {number}: {token[:20]!r} is not a row number")
                continue
            row = int(token)
            if row in seen:
                errors.append(f"line {number}: row {row} is already listed on line {seen[row]}")
                continue
            seen[row] = number
            entries.append(ListEntry(row, original, corrected, number))
    return entries, errors


def controversial_import(*, dataset: Dataset, text: str) -> dict:
    """Mark the listed items as candidates with the list's proposed labels (replacing an
    earlier list). Every row must exist and its labels must match the list's "from" labels;
    otherwise ItrImportError lists the problems and nothing changes."""
    entries, errors = parse_controversial(text)
    items = {
        i.row: i for i in ItrItem.objects.filter(dataset=dataset, row__in=[e.row for e in entries])
    }
    for entry in entries:
        item = items.get(entry.row)
        if item is None:
            errors.append(f"line {entry.line}: row {entry.row} is not in dataset {dataset.name}")
        elif item.original != entry.original:
            errors.append(
                f"line {entry.line}: row {entry.row} is labelled "
                f"{item.text_is_represented}{item.image_adds}, not "
                f"{entry.original[0]}{entry.original[1]}"
            )
    if errors:
        errors.sort(key=lambda e: int(e.split(":")[0].split()[1]))  # by line
        raise ItrImportError(f"{len(errors)} problem(s) in the list; nothing was imported", errors)
    kinds = dict.fromkeys(CHANGE_KINDS, 0)
    with transaction.atomic():
        ItrItem.objects.filter(dataset=dataset, listed=True).update(
            listed=False, listed_text=None, listed_image=None
        )
        for entry in entries:
            item = items[entry.row]
            item.listed = True
            item.listed_text, item.listed_image = entry.corrected
            kinds[change_kind(entry.original, entry.corrected) or "text"] += 1
        ItrItem.objects.bulk_update(
            list(items.values()), ["listed", "listed_text", "listed_image"], batch_size=900
        )
        priorities_refresh(dataset=dataset)
    return {"listed": len(entries), **kinds}
