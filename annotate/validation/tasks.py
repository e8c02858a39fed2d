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
