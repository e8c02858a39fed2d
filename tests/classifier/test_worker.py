"""Real Celery workers: a run survives a SIGKILLed worker; `classify --wait` follows a run."""

import json
import subprocess
import sys
import time

import pytest

from classifier.models import ClassificationRun, Prediction, RunChunk
from classifier.services import run_create, run_sweep
from tests.classifier.conftest import add_file_item, add_items
from tests.conftest import ROOT, child_env

pytestmark = [pytest.mark.worker, pytest.mark.torch, pytest.mark.django_db(transaction=True)]


def wait_for(condition, timeout: float = 60, every: float = 0.05, on_tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if on_tick:
            on_tick()
        time.sleep(every)
    raise AssertionError("timed out")


def test_run_completes_after_worker_is_killed(
    dataset, taxonomy, tiny_checkpoint, start_worker, monkeypatch, settings, ada
) -> None:
    # One image per batch and few, long chunks: a chunk is part-way through for most of the
    # run, so the kill below lands inside one (a kill between two chunks proves less).
    settings.SIEVE_CHUNK_SIZE = 33
    monkeypatch.setenv("SIEVE_BATCH_SIZE", "1")
    monkeypatch.setenv("SIEVE_DECODE_WORKERS", "1")
    add_items(dataset, 64)
    add_file_item(dataset, "broken.jpg", b"not a jpeg at all")
    add_file_item(dataset, "gone.jpg", None)  # the file does not exist
    first = start_worker()
    run = run_create(
        dataset=dataset, taxonomy=taxonomy, model="sieve-tiny", weights=str(tiny_checkpoint),
        created_by=ada,
    )  # fmt: skip

    def chunk_part_done() -> RunChunk | None:
        for chunk in run.chunks.filter(status=RunChunk.Status.RUNNING):
            done = Prediction.objects.filter(
                run=run, item__gte=chunk.first_item_id, item__lte=chunk.last_item_id
            ).count()
            if 0 < done < chunk.size - 2:
                return chunk
        return None

    try:
        wait_for(lambda: chunk_part_done() is not None, every=0.01)
    except AssertionError:
        raise AssertionError("".join(first.output[-60:])) from None
    first.kill()  # SIGKILL the whole worker, mid-chunk
    run.refresh_from_db()
    assert run.status == ClassificationRun.Status.RUNNING
    assert Prediction.objects.filter(run=run).count() < 64
    interrupted = run.chunks.filter(status=RunChunk.Status.RUNNING).get()

    start_worker()
    last_sweep = [time.monotonic()]

    def sweep() -> None:  # what `classify --wait` does periodically
        if time.monotonic() - last_sweep[0] > 1:
            run_sweep(run=run, stale_after=2)
            last_sweep[0] = time.monotonic()

    def finished() -> bool:
        run.refresh_from_db()
        return run.status in ClassificationRun.TERMINAL

    wait_for(finished, timeout=180, every=0.2, on_tick=sweep)
    assert run.status == ClassificationRun.Status.SUCCEEDED, run.error
    predictions = Prediction.objects.filter(run=run)
    assert predictions.count() == 64
    assert predictions.values("item").distinct().count() == 64
    assert run.unreadable == {"not an image": 1, "missing file": 1}
    interrupted.refresh_from_db()
    assert interrupted.attempts >= 2
    assert interrupted.status == RunChunk.Status.DONE


def test_classify_command_waits_for_a_worker(
    dataset, taxonomy, tiny_checkpoint, start_worker
) -> None:
    add_items(dataset, 12)
    start_worker()
    result = subprocess.run(
        [sys.executable, "manage.py", "classify", "demo", "--taxonomy", taxonomy.name,
         "--model", "sieve-tiny", "--weights", str(tiny_checkpoint), "--wait", "--json"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert summary["predicted"] == 12
    assert "items/s" in result.stderr
    assert Prediction.objects.filter(run_id=summary["run"]).count() == 12


def test_rescoring_runs_on_a_default_queue_worker(
    dataset, taxonomy, tiny_checkpoint, start_worker
) -> None:
    """With the cache filled, a new run needs no `gpu` worker: a `default` one re-scores it."""
    from io import StringIO

    from django.core.management import call_command

    add_items(dataset, 6)
    call_command("classify", "demo", "--taxonomy", taxonomy.name, "--model", "sieve-tiny",
                 "--weights", str(tiny_checkpoint), "--sync", stdout=StringIO(),
                 stderr=StringIO())  # fmt: skip
    start_worker(queues="default")
    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(tiny_checkpoint), ensemble="weighted")  # fmt: skip
    assert run.source == "cache"

    def finished() -> bool:
        run.refresh_from_db()
        return run.status in ClassificationRun.TERMINAL

    wait_for(finished, timeout=120, every=0.2)
    assert run.status == "succeeded", run.error
    assert Prediction.objects.filter(run=run).count() == 6
