"""The admin console's forms (imports, members, the run form's defaults) and CSRF on forms and
session-API posts. Import jobs themselves: test_import_job.py."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate.datasets.access import role_on
from annotate.datasets.import_jobs import import_job_run
from annotate.datasets.models import Dataset, ImportJob, Item, Membership
from annotate.taxonomies.models import Label, Taxonomy
from tests.conftest import PASSWORD
from tests.datasets.conftest import write_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(ada: User) -> Client:
    client = Client()
    client.login(username="ada", password=PASSWORD)
    return client


def test_console_queues_a_dataset_import(admin_client: Client, ada: User, image_root) -> None:
    """The form queues a job (this test's transaction never commits, so nothing reaches the
    broker); the job, run here as a worker would, imports the folder."""
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
    job = ImportJob.objects.get()
    body = response.content.decode()
    assert f"Import of shots queued (job {job.pk})" in body
    assert f'data-job="{job.pk}" data-status="queued"' in body
    assert 'hx-trigger="every 1s"' in body  # the list polls while a job is active
    assert (job.dataset_name, job.created_by, job.status) == ("shots", ada, "queued")
    assert not Dataset.objects.exists()

    assert import_job_run(job_id=job.pk) == "succeeded"
    assert Item.objects.get(external_id="a.jpg").caption == "<i>hello</i>"
    job.refresh_from_db()
    jobs = admin_client.get("/console/datasets/imports/").content.decode()
    assert 'data-status="succeeded"' in jobs
    assert "shots: 2 images (2 new, 0 updated), 0 unreadable, 1 with captions (csv)" in jobs
    assert f'href="/datasets/{job.dataset_id}/"' in jobs
    assert "hx-trigger" not in jobs  # nothing active: the polling stops


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
    response = admin_client.post(
        "/console/datasets/import/", {"name": "x", "folder": "/no/such/folder"}
    )
    assert response.status_code == 400
    assert "image folder &#x27;/no/such/folder&#x27; does not exist" in response.text
    assert not Dataset.objects.exists()
    assert not ImportJob.objects.exists()


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
    # The button asks first: without JavaScript, on a confirmation page that changes nothing.
    confirm = admin_client.get(f"/console/members/{membership.pk}/remove/")
    assert confirm.status_code == 200
    assert "Remove <strong>otto</strong> (lead) from the dataset <strong>demo</strong>?" in (
        confirm.content.decode()
    )
    assert role_on(otto, dataset) == "lead"
    response = admin_client.post(f"/console/members/{membership.pk}/remove/", follow=True)
    assert "Removed otto from demo" in response.content.decode()
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


def write_checkpoint(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not loaded by these tests")
    return path.resolve()


def run_form(client: Client) -> str:
    return client.get("/console/runs/", HTTP_HX_REQUEST="true").content.decode()


def test_run_form_defaults_to_the_demo_model(admin_client: Client, settings) -> None:
    models = Path(settings.MEDIA_ROOT) / "models"
    settings.SIEVE_MODEL_ROOTS = [models.resolve()]
    body = run_form(admin_client)
    assert 'name="weights" value=' not in body  # nothing to default to
    assert "none found there yet" in body
    assert 'name="model" value="ViT-B-32"' in body

    other = write_checkpoint(models / "ViT-B-16-finetuned.pt")
    body = run_form(admin_client)
    assert f'name="weights" value="{other}"' in body  # the first checkpoint found
    assert 'name="model" value="ViT-B-16"' in body  # guessed from the file name

    demo = write_checkpoint(models / "sieve-demo.pt")
    write_checkpoint(models / "nested" / "a.safetensors")
    (models / "notes.txt").write_text("not a checkpoint")
    body = run_form(admin_client)
    assert f'name="weights" value="{demo}"' in body
    assert 'name="model" value="sieve-tiny"' in body
    assert 'list="weights-choices"' in body
    assert "3 found: pick one from the list" in body
    options = body.split('<datalist id="weights-choices">')[1].split("</datalist>")[0]
    assert options.index(str(demo)) < options.index(str(other))  # the demo first
    assert str(models.resolve() / "nested" / "a.safetensors") in options
    assert "notes.txt" not in options
    assert "pretrained tag" in body  # the help says what a tag is
    assert '<option value="ViT-L-14">' in body  # architectures to pick from


def test_run_form_lists_only_checkpoints_inside_the_model_roots(
    admin_client: Client, settings, tmp_path: Path
) -> None:
    models = Path(settings.MEDIA_ROOT) / "models"
    settings.SIEVE_MODEL_ROOTS = [models.resolve()]
    outside = write_checkpoint(tmp_path / "elsewhere" / "secret.pt")
    models.mkdir(parents=True)
    (models / "link.pt").symlink_to(outside)
    body = run_form(admin_client)
    assert "secret.pt" not in body
    assert "link.pt" not in body


def test_import_jobs_and_member_removal_are_for_admins_only(dataset: Dataset, lee: User) -> None:
    membership = Membership.objects.get(user__username="ann")
    lead = Client()
    lead.force_login(lee)
    assert lead.get("/console/datasets/imports/").status_code == 403
    assert lead.get(f"/console/members/{membership.pk}/remove/").status_code == 403
    assert lead.post(f"/console/members/{membership.pk}/remove/").status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()
    anonymous = Client().get("/console/datasets/imports/")
    assert anonymous.status_code == 302  # to the login page
