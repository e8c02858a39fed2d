"""Taxonomy import: Places format, a plain list or a `name,prompt` CSV, as one transaction.

Formats (README "Datasets, taxonomies"), chosen from the first non-blank line:
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


def parse_labels(text: str, *, filename: str = "") -> tuple[str, list[ParsedLabel]]:
    """(format, labels) of a taxonomy file; raises TaxonomyImportError on bad content."""
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first:
        raise TaxonomyImportError("the taxonomy file has no labels")
    labels: list[ParsedLabel] = []
    if filename.lower().endswith(".csv") or first.lower().replace(" ", "") == "name,prompt":
        fmt = "csv"
        reader = csv.reader(io.StringIO(text, newline=""))
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if [c.strip().lower() for c in row[:2]] == ["name", "prompt"]:
                continue
            if len(row) > 2:
                raise TaxonomyImportError(
                    f"line {reader.line_num}: expected name,prompt, got {len(row)} columns"
                )
            name = row[0].strip()
            if not name:
                raise TaxonomyImportError(f"line {reader.line_num}: empty label name")
            prompt = row[1].strip() if len(row) > 1 else ""
            labels.append(ParsedLabel(name, name, prompt, reader.line_num))
    elif first.startswith("/"):
        fmt = "places"
        for number, raw in enumerate(lines, start=1):
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
    else:
        fmt = "list"
        for number, raw in enumerate(lines, start=1):
            name = re.sub(r"\s+", " ", raw).strip()
            if name:
                labels.append(ParsedLabel(name, name, "", number))
    for attr in ("key", "name"):
        seen: dict[str, int] = {}
        for label in labels:
            value = getattr(label, attr)
            if value in seen:
                raise TaxonomyImportError(
                    f"line {label.line}: duplicate label {attr} {value!r} (first on line "
                    f"{seen[value]})"
                )
            seen[value] = label.line
    for label in labels:
        if len(label.key) > 200 or len(label.name) > 200 or len(label.prompt) > 300:
            raise TaxonomyImportError(f"line {label.line}: label or prompt too long")
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
    if not NAME_RE.match(name or ""):
        raise TaxonomyImportError(
            f"taxonomy name {name!r} must be letters, digits, '-' or '_' (a slug)"
        )
    template = check_template(template)
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
    fmt, parsed = parse_labels(text, filename=filename)

    warnings: list[str] = []
    if indoor_outdoor is not None:
        if isinstance(indoor_outdoor, Path):
            try:
                indoor_outdoor = indoor_outdoor.read_bytes()
            except OSError as exc:
                raise TaxonomyImportError(f"cannot read indoor/outdoor file: {exc}") from None
        if isinstance(indoor_outdoor, bytes):
            indoor_outdoor = _decode(indoor_outdoor, "the indoor/outdoor file")
        flags = parse_indoor_outdoor(indoor_outdoor)
        keys = {label.key for label in parsed}
        unknown = [key for key in flags if key not in keys]
        if unknown:
            warnings.append(
                f"{len(unknown)} indoor/outdoor keys are not labels of this taxonomy "
                f"(ignored), e.g. {unknown[0]}"
            )
        settings = {1: Label.Setting.INDOOR, 2: Label.Setting.OUTDOOR}
        for label in parsed:
            label.indoor_outdoor = settings.get(flags.get(label.key), Label.Setting.UNKNOWN)

    with transaction.atomic():
        taxonomy, _ = Taxonomy.objects.get_or_create(
            name=name, defaults={"prompt_template": template}
        )
        if taxonomy.prompt_template != template:
            taxonomy.prompt_template = template
            taxonomy.save(update_fields=["prompt_template"])
        existing = {label.key: label for label in taxonomy.labels.all()}
        new_keys = {label.key for label in parsed}
        removed = [label for key, label in existing.items() if key not in new_keys]
        if removed:
            used = [label.key for label in removed if label.predictions.exists()]
            if used:
                raise TaxonomyImportError(
                    f"taxonomy {name!r} is used by classification runs and the file drops "
                    f"{len(used)} of their labels (e.g. {used[0]}); import it under a new name"
                )
            Label.objects.filter(pk__in=[label.pk for label in removed]).delete()
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
        total = len(parsed)
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

    return TaxonomyImportResult(
        taxonomy_id=taxonomy.pk,
        taxonomy=taxonomy.name,
        format=fmt,
        labels=len(parsed),
        created=len(to_create),
        updated=len(to_update),
        deleted=len(removed),
        outdoor_prompts=sum(1 for p in parsed if not p.prompt and is_outdoor_key(p.key)),
        template=template,
        warnings=warnings,
    )


def places365_import(*, name: str = "places365") -> TaxonomyImportResult:
    """The vendored MIT Places365 categories with their indoor/outdoor prompts."""
    return taxonomy_import(name=name, path=PLACES365, indoor_outdoor=PLACES365_INDOOR_OUTDOOR)
