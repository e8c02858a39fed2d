"""Login lockout on both doors (the form and the API token), password validators, and who may
read the API schema and docs."""

import io
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, ROOT

WRONG = "not-the-password"


def form_login(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def api_login(client: Client, username: str, password: str):
    return client.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def logged_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_form_refuses_the_right_password_after_too_many_wrong_ones(ann: User) -> None:
    client = Client()
    for _ in range(12):
        response = form_login(client, "ann", WRONG)
        assert response.status_code in (200, 429)
    response = form_login(client, "ann", PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body
    assert "15 minutes" in body
    assert 'name="password"' in body  # the login page, not a bare error page
    assert not logged_in(client)


def test_api_refuses_the_right_password_after_too_many_wrong_ones(ann: User) -> None:
    client = Client()
    for _ in range(12):
        assert api_login(client, "ann", WRONG).status_code in (400, 429)
    response = api_login(client, "ann", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.json()["detail"]
    assert int(response["Retry-After"]) == 15 * 60


def test_failures_on_one_door_lock_the_other(ann: User) -> None:
    client = Client()
    for _ in range(10):
        api_login(client, "ann", WRONG)
    assert form_login(client, "ann", PASSWORD).status_code == 429
    assert not logged_in(client)


def test_a_few_typos_do_not_lock_and_success_resets_the_count(ann: User) -> None:
    client = Client()
    for _ in range(9):
        assert form_login(client, "ann", WRONG).status_code == 200
    assert form_login(client, "ann", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(9):
        assert api_login(client, "ann", WRONG).status_code == 400
    assert api_login(client, "ann", PASSWORD).status_code == 200


def test_lockout_is_per_username_and_ends_after_the_cooloff(ann: User, abe: User) -> None:
    client = Client()
    for _ in range(12):
        form_login(client, "ann", WRONG)
    assert api_login(Client(), "abe", PASSWORD).status_code == 200
    assert api_login(client, "ann", PASSWORD).status_code == 429
    # Sixteen minutes later (the attempts age, the clock does not move).
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert api_login(client, "ann", PASSWORD).status_code == 200
    assert form_login(client, "ann", PASSWORD).status_code == 302


def test_an_admin_unlocks_a_username_with_the_axes_command(ann: User) -> None:
    client = Client()
    for _ in range(10):
        form_login(client, "ann", WRONG)
    assert api_login(client, "ann", PASSWORD).status_code == 429
    call_command("axes_reset_username", "ann", stdout=io.StringIO())
    assert api_login(client, "ann", PASSWORD).status_code == 200


def test_failure_limit_and_cooloff_come_from_the_environment(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "1",
        "SIEVE_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "annotate.settings",
        "SIEVE_LOGIN_FAILURE_LIMIT": "3",
        "SIEVE_LOGIN_COOLOFF_MINUTES": "5",
    }
    code = "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "0:05:00"]


def test_a_lower_limit_locks_sooner(settings, ann: User) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        form_login(client, "ann", WRONG)
    assert form_login(client, "ann", PASSWORD).status_code == 429


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("8675309424242", "entirely numeric"),
        ("gracehopper1", "too similar"),
    ],
)
def test_weak_passwords_are_refused(db, password: str, reason: str) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    client = Client()
    client.login(username="root", password=PASSWORD)
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "gracehopper",
            "password1": password,
            "password2": password,
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not User.objects.filter(username="gracehopper").exists()


def test_api_schema_and_docs_need_a_login(client: Client, ann: User) -> None:
    for path in ("/api/schema/", "/api/docs/"):
        response = Client().get(path)
        assert response.status_code in (401, 403) or (
            response.status_code == 302 and response["Location"].startswith("/accounts/login/")
        ), (path, response.status_code)
    client.login(username="ann", password=PASSWORD)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
