"""Shared fixtures. Actors: ada the admin, lee the lead, ann and abe the annotators (members),
otto the outsider (a user with no membership)."""

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.db import connection

from annotate.datasets.access import ensure_groups, membership_set
from annotate.datasets.models import Dataset, Role

# Playwright's sync API runs an event loop in the test thread; the ORM calls we make next to it
# are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"


def session_models(tmp_path_factory) -> Path:
    """The session's checkpoint folder (the tiny checkpoint is written there once)."""
    return (tmp_path_factory.getbasetemp() / "models").resolve()


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path: Path, tmp_path_factory) -> None:
    """Every test gets its own image root and media folder; checkpoints load from its media
    models folder (the default root) and the session's checkpoint folder."""
    images = tmp_path / "images"
    images.mkdir()
    settings.SIEVE_IMAGE_ROOTS = [images.resolve()]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SIEVE_MODEL_ROOTS = [
        (tmp_path / "media" / "models").resolve(),
        session_models(tmp_path_factory),
    ]


@pytest.fixture
def image_root(settings) -> Path:
    return settings.SIEVE_IMAGE_ROOTS[0]


def make_user(username: str, group: str | None = None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if group:
        ensure_groups()
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ada(db) -> User:
    return make_user("ada", Role.ADMIN)


@pytest.fixture
def lee(db) -> User:
    return make_user("lee")


@pytest.fixture
def ann(db) -> User:
    return make_user("ann")


@pytest.fixture
def abe(db) -> User:
    return make_user("abe")


@pytest.fixture
def otto(db) -> User:
    return make_user("otto")


@pytest.fixture
def dataset(db, image_root: Path, lee: User, ann: User, abe: User) -> Dataset:
    """An empty dataset whose members are lee (lead), ann and abe (annotators)."""
    folder = image_root / "demo"
    folder.mkdir()
    ds = Dataset.objects.create(name="demo", image_root=str(folder))
    membership_set(dataset=ds, user=lee, role=Role.LEAD)
    membership_set(dataset=ds, user=ann, role=Role.ANNOTATOR)
    membership_set(dataset=ds, user=abe, role=Role.ANNOTATOR)
    return ds


def test_database_url() -> str:
    """A DATABASE_URL that points a child process at the test database."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] or "postgres"
    if s["PASSWORD"]:
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # not a test, despite its name


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process (worker, command) that shares this test's state."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        SIEVE_IMAGE_ROOTS=",".join(str(p) for p in django_settings.SIEVE_IMAGE_ROOTS),
        SIEVE_MEDIA_ROOT=str(django_settings.MEDIA_ROOT),
        SIEVE_MODEL_ROOTS=",".join(str(p) for p in django_settings.SIEVE_MODEL_ROOTS),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class WorkerProcess:
    """A real `celery worker` child process; `ready` is set once it consumes from the broker."""

    def __init__(self, queues: str, concurrency: int, name: str) -> None:
        self.output: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "annotate", "worker",
                "-Q", queues, "--concurrency", str(concurrency), "--pool", "prefork",
                "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-mingle",
                "--without-gossip", "--without-heartbeat",
            ],
            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if " ready." in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 90) -> None:
        if not self.ready.wait(timeout):
            raise AssertionError("worker did not start:\n" + "".join(self.output[-50:]))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker (main process and its pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)


@pytest.fixture
def start_worker() -> Iterator:
    """Start real Celery workers on the configured broker; they are killed after the test.

    Tests using it need `@pytest.mark.django_db(transaction=True)` so that the worker
    sees committed rows."""
    workers: list[WorkerProcess] = []

    def start(queues: str = "default,gpu", concurrency: int = 1) -> WorkerProcess:
        worker = WorkerProcess(queues, concurrency, f"test{len(workers)}")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.kill()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright; skipped when Chromium is absent
    (CI installs it and sets SIEVE_REQUIRE_BROWSER=1, which turns the skip into a failure)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        if os.environ.get("SIEVE_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (apt-get install -y chromium)")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def login(page, live_server, username: str) -> None:
    """Log in through the real login form."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
