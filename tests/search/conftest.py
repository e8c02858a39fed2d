"""Fixtures of the search, near-duplicate and suspects tests: the demo seeded once per module
(the trained demo model is trained once per session and copied in), and a helper to call the
API as a given user."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from annotate.datasets.demo import DEMO_MODEL_FILE
from annotate.datasets.models import Dataset
from classifier.models import ClassificationRun
from tests.datasets.test_commands import seed_demo


@dataclass
class Demo:
    summary: dict
    storage: dict  # the settings the demo lives under (override_settings keywords)
    dataset: Dataset
    run: ClassificationRun


@pytest.fixture(scope="session")
def demo_model_file(tmp_path_factory) -> Path:
    """The trained demo model, once per session (about a minute of CPU)."""
    return tmp_path_factory.mktemp("demo-model") / DEMO_MODEL_FILE


@pytest.fixture(scope="module")
def demo(tmp_path_factory, django_db_setup, django_db_blocker, demo_model_file) -> Demo:
    """seed_demo into the module's own folders (committed rows, so a worker sees them). Tests
    using it must not be transactional (a flush would empty the demo) and must apply
    `demo.storage` (the `demo_storage` fixture does)."""
    root = tmp_path_factory.mktemp("demo")
    (root / "images").mkdir()
    models = root / "media" / "models"
    models.mkdir(parents=True)
    if demo_model_file.exists():
        shutil.copy2(demo_model_file, models / DEMO_MODEL_FILE)
    storage = {
        "SIEVE_IMAGE_ROOTS": [(root / "images").resolve()],
        "MEDIA_ROOT": root / "media",
        "SIEVE_MODEL_ROOTS": [models.resolve()],
    }
    with override_settings(DEBUG=True, **storage), django_db_blocker.unblock():
        summary, _ = seed_demo("--url", "http://127.0.0.1:8123/")
        if not demo_model_file.exists():
            shutil.copy2(models / DEMO_MODEL_FILE, demo_model_file)
        dataset = Dataset.objects.get(name="demo")
        run = ClassificationRun.objects.get(pk=summary["demo_run"]["id"])
    yield Demo(summary, storage, dataset, run)
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def demo_storage(demo, settings) -> Demo:
    """The demo, with this test's settings pointing at its folders (and a worker started by the
    test, which inherits them)."""
    for name, value in demo.storage.items():
        setattr(settings, name, value)
    return demo
