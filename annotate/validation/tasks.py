"""Celery tasks of the validation app (found by Celery's autodiscovery of `tasks` modules)."""

import logging

from celery import shared_task

from annotate.validation.probing import probe_train
from classifier.services import run_fail

log = logging.getLogger(__name__)


@shared_task(name="validation.train_probe", acks_late=True, reject_on_worker_lost=True)
def train_probe(run_id: int) -> str:
    """Train a probe run and write its predictions (docs/architecture.md#probe). A worker
    killed meanwhile leaves the message unacknowledged: another worker starts it again."""
    try:
        return probe_train(run_id=run_id)
    except Exception as exc:
        log.exception("probe run %s failed", run_id)
        run_fail(run_id=run_id, message=f"probe: {type(exc).__name__}: {exc}")
        return "failed"


@shared_task(name="validation.export_curated", acks_late=True, reject_on_worker_lost=True)
def export_curated(export_id: int) -> str:
    """Write a queued curated export (docs/architecture.md#curated-export). A worker killed
    meanwhile leaves the message unacknowledged: another worker writes it again from the
    start (the file is written under a temporary name and renamed when complete)."""
    from annotate.validation.curated_jobs import curated_export_run

    return curated_export_run(export_id=export_id)
