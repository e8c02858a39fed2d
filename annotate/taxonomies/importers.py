"""Taxonomy import: Places format, a plain list or a `name,prompt` CSV, as one transaction.

Formats (README.md, "Datasets, taxonomies and members"), chosen from the first non-blank line:
- Places (`/b/bakery/shop 31`): key `/b/bakery/shop`, name `bakery shop` (the leading `/x/`
  letter folder is dropped; `_` and `/` become spaces); the trailing index is optional.
- CSV (`.csv` files, or a first line `name,prompt`): key = name; an empty prompt uses the
  template.
- Plain list: one label per line; key = name.

Blank lines are skipped; a duplicate key or name, a line that is not in the file's format, or a
file without labels is an error, and nothing is written.

Prompts (annotate/taxonomies/prompts.py, applied when prompts are built, not stored): labels
whose key ends in `/outdoor` get the study's outdoor form (`/c/church/outdoor` -> name `church
outdoor`, prompt `A photo of the outdoor of a church.`); every other label takes the template,
and the default template takes "an" before a vowel.

Indoor/outdoor file (`/c/church/outdoor 2`; 1 = indoor, 2 = outdoor): stored on each label as
`indoor_outdoor`, for filters; it does not change any prompt.
"""

import csv
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import transaction

from annotate.taxonomies.models import DEFAULT_TEMPLATE, Label, Taxonomy
from annotate.taxonomies.prompts import TemplateError, is_outdoor_key, template_check

PLACES_RE = re.compile(r"^(/[a-z0-9]/[^\s]+)(?:\s+(\d+))?$")
NAME_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
DATA_DIR = Path(__file__).resolve().parent / "data"
PLACES365 = DATA_DIR / "places365.txt"
PLACES365_INDOOR_OUTDOOR = DATA_DIR / "places365_indoor_outdoor.txt"


class TaxonomyImportError(ValueError):
    """The taxonomy file cannot be imported; nothing has been written."""


@dataclass
class TaxonomyImportResult:
    taxonomy_id: int
    taxonomy: str
    format: str
    labels: int
    created: int
    updated: int
    deleted: int
    outdoor_prompts: int  # labels that get the outdoor form (key ending in /outdoor)
    template: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.taxonomy}: {self.labels} labels ({self.format}; {self.created} new, "
            f"{self.updated} updated, {self.deleted} removed), "
            f"{self.outdoor_prompts} outdoor prompts"
        )


@dataclass
class ParsedLabel:
    key: str
    name: str
    prompt: str
    line: int
    indoor_outdoor: str = Label.Setting.UNKNOWN


def places_name(key: str) -> str:
    """`/b/bakery/shop` -> `bakery shop`."""
    body = re.sub(r"^/[a-z0-9]/", "", key)
    return re.sub(r"\s+", " ", body.replace("_", " ").replace("/", " ")).strip()


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaxonomyImportError(f"{what} is not UTF-8 text (byte {exc.start})") from None


def check_template(template: str) -> str:
    try:
        return template_check(template)
    except TemplateError as exc:
        raise TaxonomyImportError(str(exc)) from None


