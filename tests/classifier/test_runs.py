"""Runs through the `classify` and `import_predictions` commands (their synchronous path:
the same task code a worker runs), the embedding cache, cancel/resume/sweep."""

import json
import os
import shutil
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from PIL import Image

from annotate.datasets.importers import dataset_import
from annotate.datasets.models import Dataset, Item
from classifier.models import ClassificationRun, Prediction, RunChunk
from classifier.services import run_cancel, run_create, run_resume, run_sweep
from classifier.tasks import chunk_process
from tests.classifier.conftest import (
    LABELS,
    add_file_item,
    add_items,
    jpeg_bytes,
    make_taxonomy,
)
from tests.datasets.conftest import bomb_png_bytes

pytestmark = pytest.mark.torch


def classify(*args: str) -> dict:
    out = StringIO()
    call_command("classify", "demo", *args, "--sync", "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def tiny(checkpoint: Path, *extra: str) -> list[str]:
    return ["--model", "sieve-tiny", "--weights", str(checkpoint), *extra]


def test_classify_end_to_end_with_bad_images(dataset, taxonomy, tiny_checkpoint) -> None:
    add_items(dataset, 10)
    add_file_item(dataset, "junk.jpg", b"nope")
    add_file_item(dataset, "gone.jpg", None)
    Item.objects.create(dataset=dataset, external_id="no-image", caption="only text")
    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint, "--ensemble",
                       "conditional", "--tau", "0.5"))  # fmt: skip
    run = ClassificationRun.objects.get(pk=summary["run"])
    assert summary["status"] == "succeeded"
    assert run.status == "succeeded"
    assert (run.ensemble, run.condition_threshold) == ("conditional", 0.5)
    assert summary["predicted"] == 10
    assert summary["total"] == 13
    assert run.unreadable == {"not an image": 1, "missing file": 1, "no image": 1}
    assert run.chunks.count() == 2  # 13 items in chunks of 8
    predictions = Prediction.objects.filter(run=run)
    assert predictions.values("item").distinct().count() == 10
    p = predictions.first()
    assert len(p.top5) == 5
    assert p.top5[0] == [p.label_id, pytest.approx(p.probability)]
    assert sum(prob for _, prob in p.top5) <= 1.0 + 1e-6
    assert p.image_probability is not None
    assert p.text_probability is not None
    junk = Item.objects.get(external_id="junk.jpg")
    assert (junk.status, junk.status_reason) == ("unreadable", "not an image")


def test_one_label_and_empty_dataset(dataset, tiny_checkpoint) -> None:
    make_taxonomy("single", ["beach"])
    summary = classify("--taxonomy", "single", *tiny(tiny_checkpoint))
    assert summary["status"] == "succeeded"
    assert summary["total"] == 0
    add_items(dataset, 3)
    summary = classify("--taxonomy", "single", *tiny(tiny_checkpoint), "--no-cache")
    probs = Prediction.objects.filter(run_id=summary["run"]).values_list("probability", flat=True)
    assert list(probs) == [pytest.approx(1.0)] * 3


def test_bad_model_specs(dataset, taxonomy, tiny_checkpoint, tmp_path, settings) -> None:
    add_items(dataset, 2)
    with pytest.raises(CommandError, match="Unknown architecture"):
        classify("--taxonomy", taxonomy.name, "--model", "ViT-Z-99")
    with pytest.raises(CommandError, match="Checkpoint not found"):
        classify("--taxonomy", taxonomy.name, "--model", "sieve-tiny", "--weights",
                 str(tmp_path / "nope.pt"))  # fmt: skip
    outside = tmp_path / "elsewhere.pt"
    shutil.copy(tiny_checkpoint, outside)
    with pytest.raises(CommandError, match="SIEVE_MODEL_ROOTS"):
        classify("--taxonomy", taxonomy.name, *tiny(outside))
    assert not ClassificationRun.objects.exists()  # refused before creating a run
    bad = Path(settings.MEDIA_ROOT) / "models" / "bad.pt"
    bad.parent.mkdir(parents=True)
    torch.save({"not": "a clip"}, bad)
    with pytest.raises(CommandError, match="state dict"):
        classify("--taxonomy", taxonomy.name, *tiny(bad))
    run = ClassificationRun.objects.get()
    assert run.status == "failed"
    assert "state dict" in run.error


