"""Production settings and compose.yaml."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path) -> dict[str, str]:
    """A production-like environment: DEBUG off, a real key, its own var folder."""
    return {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50)[:50],
        "ALLOWED_HOSTS": "x",
        "SIEVE_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }


def test_collectstatic_passes_with_production_settings(tmp_path: Path) -> None:
    """The Dockerfile's build step: hashed, compressed copies of every static file."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "var" / "staticfiles" / "staticfiles.json").read_text())
    for name in ("vendor/chart-4.6.1.umd.min.js", "vendor/htmx-2.0.11.min.js", "css/sieve.css"):
        hashed = tmp_path / "var" / "staticfiles" / manifest["paths"][name]
        assert hashed.exists(), name
        assert Path(f"{hashed}.gz").exists(), name


@pytest.mark.parametrize(
    "extra",
    [
        ["--tag", "security"],  # Django's own deploy checks (settings)
        [],  # everything, including drf-spectacular's schema check (every app's API)
    ],
)
def test_check_deploy_passes_with_production_settings(tmp_path: Path, extra: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING", *extra],
        cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("debug", ["0", None])  # None: DEBUG unset, so off by default
def test_production_refuses_missing_or_placeholder_secret(tmp_path: Path, debug) -> None:
    for key in ("", "dev-only-insecure-key-do-not-use-in-production"):
        env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": key, "ALLOWED_HOSTS": "x"}
        env["SIEVE_VAR_DIR"] = str(tmp_path / "var")
        if debug is not None:
            env["DEBUG"] = debug
        result = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode != 0
        assert "SECRET_KEY" in result.stderr


def test_debug_is_off_unless_set(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["DEBUG"]
    env["DJANGO_SETTINGS_MODULE"] = "annotate.settings"
    code = "from django.conf import settings; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_make_run_and_tests_turn_debug_on_and_the_image_does_not() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "run test: export DEBUG = 1" in makefile
    # pytest-env sets it before the settings load; worker and command children inherit it
    assert os.environ["DEBUG"] == "1"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DEBUG=1" not in dockerfile
    assert "DEBUG=true" not in dockerfile.lower()
    assert "ENV DEBUG=0" in dockerfile  # the image's command runs with DEBUG off


def test_compose_file_names_the_services_and_queues() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "gpu-worker"} <= set(services)
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in services:
        assert "healthcheck" in services[name], name
    web_command = " ".join(services["web"]["command"])
    assert "migrate" in web_command
    assert "gunicorn annotate.wsgi" in web_command
    worker = services["worker"]["command"]
    assert worker[worker.index("-Q") + 1] == "default"
    gpu = services["gpu-worker"]
    assert gpu["command"][gpu["command"].index("-Q") + 1] == "gpu"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    for name in ("web", "worker", "gpu-worker"):
        assert "media:/data/media" in services[name]["volumes"]
        assert "images:/data/images" in services[name]["volumes"]
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["DEBUG"] == "0"
        assert env["CELERY_BROKER_URL"].startswith("redis://")
    assert gpu["build"]["args"]["EXTRAS"] == "gpu"
    # re-scoring on `default` needs torch; one beat schedules the dead-chunk sweep
    assert services["worker"]["build"]["args"]["EXTRAS"] == "gpu"
    assert services["beat"]["command"][:4] == ["celery", "-A", "annotate", "beat"]
    assert (ROOT / "Dockerfile").exists()
