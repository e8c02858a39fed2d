"""The queued curated export (docs/architecture.md#curated-export): requested from the dashboard
or the API, written by a worker, downloaded when ready. Never written inside a request.

- `curated_export_request` checks the request at once (the selection is computed, so a targeted
  sample or a threshold the sample cannot speak for is refused with the service's error), then
  queues the task once the transaction commits. A repeated identical request while one is
  queued or running answers that one (a double click makes one file).
- `curated_export_run` (the `validation.export_curated` task) computes the selection again
  (the verdicts may have moved since), streams it with `curated_export.export_write` into
  MEDIA_ROOT/exports/<id>/ and records the file and the manifest. A redelivered task (a killed
  worker: `acks_late`) starts again from scratch; nothing is served before `succeeded`.
- `get_export_for_lead` is the one permission-checked fetch: through the export's sample,
  outsiders 404 and annotators 403, as the dashboards.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.datasets.access import fetch_for_user, require_role
from annotate.datasets.models import Role
from annotate.errors import Conflict, FieldInvalid, ServiceError
from annotate.validation.curated_export import (
    FORMATS,
    duplicate_groups,
    export_write,
    parse_exclude_suspects,
)
from annotate.validation.curation import Rule, parse_rule, selection_compute
from annotate.validation.models import CuratedExport, Sample

log = logging.getLogger(__name__)

EXPORT_LEADS_ONLY = "Only leads and admins of this dataset may export a curated selection."
EXPORT_ERROR_HIDDEN = "The export failed; an admin can read why in the export's record."
# What a finished export's folder holds; imagefolder is zipped (with its manifest.json).
FILE_NAMES = {
    "csv": "curated.csv",
    "jsonl": "curated.jsonl",
    "imagefolder": "curated-imagefolder.zip",
}
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "imagefolder": "application/zip"}
ACTIVE = (CuratedExport.Status.QUEUED, CuratedExport.Status.RUNNING)
PROGRESS_SECONDS = 1.0  # the progress row is saved at most this often
# Already compressed: stored as they are in the zip (deflating JPEGs only costs time).
STORED_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip"}


# ---------------------------------------------------------------- reading


def get_export_for_lead(user, pk) -> tuple[CuratedExport, str]:
    """(export, caller's role) for a lead or admin of the export's dataset: outsiders and
    unknown ids 404, annotators 403 (one query)."""
    exports = CuratedExport.objects.select_related("sample__run")
    export, role = fetch_for_user(exports, pk, user, dataset_field="sample__run__dataset")
    require_role(role, Role.LEAD, EXPORT_LEADS_ONLY)
    return export, role


def export_active(export: CuratedExport) -> bool:
    return export.status in ACTIVE


def export_percent(export: CuratedExport) -> int:
    if export.status == CuratedExport.Status.SUCCEEDED:
        return 100
    return min(100, int(100 * export.done / export.total)) if export.total else 0


def export_rule(export: CuratedExport) -> Rule:
    """The selection rule an export was asked with."""
    stored = export.rule
    return parse_rule(
        threshold=stored.get("threshold"),
        target_precision=stored.get("target_precision"),
        include_unvalidated=stored.get("include_unvalidated", False),
    )


def export_error(export: CuratedExport, role: str | None) -> str | None:
    """The failure as the caller may read it: admins the recorded error, others a generic
    sentence (an error can name paths of the server)."""
    if not export.error:
        return None
    return export.error if role == Role.ADMIN else EXPORT_ERROR_HIDDEN


def export_file_path(export: CuratedExport) -> Path:
    """The finished file, checked to lie inside MEDIA_ROOT/exports; Conflict (409) while the
    export is not ready (or its file has gone)."""
    if export.status != CuratedExport.Status.SUCCEEDED or not export.file:
        raise Conflict(f"Export {export.pk} is {export.status}: its file is not ready.")
    root = (Path(settings.MEDIA_ROOT) / "exports").resolve()
    path = (Path(settings.MEDIA_ROOT) / export.file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Conflict(f"The file of export {export.pk} is gone; request the export again.")
    return path


def export_download_name(export: CuratedExport) -> str:
    return f"sample-{export.sample_id}-curated-{export.pk}{Path(export.file).suffix}"


# ---------------------------------------------------------------- requesting


def curated_export_request(
    *,
    sample: Sample,
    rule: Rule,
    fmt: str,
    exclude_duplicates: bool = False,
    exclude_suspects: int | str = 0,
    user=None,
) -> CuratedExport:
    """Queue a curated export of `sample`'s selection by `rule` (the sample comes from a
    permission-checked fetch). The selection is computed once here, so a request the service
    refuses fails at once: Conflict (409) for a targeted sample, FieldInvalid (400) for a bad
    format, suspects count (`curated_export.parse_exclude_suspects`, text from a form too) or
    threshold, Conflict when duplicates are to be left out and the run has no finished
    near-duplicate scan. The same request while one is queued or running answers
    that one."""
    if fmt not in FORMATS:
        raise FieldInvalid("format", f"format must be one of {', '.join(FORMATS)}.")
    if isinstance(exclude_duplicates, str) or not isinstance(exclude_duplicates, bool):
        raise FieldInvalid("exclude_duplicates", "exclude_duplicates must be true or false.")
    exclude_suspects = parse_exclude_suspects(exclude_suspects)
    selection = selection_compute(sample=sample, rule=rule)
    if exclude_duplicates:
        duplicate_groups(sample.run)  # Conflict, saying how to get a scan, when there is none
    stored: dict[str, Any] = {
        k: v for k, v in rule.as_dict().items() if k in ("threshold", "target_precision")
    }
    stored.update(
        include_unvalidated=rule.include_unvalidated,
        exclude_duplicates=exclude_duplicates,
        exclude_suspects=exclude_suspects,
    )
    with transaction.atomic():
        # One request at a time per sample decides whether an identical one is pending.
        Sample.objects.select_for_update().filter(pk=sample.pk).first()
        pending = (
            CuratedExport.objects.filter(sample=sample, format=fmt, rule=stored, status__in=ACTIVE)
            .order_by("-id")
            .first()
        )
        if pending is not None:
            return pending
        export = CuratedExport.objects.create(
            sample=sample,
            rule=stored,
            format=fmt,
            total=selection.selected,  # the writer's first progress call corrects it
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        pk = export.pk
        transaction.on_commit(lambda: _send(pk))
    return export


def _send(export_id: int) -> None:
    from annotate.validation.tasks import export_curated

    export_curated.apply_async((export_id,), queue="default")


# ---------------------------------------------------------------- writing (the worker)


def export_folder(export_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / str(export_id)


def export_files_remove(sender: Any, instance: CuratedExport, **kwargs: Any) -> None:
    """post_delete of an export (also when its sample or run is deleted: CASCADE sends it per
    row): its folder goes once the deletion commits, so a rolled-back delete keeps the file."""
    folder = export_folder(instance.pk)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def _zip_folder(folder: Path, target: Path) -> None:
    """`folder` (an imagefolder export with its manifest.json) as a zip under `target`, one
    top-level folder inside; written under a temporary name, renamed when complete. Linked
    images are stored with their content."""
    partial = target.with_name(target.name + ".part")
    top = target.stem
    with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_dir():
                continue
            method = zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else None
            archive.write(
                path,
                f"{top}/{path.relative_to(folder).as_posix()}",
                compress_type=method if method is not None else zipfile.ZIP_DEFLATED,
            )
    partial.replace(target)


def curated_export_run(*, export_id: int) -> str:
    """Write export `export_id` (the `validation.export_curated` task): its status, progress
    (saved at most about once a second), then its file and manifest, or `failed` with the
    reason. Never raises: a failure is recorded on the export. Returns the final status."""
    export = CuratedExport.objects.select_related("sample__run").filter(pk=export_id).first()
    if export is None:
        return "missing"  # deleted meanwhile (or a message from another database)
    if export.status == CuratedExport.Status.SUCCEEDED:
        return "succeeded"  # a redelivered message after the work was done
    rows = CuratedExport.objects.filter(pk=export_id)
    rows.update(
        status=CuratedExport.Status.RUNNING, started=timezone.now(), finished=None, done=0,
        error="", file="", manifest={},
    )  # fmt: skip
    folder = export_folder(export_id)
    counts = {"done": 0, "total": export.total, "saved_at": 0.0}

    def progress(done: int, total: int) -> None:
        counts["done"], counts["total"] = done, total
        now = time.monotonic()
        if now - counts["saved_at"] >= PROGRESS_SECONDS:
            counts["saved_at"] = now
            rows.update(done=done, total=total)

    try:
        selection = selection_compute(sample=export.sample, rule=export_rule(export))
        shutil.rmtree(folder, ignore_errors=True)  # a redelivered task starts from scratch
        folder.mkdir(parents=True)
        target = folder / FILE_NAMES[export.format]
        out = folder / "curated-imagefolder" if export.format == "imagefolder" else target
        manifest = export_write(
            selection=selection,
            fmt=export.format,
            out=out,
            exclude_duplicates=bool(export.rule.get("exclude_duplicates", False)),
            exclude_suspects=int(export.rule.get("exclude_suspects", 0)),
            progress=progress,
            server_paths=False,
        )
        if export.format == "imagefolder":
            _zip_folder(out, target)
            shutil.rmtree(out)
        rows.update(
            status=CuratedExport.Status.SUCCEEDED,
            file=target.relative_to(Path(settings.MEDIA_ROOT)).as_posix(),
            manifest=json.loads(json.dumps(manifest, default=str)),  # dates, paths: as text
            done=counts["done"],
            total=max(counts["total"], counts["done"]),
            finished=timezone.now(),
        )
        return "succeeded"
    except Exception as exc:  # recorded, never raised: the worker goes on
        log.exception("curated export %s failed", export_id)
        message = str(exc) if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        shutil.rmtree(folder, ignore_errors=True)
        rows.update(status=CuratedExport.Status.FAILED, error=message, finished=timezone.now())
        return "failed"