def _label_format(text: str, filename: str) -> str:
    """`csv`, `places` or `list`, from the file name and the first non-blank line."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not first:
        raise TaxonomyImportError("the taxonomy file has no labels")
    if filename.lower().endswith(".csv") or first.lower().replace(" ", "") == "name,prompt":
        return "csv"
    if first.startswith("/"):
        return "places"
    return "list"


def _csv_label(row: list[str], line: int) -> ParsedLabel:
    """One `name,prompt` row (the prompt may be missing or empty)."""
    if len(row) > 2:
        raise TaxonomyImportError(f"line {line}: expected name,prompt, got {len(row)} columns")
    name = row[0].strip()
    if not name:
        raise TaxonomyImportError(f"line {line}: empty label name")
    prompt = row[1].strip() if len(row) > 1 else ""
    return ParsedLabel(name, name, prompt, line)


def _parse_csv(text: str) -> list[ParsedLabel]:
    """`name,prompt` rows; blank rows and `name,prompt` header rows are skipped."""
    labels: list[ParsedLabel] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        if [c.strip().lower() for c in row[:2]] == ["name", "prompt"]:
            continue
        labels.append(_csv_label(row, reader.line_num))
    return labels


def _parse_places(text: str) -> list[ParsedLabel]:
    """`/b/bakery/shop 31` lines: key `/b/bakery/shop`, name `bakery shop`."""
    labels: list[ParsedLabel] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = PLACES_RE.match(line)
        if not match:
            raise TaxonomyImportError(
                f"line {number}: {line[:80]!r} is not in Places format (/b/bakery/shop 31)"
            )
        key = match.group(1)
        labels.append(ParsedLabel(key, places_name(key), "", number))
    return labels


def _parse_list(text: str) -> list[ParsedLabel]:
    """One label per line (inner whitespace collapsed); key = name."""
    labels: list[ParsedLabel] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        name = re.sub(r"\s+", " ", raw).strip()
        if name:
            labels.append(ParsedLabel(name, name, "", number))
    return labels


LABEL_PARSERS: dict[str, Callable[[str], list[ParsedLabel]]] = {
    "csv": _parse_csv,
    "places": _parse_places,
    "list": _parse_list,
}


def _check_unique(labels: list[ParsedLabel], attr: str) -> None:
    """Refuse a second label with the same `attr` (key or name)."""
    seen: dict[str, int] = {}
    for label in labels:
        value = getattr(label, attr)
        if value in seen:
            raise TaxonomyImportError(
                f"line {label.line}: duplicate label {attr} {value!r} (first on line {seen[value]})"
            )
        seen[value] = label.line


def _check_lengths(labels: list[ParsedLabel]) -> None:
    """Refuse labels longer than the database columns."""
    for label in labels:
        if len(label.key) > 200 or len(label.name) > 200 or len(label.prompt) > 300:
            raise TaxonomyImportError(f"line {label.line}: label or prompt too long")


def parse_labels(text: str, *, filename: str = "") -> tuple[str, list[ParsedLabel]]:
    """(format, labels) of a taxonomy file; raises TaxonomyImportError on bad content."""
    fmt = _label_format(text, filename)
    labels = LABEL_PARSERS[fmt](text)
    _check_unique(labels, "key")
    _check_unique(labels, "name")
    _check_lengths(labels)
    return fmt, labels


def parse_indoor_outdoor(text: str) -> dict[str, int]:
    """`/c/church/outdoor 2` lines -> {key: 1 (indoor) | 2 (outdoor)}."""
    flags: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or parts[1] not in ("1", "2"):
            raise TaxonomyImportError(
                f"indoor/outdoor line {number}: expected 'KEY 1' (indoor) or 'KEY 2' (outdoor)"
            )
        flags[parts[0]] = int(parts[1])
    return flags


def _check_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise TaxonomyImportError(
            f"taxonomy name {name!r} must be letters, digits, '-' or '_' (a slug)"
        )


def _taxonomy_text(text: str | bytes | None, path: str | Path | None) -> tuple[str, str]:
    """(text, file name) of the taxonomy file: read from `path` when given."""
    filename = ""
    if path is not None:
        filename = str(path)
        try:
            text = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise TaxonomyImportError(f"cannot read {filename!r}: {exc}") from None
    if text is None:
        raise TaxonomyImportError("no taxonomy file given")
    if isinstance(text, bytes):
        text = _decode(text, "the taxonomy file")
    return text, filename


def _indoor_outdoor_text(source: str | bytes | Path) -> str:
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as exc:
            raise TaxonomyImportError(f"cannot read indoor/outdoor file: {exc}") from None
    if isinstance(source, bytes):
        source = _decode(source, "the indoor/outdoor file")
    return source


def _apply_indoor_outdoor(parsed: list[ParsedLabel], source: str | bytes | Path) -> list[str]:
    """Set each label's indoor/outdoor flag from the file; warnings about keys it does not
    know."""
    flags = parse_indoor_outdoor(_indoor_outdoor_text(source))
    keys = {label.key for label in parsed}
    unknown = [key for key in flags if key not in keys]
    warnings = []
    if unknown:
        warnings.append(
            f"{len(unknown)} indoor/outdoor keys are not labels of this taxonomy "
            f"(ignored), e.g. {unknown[0]}"
        )
    settings = {1: Label.Setting.INDOOR, 2: Label.Setting.OUTDOOR}
    for label in parsed:
        label.indoor_outdoor = settings.get(flags.get(label.key), Label.Setting.UNKNOWN)
    return warnings


def _taxonomy_for(name: str, template: str) -> Taxonomy:
    """Taxonomy `name`, created or given `template`."""
    taxonomy, _ = Taxonomy.objects.get_or_create(name=name, defaults={"prompt_template": template})
    if taxonomy.prompt_template != template:
        taxonomy.prompt_template = template
        taxonomy.save(update_fields=["prompt_template"])
    return taxonomy


def _remove_dropped(name: str, existing: dict[str, Label], parsed: list[ParsedLabel]) -> int:
    """Delete the labels that left the file, unless a run predicted them; their count."""
    new_keys = {label.key for label in parsed}
    removed = [label for key, label in existing.items() if key not in new_keys]
    if not removed:
        return 0
    used = [label.key for label in removed if label.predictions.exists()]
    if used:
        raise TaxonomyImportError(
            f"taxonomy {name!r} is used by classification runs and the file drops "
            f"{len(used)} of their labels (e.g. {used[0]}); import it under a new name"
        )
    Label.objects.filter(pk__in=[label.pk for label in removed]).delete()
    return len(removed)


def _split_labels(
    taxonomy: Taxonomy, existing: dict[str, Label], parsed: list[ParsedLabel]
) -> tuple[list[Label], list[Label]]:
    """(labels to create, existing labels updated in memory), in file order."""
    to_create, to_update = [], []
    for position, p in enumerate(parsed):
        label = existing.get(p.key)
        if label is None:
            to_create.append(
                Label(
                    taxonomy=taxonomy, key=p.key, name=p.name, prompt=p.prompt,
                    position=position, indoor_outdoor=p.indoor_outdoor,
                )
            )  # fmt: skip
        else:
            label.name, label.prompt, label.position = p.name, p.prompt, position
            label.indoor_outdoor = p.indoor_outdoor
            to_update.append(label)
    return to_create, to_update


def _write_labels(
    to_create: list[Label],
    to_update: list[Label],
    progress: Callable[[int, int], None] | None,
) -> None:
    total = len(to_create) + len(to_update)
    if progress:
        progress(0, total)
    Label.objects.bulk_create(to_create, batch_size=1000)
    if progress:
        progress(len(to_create), total)
    Label.objects.bulk_update(
        to_update, ["name", "prompt", "position", "indoor_outdoor"], batch_size=1000
    )
    if progress:
        progress(total, total)


@dataclass
class _Saved:
    """What saving the labels did to the database."""

    taxonomy: Taxonomy
    created: int
    updated: int
    deleted: int


def _save_labels(
    name: str,
    template: str,
    parsed: list[ParsedLabel],
    progress: Callable[[int, int], None] | None,
) -> _Saved:
    """Create or replace the taxonomy's labels, in one transaction."""
    with transaction.atomic():
        taxonomy = _taxonomy_for(name, template)
        existing = {label.key: label for label in taxonomy.labels.all()}
        deleted = _remove_dropped(name, existing, parsed)
        to_create, to_update = _split_labels(taxonomy, existing, parsed)
        _write_labels(to_create, to_update, progress)
    return _Saved(taxonomy, len(to_create), len(to_update), deleted)


