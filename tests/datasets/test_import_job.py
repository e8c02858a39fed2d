"""Dataset imports as background jobs (docs/architecture.md#import-jobs): the checks before
anything is queued, the job run as a worker runs it (progress, failures, a second delivery),
and a real Celery worker."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from kombu import Connection

from annotate.datasets import import_jobs
from annotate.datasets.import_jobs import import_job_run, import_job_start
from annotate.datasets.models import Dataset, ImportJob, Item
from annotate.datasets.tasks import import_dataset
from tests.datasets.conftest import write_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(ada) -> Client:
    client = Client()
    client.force_login(ada)
    return client


def refused(**request) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        import_job_start(**{"name": "photos", "folder": "", **request})
    assert not ImportJob.objects.exists()
    return caught.value.message_dict


def test_bad_requests_are_refused_before_anything_is_queued(
    folder: Path, image_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write_jpeg(outside / "a.jpg")
    assert "outside the allowed image roots" in refused(folder=str(outside))["folder"][0]
    assert refused(folder=str(image_root / "nope"))["folder"] == [
        f"image folder {str(image_root / 'nope')!r} does not exist"
    ]
    assert "is not a folder" in refused(folder=str(folder / "a.jpg"))["folder"][0]
    assert "a slug" in refused(name="../x", folder=str(folder))["name"][0]
    errors = refused(folder=str(folder), captions="/etc/passwd")
    assert "captions file '/etc/passwd' is outside the allowed image roots" in errors["captions"][0]
    assert "does not exist" in refused(folder=str(folder), captions="nope.csv")["captions"][0]
    Dataset.objects.create(name="tweets", kind=Dataset.Kind.ITR)
    assert (
        "'tweets' is an ITR dataset: choose another name"
        in refused(name="tweets", folder=str(folder))["name"][0]
    )


def test_one_active_import_per_dataset(folder: Path) -> None:
    first = import_job_start(name="photos", folder=str(folder), send=False)
    with pytest.raises(ValidationError, match=f"already queued \\(job {first.pk}\\)"):
        import_job_start(name="photos", folder=str(folder), send=False)
    import_job_run(job_id=first.pk)
    again = import_job_start(name="photos", folder=str(folder), send=False)
    assert again.status == "queued"


def test_a_stalled_job_no_longer_blocks_a_new_import(folder: Path, admin_client) -> None:
    """A job whose worker died shows it, and importing again is allowed (and harmless)."""
    lost = import_job_start(name="photos", folder=str(folder), send=False)
    long_ago = timezone.now() - ImportJob.STALLED_AFTER - timedelta(minutes=1)
    ImportJob.objects.filter(pk=lost.pk).update(status="running", heartbeat=long_ago)
    body = admin_client.get("/console/datasets/imports/").content.decode()
    assert "its worker may have stopped; importing again is safe" in body
    again = import_job_start(name="photos", folder=str(folder), send=False)
    assert again.pk != lost.pk


def test_a_job_imports_and_reports_its_counts(folder: Path, image_root: Path, ada) -> None:
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (image_root / "captions.csv").write_text("a.jpg,a red square\n")
    job = import_job_start(
        name="photos", folder=str(folder), captions=str(image_root / "captions.csv"),
        created_by=ada, send=False,
    )  # fmt: skip
    assert (job.folder, job.captions) == (str(folder.resolve()), str(image_root / "captions.csv"))
    assert import_job_run(job_id=job.pk) == "succeeded"
    job.refresh_from_db()
    assert (job.status, job.done, job.total, job.percent) == ("succeeded", 4, 4, 100.0)
    assert (job.created_items, job.updated_items, job.unreadable_items) == (4, 0, 1)
    assert job.dataset == Dataset.objects.get(name="photos")
    assert job.result["captioned"] == 1
    assert job.started
    assert job.finished
    assert job.attempts == 1
    assert import_job_run(job_id=job.pk) == "skipped"  # a finished job is left alone


def test_a_second_delivery_updates_and_never_duplicates(folder: Path) -> None:
    """A worker killed mid-import leaves its job running (and nothing written: one
    transaction); the redelivered task imports again."""
    job = import_job_start(name="photos", folder=str(folder), send=False)
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=1, done=2, total=3)
    assert import_dataset(job.pk) == "succeeded"
    job.refresh_from_db()
    assert (job.status, job.attempts, job.created_items) == ("succeeded", 2, 3)
    # The same folder imported by a new job: the items are updated, not added.
    second = import_job_start(name="photos", folder=str(folder), send=False)
    assert import_dataset(second.pk) == "succeeded"
    second.refresh_from_db()
    assert (second.created_items, second.updated_items) == (0, 3)
    assert Item.objects.count() == 3


def test_a_job_failing_midway_records_the_message(folder: Path, monkeypatch) -> None:
    job = import_job_start(name="photos", folder=str(folder), send=False)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("annotate.datasets.importers._write_items", disk_full)
    assert import_dataset(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "OSError: [Errno 28] No space left on device"
    assert (job.done, job.total) == (3, 3)  # the headers were read before the write failed
    assert job.finished is not None
    assert not Dataset.objects.exists()


def test_a_folder_gone_before_the_worker_starts_fails_the_job(folder: Path) -> None:
    job = import_job_start(name="photos", folder=str(folder), send=False)
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    assert import_dataset(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == f"image folder {str(folder)!r} does not exist"


def test_progress_is_written_at_most_once_a_second(folder: Path, monkeypatch) -> None:
    job = import_job_start(name="photos", folder=str(folder), send=False)
    progress = import_jobs._ProgressWriter(job.pk)
    clock = iter([100.0, 100.2, 100.5, 101.3, 101.4, 101.5])
    monkeypatch.setattr(import_jobs.time, "monotonic", lambda: next(clock))
    stored = []
    for done in (500, 1000, 1500, 2000, 2500, 3000):
        progress(done, 3000)
        stored.append(ImportJob.objects.get(pk=job.pk).done)
    assert stored == [500, 500, 500, 2000, 2000, 3000]  # the last call is always written


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job(image_root: Path, start_worker) -> None:
    for n in range(40):
        write_jpeg(image_root / "many" / f"img{n:03d}.jpg")
    start_worker(queues="default")
    job = import_job_start(name="many", folder=str(image_root / "many"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status not in ImportJob.ACTIVE:
            break
        time.sleep(0.1)
    assert job.status == "succeeded", job.error
    assert Dataset.objects.get(name="many").items.count() == 40


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_survives_a_killed_worker(image_root: Path, start_worker, settings) -> None:
    """SIGKILL the worker mid-import: nothing was written (one transaction), the broker
    delivers the unacknowledged job again (acks_late), and the second worker imports every
    image exactly once."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("redelivery after a lost worker is Redis's visibility timeout")
    for n in range(6000):
        write_jpeg(image_root / "many" / f"img{n:04d}.jpg", size=(8, 8))
    first = start_worker(queues="default")
    job = import_job_start(name="many", folder=str(image_root / "many"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == "running" and 0 < job.done < 6000:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("".join(first.output[-40:]))
    first.kill()
    job.refresh_from_db()
    assert job.status == "running"
    assert not Item.objects.exists()
    # What Redis does once the visibility timeout (an hour) has passed: the message that the
    # dead worker never acknowledged goes back to its queue.
    with Connection(settings.CELERY_BROKER_URL, transport_options={"visibility_timeout": 0}) as c:
        c.default_channel.qos.restore_visible(num=100, interval=1)
    start_worker(queues="default")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status not in ImportJob.ACTIVE:
            break
        time.sleep(0.2)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    assert job.created_items == 6000
    assert Dataset.objects.get(name="many").items.count() == 6000
