"""The run page and the console's run panel, through the Django client and a real browser."""

from pathlib import Path

import pytest
from django.test import Client

from annotate.datasets.models import Item
from classifier.models import ClassificationRun
from classifier.services import run_import_predictions
from tests.classifier.conftest import make_taxonomy
from tests.conftest import PASSWORD, login


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def checkpoint(settings) -> Path:
    """A file in the default model root: runs need weights, and these tests never load them."""
    path = Path(settings.MEDIA_ROOT) / "models" / "placeholder.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not loaded")
    return path


@pytest.fixture
def run(dataset) -> ClassificationRun:
    taxonomy = make_taxonomy("evil", ["<script>alert(1)</script>", "beach"])
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{n}", image_path=f"i{n}.jpg") for n in range(4)
    )
    rows = [(f"i{n}", "<script>alert(1)</script>" if n else "beach", "0.75") for n in range(4)]
    run, _ = run_import_predictions(dataset=dataset, taxonomy=taxonomy, rows=rows)
    ClassificationRun.objects.filter(pk=run.pk).update(unreadable={"truncated": 2})
    return run


def test_run_page_for_members(run, lee, ann, otto) -> None:
    body = client_for("lee").get(f"/runs/{run.pk}/").content.decode()
    assert 'id="coverage-table"' in body
    assert 'id="label-chart"' in body
    assert "<script>alert(1)</script>" not in body  # label names are escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'id="run-samples"' in body
    assert "truncated" in body
    assert "Cancel run" not in body
    assert "Resume run" not in body
    assert client_for("ann").get(f"/runs/{run.pk}/").status_code == 200
    assert client_for("otto").get(f"/runs/{run.pk}/").status_code == 404


def test_run_page_cancel_is_admin_only(dataset, taxonomy, checkpoint, ada, lee) -> None:
    Item.objects.create(dataset=dataset, external_id="a", image_path="a.jpg")
    from classifier.services import run_create

    run = run_create(dataset=dataset, taxonomy=taxonomy, model="sieve-tiny",
                     weights=str(checkpoint))  # fmt: skip
    assert "Cancel run" in client_for("ada").get(f"/runs/{run.pk}/").content.decode()
    assert client_for("lee").post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert client_for("ada").post(f"/runs/{run.pk}/cancel/").status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_console_panel_admin_only(run, ada, lee) -> None:
    assert client_for("lee").get("/console/runs/").status_code == 403
    assert client_for("lee").get("/console/runs/list/").status_code == 403
    page = client_for("ada").get("/console/").content.decode()
    assert 'hx-get="/console/runs/"' in page  # the console loads the panel by itself
    panel = client_for("ada").get("/console/runs/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-form"' in panel
    assert f'data-run="{run.pk}"' in panel
    assert "<html" not in panel


def test_console_start_form_errors(dataset, taxonomy, ada) -> None:
    response = client_for("ada").post(
        "/console/runs/start/",
        {"dataset": dataset.pk, "taxonomy": taxonomy.pk, "model": "sieve-tiny",
         "weights": "/no/such/file.pt", "ensemble": "image", "w_img": 0.8, "w_txt": 0.2,
         "condition_threshold": 0.6},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert "Checkpoint not found" in response.content.decode()
    assert not ClassificationRun.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_console_starts_and_cancels_a_run(
    page, live_server, dataset, taxonomy, checkpoint, ada
) -> None:
    Item.objects.create(dataset=dataset, external_id="a", image_path="a.jpg")
    login(page, live_server, "ada")
    page.goto(f"{live_server.url}/console/")
    page.wait_for_selector("#run-form")  # loaded by htmx
    page.select_option("#run-form select[name=dataset]", str(dataset.pk))
    page.select_option("#run-form select[name=taxonomy]", str(taxonomy.pk))
    page.fill("#run-form input[name=model]", "sieve-tiny")
    page.fill("#run-form input[name=weights]", str(checkpoint))
    page.fill("#run-form input[name=name]", "from the console")
    page.click("#run-form button[type=submit]")
    row = page.locator("#console-run-rows tr[data-status=queued]")
    row.wait_for()
    run = ClassificationRun.objects.get()
    assert run.name == "from the console"
    assert run.created_by == ada
    row.locator("button", has_text="Cancel").click()
    page.locator("#console-run-rows tr[data-status=cancelled]").wait_for()
    run.refresh_from_db()
    assert run.status == "cancelled"