def test_hub_weights_offline_fail_the_run_at_once(
    dataset, taxonomy, monkeypatch, tmp_path, settings
) -> None:
    settings.HF_HUB_OFFLINE = True
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    add_items(dataset, 2)
    with pytest.raises(CommandError, match=r"--weights /path/to/checkpoint\.pt"):
        classify("--taxonomy", taxonomy.name, "--model", "ViT-B-32", "--weights", "openai")
    run = ClassificationRun.objects.get()
    assert run.status == "failed"
    assert run.chunks.filter(status="cancelled").exists()


def test_rescoring_from_the_cache_opens_no_image(dataset, taxonomy, tiny_checkpoint) -> None:
    add_items(dataset, 12, caption="a day at the beach")
    add_file_item(dataset, "junk.jpg", b"nope")
    first = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    # Every image is gone now: a run that touched one would find it missing.
    shutil.rmtree(dataset.image_root)
    os.makedirs(dataset.image_root)
    make_taxonomy("other", [*LABELS, "harbor", "museum"])
    second = classify("--taxonomy", "other", *tiny(tiny_checkpoint, "--ensemble", "weighted"))
    run = ClassificationRun.objects.get(pk=second["run"])
    assert run.source == "cache"
    assert run.status == "succeeded"
    assert not run.chunks.exists()
    assert second["predicted"] == first["predicted"] == 12
    assert run.unreadable == {"not an image": 1}
    assert Prediction.objects.filter(run=run, text_probability__isnull=False).count() == 12
    assert Prediction.objects.filter(run=run, label__taxonomy__name="other").count() == 12

    # Same taxonomy + ensemble as a full run: the cache gives the same predictions.
    again = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))

    def labels(run_id):
        return list(Prediction.objects.filter(run_id=run_id).order_by("item")
                    .values_list("item", "label", "top5"))  # fmt: skip

    a, b = labels(first["run"]), labels(again["run"])
    assert [(i, lab) for i, lab, _ in a] == [(i, lab) for i, lab, _ in b]
    for (_, _, ta), (_, _, tb) in zip(a, b, strict=True):
        assert [t[1] for t in ta] == pytest.approx([t[1] for t in tb], abs=2e-3)  # float16 cache


def test_rescore_falls_back_to_the_gpu_when_the_dataset_grew(
    dataset, taxonomy, tiny_checkpoint
) -> None:
    add_items(dataset, 4)
    classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    add_items(dataset, 3, start=4)
    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    run = ClassificationRun.objects.get(pk=summary["run"])
    assert run.source == "model"
    assert summary["predicted"] == 7


def test_cancel_stops_chunks_and_resume_sends_only_missing(
    dataset, taxonomy, tiny_checkpoint, django_capture_on_commit_callbacks
) -> None:
    add_items(dataset, 20)  # 3 chunks of 8
    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(tiny_checkpoint), send=False)  # fmt: skip
    first, second, third = run.chunks.order_by("index")
    assert chunk_process(chunk_id=first.pk) == "done"
    run_cancel(run=run)
    assert chunk_process(chunk_id=second.pk) == "skipped"  # a revoked chunk that still ran
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert Prediction.objects.filter(run=run).count() == 8
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_resume(run=run)
    assert len(callbacks) == 1
    assert set(run.chunks.filter(status="queued").values_list("pk", flat=True)) == {
        second.pk, third.pk,
    }  # fmt: skip
    for chunk in (second, third, first):  # a re-delivered done chunk is a no-op
        chunk_process(chunk_id=chunk.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert Prediction.objects.filter(run=run).count() == 20


def test_a_running_chunk_stops_at_the_next_batch(
    dataset, taxonomy, tiny_checkpoint, monkeypatch
) -> None:
    add_items(dataset, 8)  # one chunk, two batches of 4
    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(tiny_checkpoint), send=False)  # fmt: skip
    from classifier import tasks

    write = tasks.predictions_write

    def write_then_cancel(**kwargs) -> int:  # an admin cancels while the first batch is stored
        written = write(**kwargs)
        run_cancel(run=ClassificationRun.objects.get(pk=run.pk))
        return written

    monkeypatch.setattr(tasks, "predictions_write", write_then_cancel)
    assert chunk_process(chunk_id=run.chunks.get().pk) == "stopped"
    assert Prediction.objects.filter(run=run).count() == 4
    assert run.chunks.get().status == "cancelled"


