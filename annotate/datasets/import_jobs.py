"""Dataset imports as background jobs (docs/architecture.md#import-jobs).

`import_job_start` checks the request and queues it; a worker on queue `default` runs
`import_job_run`, which calls the same `dataset_import` as the `import_dataset` command and
writes its progress on the job row. The import itself is one transaction of upserts, so a job
run twice (a redelivery after a worker died) updates the items again and never duplicates
them.
"""

import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotate.datasets.importers import NAME_RE, DatasetImportError, dataset_import
from annotate.datasets.models import Dataset, ImportJob
from annotate.datasets.paths import UnsafePath, safe_path

Status = ImportJob.Status
PROGRESS_EVERY_S = 1.0  # the console polls once a second: more writes would not be seen


def _checked_paths(folder: str, captions: str) -> tuple[dict[str, str], Path | None, Path | None]:
    """(errors by field, the folder's real path, the captions file's real path): both must lie
    inside SIEVE_IMAGE_ROOTS, and the captions file must be readable."""
    errors: dict[str, str] = {}
    root = captions_path = None
    try:
        root = safe_path(folder.strip(), kind="dir")
    except UnsafePath as exc:
        errors["folder"] = f"image folder {exc}"
    if captions.strip():
        try:
            captions_path = safe_path(captions.strip(), kind="file")
            with captions_path.open("rb") as fh:
                fh.read(1)
        except UnsafePath as exc:
            errors["captions"] = f"captions file {exc}"
        except OSError as exc:
            errors["captions"] = f"captions file {captions.strip()!r} cannot be read: {exc}"
    return errors, root, captions_path


def import_job_start(
    *, name: str, folder: str, captions: str = "", created_by=None, send: bool = True
) -> ImportJob:
    """Check an import request and queue it. Bad input raises ValidationError by field
    (name, folder, captions) and queues nothing."""
    name = name.strip()
    errors, root, captions_path = _checked_paths(folder, captions)
    if not NAME_RE.match(name):
        errors["name"] = f"dataset name {name!r} must be letters, digits, '-' or '_' (a slug)"
    else:
        existing = Dataset.objects.filter(name=name).first()
        active = next(
            (
                job
                for job in ImportJob.objects.filter(dataset_name=name, status__in=ImportJob.ACTIVE)
                if not job.stalled
            ),
            None,
        )
        if existing is not None and existing.kind != Dataset.Kind.IMAGES:
            errors["name"] = f"dataset {name!r} is an ITR dataset: choose another name"
        elif active is not None:
            errors["name"] = (
                f"an import of {name} is already {active.status} (job {active.pk}): wait for it "
                f"to finish"
            )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        job = ImportJob.objects.create(
            dataset_name=name,
            folder=str(root),
            captions=str(captions_path or ""),
            created_by=created_by,
        )
        if send:
            transaction.on_commit(lambda: _send(job.pk))
    return job


def _send(job_id: int) -> None:
    from annotate.datasets.tasks import import_dataset

    import_dataset.apply_async((job_id,), queue="default")


class _ProgressWriter:
    """The importer's `progress(done, total)` callback: writes the job row at most once per
    PROGRESS_EVERY_S (and at the end), so a million images cost a few hundred updates."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and done != total:
            return
        self.last = now
        ImportJob.objects.filter(pk=self.job_id).update(
            done=done, total=total, heartbeat=timezone.now()
        )


def import_job_run(*, job_id: int) -> str:
    """Run a queued job (or one whose worker died: it is imported again, which only updates).
    A finished job is left alone. Returns what happened."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in ImportJob.ACTIVE:
        return "skipped"
    now = timezone.now()
    ImportJob.objects.filter(pk=job_id).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, heartbeat=now, error=""
    )
    ImportJob.objects.filter(pk=job_id, started__isnull=True).update(started=now)
    errors, _, _ = _checked_paths(job.folder, job.captions)  # the folder may have gone since
    if errors:
        import_job_fail(job_id=job_id, message=" ".join(errors.values()))
        return "failed"
    try:
        result = dataset_import(
            name=job.dataset_name,
            folder=job.folder,
            captions=job.captions or None,
            progress=_ProgressWriter(job_id),
        )
    except DatasetImportError as exc:
        import_job_fail(job_id=job_id, message=str(exc))
        return "failed"
    ImportJob.objects.filter(pk=job_id).update(
        status=Status.SUCCEEDED,
        finished=timezone.now(),
        heartbeat=timezone.now(),
        dataset_id=result.dataset_id,
        done=result.images,
        total=result.images,
        created_items=result.created,
        updated_items=result.updated,
        unreadable_items=result.unreadable,
        result={**result.as_dict(), "summary": result.summary()},
    )
    return "succeeded"


def import_job_fail(*, job_id: int, message: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=Status.FAILED, error=message[:5000], finished=timezone.now()
    )
