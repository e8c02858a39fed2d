"""Celery tasks of the datasets app: the console's dataset imports, on queue `default`
(docs/architecture.md#import-jobs). The task takes a job id and calls the service; the
`import_dataset` command runs the same importer in its own process."""

import logging

from celery import shared_task

from annotate.datasets.import_jobs import import_job_fail, import_job_run

log = logging.getLogger(__name__)


# acks_late + reject_on_worker_lost: a job whose worker was killed is delivered again, and
# importing again only updates the items (upserts in one transaction).
@shared_task(name="datasets.import_dataset", acks_late=True, reject_on_worker_lost=True)
def import_dataset(job_id: int) -> str:
    try:
        return import_job_run(job_id=job_id)
    except Exception as exc:
        # No blind retry (it could repeat forever): the job fails visibly with the reason.
        log.exception("import job %s failed", job_id)
        import_job_fail(job_id=job_id, message=f"{type(exc).__name__}: {exc}")
        return "failed"