def test_sweep_redispatches_chunks_of_dead_workers(
    dataset, taxonomy, tiny_checkpoint, django_capture_on_commit_callbacks
) -> None:
    add_items(dataset, 20)
    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(tiny_checkpoint), send=False)  # fmt: skip
    dead, alive, _ = run.chunks.order_by("index")
    old = timezone.now() - timezone.timedelta(minutes=30)
    RunChunk.objects.filter(pk=dead.pk).update(status="running", heartbeat=old, task_id="t-1")
    RunChunk.objects.filter(pk=alive.pk).update(status="running", heartbeat=timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert run_sweep(run=run) == 1
    assert len(callbacks) == 1
    dead.refresh_from_db()
    assert dead.status == "queued"
    assert dead.task_id != "t-1"
    assert RunChunk.objects.get(pk=alive.pk).status == "running"


def test_import_predictions(dataset, taxonomy, tmp_path) -> None:
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"img{n}.jpg", image_path=f"img{n}.jpg") for n in range(4)
    )
    csv_file = tmp_path / "preds.csv"
    csv_file.write_text(
        "external_id,label,probability\n"
        "img0.jpg,/b/beach,0.9\n"  # by key
        "img1.jpg,kitchen,0.4\n"  # by name
        "img2.jpg,volcano,0.5\n"  # unknown label
        "nope.jpg,beach,0.5\n"  # unknown item
        "img3.jpg,beach,1.7\n"  # bad probability
        "img1.jpg,street,0.6\n"  # repeated: the last row wins
    )
    out = StringIO()
    call_command("import_predictions", "demo", taxonomy.name, str(csv_file), "--name", "ext",
                 "--json", stdout=out)  # fmt: skip
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["predictions"] == 2
    assert summary["skipped"] == {"unknown item": 1, "unknown label": 1, "bad probability": 1}
    run = ClassificationRun.objects.get(pk=summary["run"])
    assert (run.name, run.status, run.ensemble, run.source) == ("ext", "succeeded", "external",
                                                               "import")  # fmt: skip
    rows = dict(Prediction.objects.filter(run=run).values_list("item__external_id", "label__name"))
    assert rows == {"img0.jpg": "beach", "img1.jpg": "street"}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    with pytest.raises(CommandError, match="3 columns"):
        call_command("import_predictions", "demo", taxonomy.name, str(bad))


def test_beat_sweeps_dead_chunks_of_every_active_run(
    dataset, taxonomy, tiny_checkpoint, django_capture_on_commit_callbacks
) -> None:
    from django.conf import settings

    from annotate.celery import app
    from classifier.tasks import sweep_runs

    entry = settings.CELERY_BEAT_SCHEDULE["sweep-dead-chunks"]
    assert app.tasks[entry["task"]].name == sweep_runs.name
    assert entry["options"]["queue"] == "default"
    add_items(dataset, 20)
    runs = [
        run_create(
            dataset=dataset,
            taxonomy=taxonomy,
            model="sieve-tiny",
            weights=str(tiny_checkpoint),
            send=False,
        )
        for _ in range(2)
    ]
    old = timezone.now() - timezone.timedelta(minutes=30)
    for run in runs:
        RunChunk.objects.filter(pk=run.chunks.first().pk).update(status="running", heartbeat=old)
    with django_capture_on_commit_callbacks(execute=False):
        assert sweep_runs() == 2
    assert not RunChunk.objects.filter(status="running").exists()