def taxonomy_import(
    *,
    name: str,
    text: str | bytes | None = None,
    path: str | Path | None = None,
    template: str = DEFAULT_TEMPLATE,
    indoor_outdoor: str | bytes | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TaxonomyImportResult:
    """Create or replace taxonomy `name` from a file's text (or `path`), in one transaction.

    Re-importing updates labels by key and removes labels that left the file, unless a run
    already predicted them (then it refuses: import under a new name instead)."""
    _check_name(name)
    template = check_template(template)
    text, filename = _taxonomy_text(text, path)
    fmt, parsed = parse_labels(text, filename=filename)
    warnings = [] if indoor_outdoor is None else _apply_indoor_outdoor(parsed, indoor_outdoor)
    saved = _save_labels(name, template, parsed, progress)
    return TaxonomyImportResult(
        taxonomy_id=saved.taxonomy.pk,
        taxonomy=saved.taxonomy.name,
        format=fmt,
        labels=len(parsed),
        created=saved.created,
        updated=saved.updated,
        deleted=saved.deleted,
        outdoor_prompts=sum(1 for p in parsed if not p.prompt and is_outdoor_key(p.key)),
        template=template,
        warnings=warnings,
    )


def places365_import(*, name: str = "places365") -> TaxonomyImportResult:
    """The vendored MIT Places365 categories with their indoor/outdoor prompts."""
    return taxonomy_import(name=name, path=PLACES365, indoor_outdoor=PLACES365_INDOOR_OUTDOOR)
