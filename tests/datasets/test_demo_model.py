"""seed_demo's model and study (docs/architecture.md#demo): the demo model is trained on the
demo's drawings, loads through the normal checkpoint path, is often right and sometimes wrong
against the ground truth in metadata["scene"], and a sample with simulated verdicts is under
way. seed_demo runs once for the module (about a minute of training), then once more."""

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from annotate.datasets.demo import DEMO_MODEL_FILE, SCENES
from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label
from annotate.validation.metrics import agreement_table, thresholds_table
from annotate.validation.models import Sample, Verdict
from classifier.models import ClassificationRun, Prediction
from tests.datasets.test_commands import seed_demo

pytestmark = pytest.mark.django_db


@dataclass
class Seeded:
    summary: dict
    text: str
    seconds: float
    storage: dict


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, django_db_setup, django_db_blocker):
    """The default demo (500 images), seeded once into its own folders; the database is
    emptied afterwards, as after a transactional test."""
    root = tmp_path_factory.mktemp("demo")
    (root / "images").mkdir()
    storage = {
        "SIEVE_IMAGE_ROOTS": [(root / "images").resolve()],
        "MEDIA_ROOT": root / "media",
        "SIEVE_MODEL_ROOTS": [(root / "media" / "models").resolve()],
    }
    with override_settings(DEBUG=True, **storage), django_db_blocker.unblock():
        started = time.monotonic()
        summary, text = seed_demo("--url", "http://127.0.0.1:8123/")
        seconds = time.monotonic() - started
    yield Seeded(summary, text, seconds, storage)
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def test_the_demo_model_loads_through_the_normal_checkpoint_path(seeded, settings) -> None:
    from classifier import engine
    from classifier.demo_model import RECIPE_VERSION, demo_model_stamp
    from classifier.services import checkpoint_path

    checkpoint = seeded.summary["checkpoint"]
    assert checkpoint.endswith(f"models/{DEMO_MODEL_FILE}")
    assert seeded.summary["model"]["trained"]
    run = ClassificationRun.objects.get(pk=seeded.summary["demo_run"]["id"])
    assert (run.model, run.status) == ("sieve-tiny", ClassificationRun.Status.SUCCEEDED)
    assert Path(run.weights).resolve() == Path(checkpoint).resolve()
    settings.SIEVE_MODEL_ROOTS = seeded.storage["SIEVE_MODEL_ROOTS"]
    loaded = engine.load_model("sieve-tiny", str(checkpoint_path(run.weights)))
    assert 1.0 < loaded.logit_scale <= 100.0
    assert demo_model_stamp(Path(checkpoint))["version"] == RECIPE_VERSION


def test_every_item_carries_its_scene(seeded) -> None:
    items = Item.objects.filter(dataset__name="demo")
    scenes = Counter(item.metadata.get("scene") for item in items)
    assert scenes == dict.fromkeys(SCENES, 50)
    keys = set(Label.objects.filter(taxonomy__name="places365").values_list("key", flat=True))
    assert set(scenes) <= keys


def test_the_demo_run_is_often_right_and_sometimes_wrong(seeded) -> None:
    figures = seeded.summary["demo_run"]
    rows = list(
        Prediction.objects.filter(run_id=figures["id"]).values_list(
            "label__key", "probability", "item__metadata"
        )
    )
    assert len(rows) == figures["items"] == 500
    accuracy = sum(key == metadata["scene"] for key, _p, metadata in rows) / len(rows)
    share = sum(p >= 0.5 for _k, p, _m in rows) / len(rows)
    assert 0.6 <= accuracy <= 0.9
    assert share >= 0.2
    assert figures["accuracy"] == pytest.approx(accuracy)
    assert figures["share_at_0_5"] == pytest.approx(share)
    # Untrained labels attract nothing: every prediction is one of the drawn scenes.
    assert {key for key, _p, _m in rows} <= set(SCENES)


def test_a_study_is_under_way(seeded) -> None:
    figures = seeded.summary["demo_run"]
    sample = Sample.objects.get(pk=figures["sample"], run_id=figures["id"])
    assert sample.items.count() == figures["sample_items"] == 200
    verdicts = Verdict.objects.filter(sample_item__sample=sample)
    by_annotator = Counter(verdicts.values_list("annotator__username", flat=True))
    assert by_annotator["annotator2"] > 120
    assert 10 <= by_annotator["annotator1"] < 60
    assert sum(by_annotator.values()) == figures["verdicts"]
    assert verdicts.filter(value="miss", corrected_label__isnull=False).exists()
    durations = list(verdicts.values_list("duration_ms", flat=True))
    assert all(300 <= d <= 60_000 for d in durations)
    assert 1500 <= sorted(durations)[len(durations) // 2] <= 4000
    assert thresholds_table(sample=sample)["best_threshold"] > 0
    pairs = agreement_table(sample=sample)["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("annotator1", "annotator2")]
    # Plenty is left for the person who logs in as annotator1.
    assert figures["left_for_annotator1"] >= 40


def test_json_output_and_printed_commands(seeded) -> None:
    summary, text = seeded.summary, seeded.text
    assert summary["url"] == "http://127.0.0.1:8123/"
    assert set(summary["demo_run"]) >= {"id", "accuracy", "share_at_0_5"}
    # DEBUG=1: with DEBUG off and no SECRET_KEY the settings refuse to start.
    assert summary["classify_command"].startswith(
        "DEBUG=1 .venv/bin/python manage.py classify demo --taxonomy places365 --model "
        "sieve-tiny --weights "
    )
    assert "--model ViT-B-32 --weights laion2b_s34b_b79k" in summary["classify_real_command"]
    assert summary["classify_command"] in text
    assert summary["classify_real_command"] in text
    assert "http://127.0.0.1:8123/accounts/login/" in text
    assert f"http://127.0.0.1:8123/samples/{summary['demo_run']['sample']}/" in text
    assert "top-1 accuracy" in text


def test_a_second_seed_keeps_the_model_run_and_verdicts(seeded) -> None:
    checkpoint = Path(seeded.summary["checkpoint"])
    modified = checkpoint.stat().st_mtime_ns
    verdicts = Verdict.objects.count()
    with override_settings(DEBUG=True, **seeded.storage):
        started = time.monotonic()
        summary, text = seed_demo()
        seconds = time.monotonic() - started
    assert not summary["model"]["trained"]
    assert "up to date, kept" in text
    assert checkpoint.stat().st_mtime_ns == modified
    assert summary["demo_run"]["id"] == seeded.summary["demo_run"]["id"]
    assert summary["demo_run"]["sample"] == seeded.summary["demo_run"]["sample"]
    assert Verdict.objects.count() == verdicts
    assert ClassificationRun.objects.count() == 1
    assert seconds < seeded.seconds
    assert Dataset.objects.filter(name="demo").count() == 1
    assert User.objects.filter(username="annotator1").count() == 1