def test_a_run_keeps_the_imports_precise_reasons(dataset, taxonomy, tiny_checkpoint) -> None:
    """The import says exactly what is wrong with a file; a run's coarser reason does not
    replace it. A file that breaks after the import gets the run's reason, with its detail."""
    root = Path(dataset.image_root)
    add_items(dataset, 2)
    (root / "zero.jpg").write_bytes(b"")
    outside = root.parent.parent / "elsewhere.jpg"  # outside every image root
    outside.write_bytes(jpeg_bytes(5))
    (root / "link.jpg").symlink_to(outside)
    (root / "bomb.png").write_bytes(bomb_png_bytes())
    Image.new("L", (1, 500)).save(root / "strip.png")
    Image.new("RGB", (30, 30)).save(root / "later.png")
    dataset_import(name="demo", folder=root)
    imported = dict(Item.objects.values_list("external_id", "status_reason"))
    assert imported["zero.jpg"] == "empty file"
    assert imported["strip.png"].startswith("extreme aspect ratio: 1x500 is 500:1")
    (root / "later.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # broken after the import

    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    run = ClassificationRun.objects.get(pk=summary["run"])
    assert run.status == "succeeded"
    assert summary["predicted"] == 2
    assert run.unreadable == {  # counted by coarse reason
        "unreadable": 1, "unsafe path": 1, "decompression bomb": 1, "extreme aspect ratio": 1,
        "not an image": 1,
    }  # fmt: skip
    after = {i.external_id: (i.status, i.status_reason) for i in Item.objects.all()}
    for name in ("zero.jpg", "link.jpg", "bomb.png", "strip.png"):
        assert after[name] == ("unreadable", imported[name]), name
    assert after["later.png"][0] == "unreadable"
    assert after["later.png"][1].startswith("unreadable: ")  # the decoder's own words follow


def test_the_worker_reads_images_only_through_the_safe_path_check(
    dataset, taxonomy, tiny_checkpoint, image_root, tmp_path
) -> None:
    """The same check as the import and the image views: inside the dataset folder and
    SIEVE_IMAGE_ROOTS, symlinks resolved. A tampered image_path is never read."""
    add_items(dataset, 1)
    secret = image_root / "secret.jpg"  # inside the roots, outside the dataset
    secret.write_bytes(jpeg_bytes(7))
    (Path(dataset.image_root) / "inner-link.jpg").symlink_to(secret)
    for path in ("../secret.jpg", str(secret), "inner-link.jpg"):
        Item.objects.create(dataset=dataset, external_id=path, image_path=path)
    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    run = ClassificationRun.objects.get(pk=summary["run"])
    assert summary["predicted"] == 1
    assert run.unreadable == {"unsafe path": 3}
    assert set(
        Item.objects.filter(status="unreadable").values_list("status_reason", flat=True)
    ) == {"unsafe path: outside the dataset folder or SIEVE_IMAGE_ROOTS"}
    # A dataset folder outside SIEVE_IMAGE_ROOTS: nothing is read from it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "img00000.jpg").write_bytes(jpeg_bytes(0))
    Dataset.objects.filter(pk=dataset.pk).update(image_root=str(elsewhere))
    Item.objects.update(status="ok", status_reason="")
    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint), "--no-cache")
    assert summary["predicted"] == 0


def test_undecodable_file_name_is_classified(dataset, taxonomy, tiny_checkpoint) -> None:
    root = Path(dataset.image_root)
    raw = os.fsencode(root) + b"/latin1-\xff\xe9-name.jpg"
    with open(raw, "wb") as fh:
        fh.write(jpeg_bytes(3))
    dataset_import(name="demo", folder=root)
    item = Item.objects.get()
    assert item.external_id == "latin1-\\xff\\xe9-name.jpg"
    assert item.status == "ok"
    summary = classify("--taxonomy", taxonomy.name, *tiny(tiny_checkpoint))
    assert summary["predicted"] == 1
    assert Prediction.objects.get().item == item


def test_the_worker_checks_the_checkpoint_path_again(
    dataset, taxonomy, tiny_checkpoint, tmp_path
) -> None:
    """A run row whose checkpoint left the model roots since it was created (or was written
    around run_create) fails with the reason; the file is never loaded."""
    add_items(dataset, 2)
    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(tiny_checkpoint), send=False)  # fmt: skip
    ClassificationRun.objects.filter(pk=run.pk).update(weights="/proc/self/environ")
    assert chunk_process(chunk_id=run.chunks.get().pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed"
    assert "SIEVE_MODEL_ROOTS" in run.error
    assert not Prediction.objects.exists()
