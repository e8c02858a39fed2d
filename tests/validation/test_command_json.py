"""Every management command with `--json`: standard output is exactly one JSON document, and
the summaries, warnings and progress bars people read go to standard error."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from annotate.validation.models import Sample
from annotate.validation.services import verdict_record
from tests.conftest import ROOT, child_env
from tests.datasets.conftest import write_jpeg
from tests.validation.conftest import build_run

pytestmark = pytest.mark.django_db


def command(*args: str) -> tuple[dict, str]:
    """Run a command with --json; (the parsed standard output, standard error)."""
    out, err = StringIO(), StringIO()
    call_command(*args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_import_dataset(dataset, image_root: Path) -> None:
    folder = image_root / "photos"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_jpeg(folder / name)
    (folder / "junk.jpg").write_bytes(b"not an image")
    data, err = command("import_dataset", "photos", str(folder))
    assert data["dataset"] == "photos"
    assert data["images"] == 4
    assert data["unreadable"] == 1
    assert "4/4" in err  # the progress bar
    assert "unreadable: junk.jpg" in err  # the summary people read


def test_import_taxonomy(db, tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("beach\nforest\n")
    flags = tmp_path / "io.txt"
    flags.write_text("beach 2\nvolcano 1\n")  # volcano: not a label, a warning
    data, err = command("import_taxonomy", "t", str(path), "--indoor-outdoor", str(flags))
    assert data["labels"] == 2
    assert "2/2" in err
    assert "warning:" in err


def test_draw_sample_and_thresholds(dataset, taxonomy, ann) -> None:
    run = build_run(dataset, taxonomy, [6, 6, 6])
    data, err = command("draw_sample", str(run.pk), "--classes", "2", "--per-class", "3")
    assert data["progress"]["items"] == 6
    assert f"sample {data['id']}: 6 items" in err
    assert "annotate at" in err
    sample = Sample.objects.get(pk=data["id"])
    for item in sample.items.select_related("sample"):
        verdict_record(sample_item=item, annotator=ann, value="hit")
    table, err = command("thresholds", str(sample.pk))
    assert table["sample"] == sample.pk
    assert table["decided"] == 6
    assert err == ""


def test_import_predictions(dataset, taxonomy, tmp_path: Path) -> None:
    build_run(dataset, taxonomy, [2])  # items img...-000000.jpg, img...-000001.jpg
    first = dataset.items.order_by("id").first()
    path = tmp_path / "preds.csv"
    path.write_text(f"{first.external_id},label 00,0.9\nnope.jpg,label 00,0.5\n")
    data, err = command("import_predictions", "demo", "places", str(path))
    assert data["predictions"] == 1
    assert data["skipped"] == {"unknown item": 1}
    assert f"Run {data['run']}: 1 predictions imported, skipped" in err


def test_classify_queued(dataset, taxonomy) -> None:
    """Without --wait: the run is queued for the workers (none here: the test's transaction
    never commits, so nothing is sent)."""
    build_run(dataset, taxonomy, [2])  # two items to classify
    data, err = command(
        "classify", "demo", "--taxonomy", "places", "--model", "ViT-B-32", "--weights", "openai"
    )
    assert data["status"] == "queued"
    assert f"Run {data['run']} queued" in err
    assert "follow it at" in err


@pytest.mark.torch
def test_classify_sync_draws_a_bar_on_stderr(dataset, settings) -> None:
    from classifier.engine import write_random_checkpoint
    from tests.classifier.conftest import LABELS, add_items, make_taxonomy

    # Checkpoints load only from the model folders (by default the media models folder).
    roots = getattr(settings, "SIEVE_MODEL_ROOTS", None) or [Path(settings.MEDIA_ROOT) / "models"]
    models = Path(roots[0])
    models.mkdir(parents=True, exist_ok=True)
    checkpoint = write_random_checkpoint(models / "sieve-tiny.pt")
    make_taxonomy("mini", LABELS)
    add_items(dataset, 3)
    data, err = command(
        "classify", "demo", "--taxonomy", "mini", "--model", "sieve-tiny",
        "--weights", str(checkpoint), "--sync",
    )  # fmt: skip
    assert data["status"] == "succeeded"
    assert data["predicted"] == 3
    assert "3/3" in err
    assert f"Run {data['run']} succeeded: 3 predictions" in err


@pytest.mark.django_db(transaction=True)
def test_a_child_process_prints_only_json_on_stdout(tmp_path: Path) -> None:
    """The real streams: tqdm and the summary write to the process's standard error."""
    path = tmp_path / "labels.txt"
    path.write_text("beach\nforest\ndesert\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "import_taxonomy", "child", str(path), "--json"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["labels"] == 3
    assert "3/3" in result.stderr
    assert "child: 3 labels" in result.stderr
