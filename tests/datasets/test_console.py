"""The admin console's forms (imports, members) and CSRF on forms and session-API posts."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate.datasets.access import role_on
from annotate.datasets.models import Dataset, Item, Membership
from annotate.taxonomies.models import Label, Taxonomy
from tests.conftest import PASSWORD
from tests.datasets.conftest import write_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(ada: User) -> Client:
    client = Client()
    client.login(username="ada", password=PASSWORD)
    return client


def test_console_imports_a_dataset(admin_client: Client, image_root: Path) -> None:
    write_jpeg(image_root / "shots" / "a.jpg")
    write_jpeg(image_root / "shots" / "b.jpg")
    (image_root / "shots" / "captions.csv").write_text("a.jpg,<i>hello</i>\n")
    response = admin_client.post(
        "/console/datasets/import/",
        {
            "name": "shots",
            "folder": str(image_root / "shots"),
            "captions": str(image_root / "shots" / "captions.csv"),
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "shots: 2 images (2 new, 0 updated)" in response.content.decode()
    assert Item.objects.get(external_id="a.jpg").caption == "<i>hello</i>"


def test_console_import_errors_are_shown(admin_client: Client, tmp_path: Path) -> None:
    write_jpeg(tmp_path / "outside" / "a.jpg")
    response = admin_client.post(
        "/console/datasets/import/", {"name": "x", "folder": str(tmp_path / "outside")}
    )
    assert response.status_code == 400
    assert "outside the allowed image roots" in response.content.decode()
    response = admin_client.post(
        "/console/datasets/import/",
        {"name": "x", "folder": str(tmp_path), "captions": "/etc/passwd"},
    )
    assert response.status_code == 400
    assert "outside the allowed image roots" in response.text
    assert not Dataset.objects.exists()


def test_console_imports_taxonomies(admin_client: Client, image_root: Path) -> None:
    response = admin_client.post(
        "/console/taxonomies/import/",
        {
            "name": "places365",
            "file": "places365",
            "indoor_outdoor": "places365",
            "template": "A photo of a {}.",
        },
        follow=True,
    )
    assert "places365: 365 labels" in response.content.decode()
    upload = SimpleUploadedFile("labels.txt", b"beach\nforest\n")
    admin_client.post(
        "/console/taxonomies/import/",
        {"name": "small", "upload": upload, "template": "a {} scene"},
    )
    assert list(Label.objects.filter(taxonomy__name="small").values_list("name", flat=True)) == [
        "beach",
        "forest",
    ]
    duplicate = SimpleUploadedFile("dup.txt", b"beach\nbeach\n")
    response = admin_client.post(
        "/console/taxonomies/import/", {"name": "dup", "upload": duplicate, "template": "{}"}
    )
    assert response.status_code == 400
    assert "duplicate label" in response.content.decode()
    assert not Taxonomy.objects.filter(name="dup").exists()


def test_console_manages_membership(admin_client: Client, dataset: Dataset, otto: User) -> None:
    response = admin_client.post(
        "/console/members/", {"dataset": dataset.pk, "username": "otto", "role": "lead"}
    )
    assert response.status_code == 302
    assert role_on(otto, dataset) == "lead"
    response = admin_client.post(
        "/console/members/", {"dataset": dataset.pk, "username": "ghost", "role": "lead"}
    )
    assert response.status_code == 400
    assert "no user" in response.content.decode()
    membership = Membership.objects.get(user=otto)
    admin_client.post(f"/console/members/{membership.pk}/remove/")
    assert role_on(otto, dataset) is None
    page = admin_client.get("/console/").content.decode()
    assert "lee (lead)" in page
    assert "otto (" not in page


def test_csrf_is_enforced_on_console_forms(ada: User, dataset: Dataset, otto: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="ada", password=PASSWORD)
    data = {"dataset": dataset.pk, "username": "otto", "role": "admin"}
    assert client.post("/console/members/", data).status_code == 403
    assert role_on(otto, dataset) is None
    # With the token from the page, the same post goes through.
    client.get("/console/")
    token = client.cookies["csrftoken"].value
    assert (
        client.post("/console/members/", {**data, "csrfmiddlewaretoken": token}).status_code == 302
    )
    assert role_on(otto, dataset) == "admin"


def test_csrf_is_enforced_on_session_api_posts(ann: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="ann", password=PASSWORD)
    response = client.post("/api/datasets/", {"name": "new"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get("/")  # sets the csrftoken cookie
    response = client.post(
        "/api/datasets/",
        {"name": "new"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 405  # past CSRF; the endpoint is read-only
    assert not Dataset.objects.filter(name="new").exists()


def test_console_refuses_folders_too_big_for_a_request(
    admin_client: Client, image_root: Path, monkeypatch
) -> None:
    monkeypatch.setattr("annotate.console.views.CONSOLE_MAX_IMAGES", 1)
    write_jpeg(image_root / "big" / "a.jpg")
    write_jpeg(image_root / "big" / "b.jpg")
    response = admin_client.post(
        "/console/datasets/import/", {"name": "big", "folder": str(image_root / "big")}
    )
    assert response.status_code == 400
    assert "manage.py import_dataset big" in response.content.decode()
    assert not Dataset.objects.exists()
