"""add_member and seed_demo through their command lines."""

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.datasets.access import role_on
from annotate.datasets.models import Dataset, Item, Membership, Role
from annotate.taxonomies.models import Label
from tests.datasets.conftest import run

pytestmark = pytest.mark.django_db


def test_add_member_existing_and_created_users(dataset: Dataset, otto: User) -> None:
    _, summary = run("add_member", "demo", "otto", "--role", "lead", "--json")
    assert summary == {
        "dataset": "demo",
        "dataset_id": dataset.pk,
        "username": "otto",
        "role": "lead",
        "created": False,
    }
    assert role_on(otto, dataset) == Role.LEAD
    run("add_member", "demo", "otto", "--role", "annotator")  # changes, never duplicates
    assert Membership.objects.filter(user=otto).count() == 1
    assert role_on(otto, dataset) == Role.ANNOTATOR

    run("add_member", "demo", "newbie", "--role", "annotator", "--create", "--password", "pw-12345")
    newbie = User.objects.get(username="newbie")
    assert newbie.check_password("pw-12345")
    assert role_on(newbie, dataset) == Role.ANNOTATOR

    _, summary = run("add_member", str(dataset.pk), "otto", "--role", "lead", "--json")
    assert summary["dataset"] == "demo"  # a dataset is named by name or id

    _, summary = run("add_member", "demo", "gen", "--role", "annotator", "--create", "--json")
    assert User.objects.get(username="gen").check_password(summary["password"])


def test_add_member_errors(dataset: Dataset) -> None:
    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("add_member", "demo", "ghost", "--role", "lead")
    with pytest.raises(CommandError, match="no dataset"):
        run("add_member", "nope", "ann", "--role", "lead")
    with pytest.raises(CommandError):
        run("add_member", "demo", "ann", "--role", "boss")
    assert not User.objects.filter(username="ghost").exists()


@pytest.mark.parametrize(
    ("password", "why"),
    [("short1", "too short"), ("password123", "too common"), ("83920174615", "entirely numeric")],
)
def test_add_member_validates_new_passwords(dataset: Dataset, password: str, why: str) -> None:
    """A created user's password passes Django's four validators, as the login forms do."""
    with pytest.raises(CommandError, match=why):
        run("add_member", "demo", "weak", "--role", "annotator", "--create", "--password", password)
    assert not User.objects.filter(username="weak").exists()
    with pytest.raises(CommandError, match="too similar"):
        run(
            "add_member",
            "demo",
            "weakling",
            "--role",
            "lead",
            "--create",
            "--password",
            "weakling1",
        )


def seed_demo(*args: str) -> tuple[dict, str]:
    """seed_demo --json: (its standard output, which is one JSON document; standard error)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_seed_demo_and_if_empty(settings) -> None:
    settings.DEBUG = True  # pytest-django turns it off; seed_demo is a development command
    summary, text = seed_demo("--images", "30")
    assert summary["seeded"]
    assert summary["dataset"]["images"] == 30
    assert summary["dataset"]["captioned"] == 30
    assert summary["dataset"]["unreadable"] == 0
    demo = Dataset.objects.get(name="demo")
    assert demo.image_root == str(settings.SIEVE_IMAGE_ROOTS[0] / "demo")
    assert Item.objects.filter(dataset=demo).exclude(caption="").count() >= 20
    assert Label.objects.filter(taxonomy__name="places365").count() == 365
    for username, role in (("admin", "admin"), ("lead", "lead"), ("annotator1", "annotator")):
        assert role_on(User.objects.get(username=username), demo) == role
    assert User.objects.get(username="admin").is_superuser
    assert "sieve-annotator2-demo" in text  # printed logins, on stderr under --json
    assert "30/30" in text  # the progress bar
    if summary["checkpoint"]:
        assert summary["checkpoint"].endswith("models/sieve-demo.pt")
        assert "classify demo --taxonomy places365" in summary["classify_command"]
        assert summary["demo_run"]["items"] == 30

    summary, text = seed_demo("--if-empty")
    assert summary == {"seeded": False}
    assert "annotator1" in text
    assert Item.objects.filter(dataset=demo).count() == 30


def test_seed_demo_refuses_without_debug(settings) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        run("seed_demo", "--images", "1")
    assert not User.objects.exists()


def test_dataset_admin_is_not_a_global_admin(dataset: Dataset, otto: User, image_root) -> None:
    from django.test import Client

    from annotate.datasets.access import is_global_admin
    from tests.conftest import PASSWORD

    secret = Dataset.objects.create(name="secret", image_root=str(image_root))
    run("add_member", "demo", "otto", "--role", "admin")
    assert role_on(otto, dataset) == Role.ADMIN
    assert not is_global_admin(otto)
    client = Client()
    client.login(username="otto", password=PASSWORD)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 200
    assert client.get(f"/datasets/{secret.pk}/").status_code == 404
    assert client.get("/console/").status_code == 403
