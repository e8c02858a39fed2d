"""Hiding and deleting junk runs, through the API, the pages and a browser. ada is a global
admin, dee an admin of the dataset only, lee its lead, ann an annotator, otto an outsider."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from annotate.validation.models import Sample, SampleItem, Verdict
from classifier.models import ClassificationRun, Prediction
from tests.conftest import PASSWORD, login, make_user
from tests.dashboards.conftest import add_verdicts, make_items, make_labels, make_run, make_sample


@pytest.fixture
def junk(dataset, ann, abe) -> ClassificationRun:
    """A succeeded run of 6 items with a 4-item sample and 5 verdicts (one a skip)."""
    taxonomy, labels = make_labels(2, name="junk")
    items = make_items(dataset, 6, prefix="junk")
    run, predictions = make_run(dataset, taxonomy, items, labels * 3, [0.9] * 6, name="junk")
    _sample, sample_items = make_sample(run, predictions[:4])
    add_verdicts([(sample_items[0], ann, "hit"), (sample_items[1], ann, "miss")])
    add_verdicts([(sample_items[0], abe, "hit"), (sample_items[2], abe, "skip")])
    add_verdicts([(sample_items[3], abe, "hit")])
    return run


@pytest.fixture
def dee(dataset):
    user = make_user("dee")
    membership_set(dataset=dataset, user=user, role=Role.ADMIN)
    return user


def api(username: str) -> APIClient:
    client = APIClient()
    assert client.login(username=username, password=PASSWORD)
    return client


def page_client(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def listed(username: str, query: str = "") -> list[int]:
    response = api(username).get(f"/api/runs/{query}")
    assert response.status_code == 200
    return [run["id"] for run in response.json()["results"]]


@pytest.mark.django_db
def test_hide_and_unhide_through_the_api(junk, lee, ann, otto) -> None:
    url = f"/api/runs/{junk.pk}/hide/"
    assert api("ann").post(url, {"hidden": True}, format="json").status_code == 403
    assert api("otto").post(url, {"hidden": True}, format="json").status_code == 404
    assert api("lee").post(url, {"hidden": "yes"}, format="json").status_code == 400
    response = api("lee").post(url, {"hidden": True}, format="json")
    assert response.status_code == 200
    assert response.json()["hidden"] is True
    assert junk.pk not in listed("lee")
    assert junk.pk not in listed("ann")
    assert junk.pk in listed("lee", "?hidden=1")
    assert api("ann").get(f"/api/runs/{junk.pk}/").json()["hidden"] is True  # its page stays
    assert api("lee").post(url, {"hidden": False}, format="json").json()["hidden"] is False
    assert junk.pk in listed("lee")
    assert api("lee").post(url, format="json").json()["hidden"] is True  # default: hide


@pytest.mark.django_db
def test_delete_through_the_api(junk, lee, ann, otto, ada, dee) -> None:
    url = f"/api/runs/{junk.pk}/"
    assert api("otto").delete(url).status_code == 404
    assert api("ann").delete(url).status_code == 403
    assert api("lee").delete(url).status_code == 403  # hiding is for leads, deleting for admins
    ClassificationRun.objects.filter(pk=junk.pk).update(status="running")
    refused = api("dee").delete(url)
    assert refused.status_code == 409
    assert "cancel it" in refused.json()["detail"]
    assert ClassificationRun.objects.filter(pk=junk.pk).exists()
    ClassificationRun.objects.filter(pk=junk.pk).update(status="cancelled")
    response = api("dee").delete(url)
    assert response.status_code == 200
    assert response.json() == {"run": junk.pk, "predictions": 6, "samples": 1, "verdicts": 5}
    assert not ClassificationRun.objects.filter(pk=junk.pk).exists()
    assert not Prediction.objects.filter(run_id=junk.pk).exists()
    assert not Sample.objects.exists()
    assert not SampleItem.objects.exists()
    assert not Verdict.objects.exists()
    assert api("ada").delete(url).status_code == 404


@pytest.mark.django_db
def test_delete_keeps_other_runs(junk, dataset, ada) -> None:
    other, _ = make_run(
        dataset, junk.taxonomy, make_items(dataset, 2, "keep"), list(junk.taxonomy.labels.all()),
        [0.5, 0.6], name="keep",
    )  # fmt: skip
    assert api("ada").delete(f"/api/runs/{junk.pk}/").status_code == 200
    assert Prediction.objects.filter(run=other).count() == 2


@pytest.mark.django_db
def test_hide_from_the_pages(junk, dataset, lee, ann) -> None:
    lead = page_client("lee")
    assert page_client("ann").post(f"/runs/{junk.pk}/hide/").status_code == 403
    dataset_page = f"/datasets/{dataset.pk}/"
    assert f'data-run="{junk.pk}"' in lead.get(dataset_page).content.decode()
    response = lead.post(f"/runs/{junk.pk}/hide/", {"hidden": "1", "next": dataset_page})
    assert response.status_code == 302
    assert response["Location"] == dataset_page
    body = lead.get(dataset_page).content.decode()
    assert 'id="run-list"' not in body  # its only run left the list ...
    assert "1 hidden run" in body  # ... for the folded list of hidden ones
    run_page = lead.get(f"/runs/{junk.pk}/").content.decode()
    assert 'id="run-hidden"' in run_page
    assert "Unhide" in run_page
    # An outside `next` is not followed.
    away = lead.post(f"/runs/{junk.pk}/hide/", {"hidden": "0", "next": "https://evil.test/"})
    assert away["Location"] == f"/runs/{junk.pk}/"
    assert not ClassificationRun.objects.get(pk=junk.pk).hidden
    # htmx: the status card comes back.
    card = lead.post(f"/runs/{junk.pk}/hide/", {"hidden": "1"}, HTTP_HX_REQUEST="true")
    assert card.content.decode().startswith('<section class="card" id="run-status"')
    assert ClassificationRun.objects.get(pk=junk.pk).hidden


@pytest.mark.django_db
def test_console_lists_no_hidden_run(junk, ada) -> None:
    ClassificationRun.objects.filter(pk=junk.pk).update(hidden=True)
    body = page_client("ada").get("/console/runs/list/").content.decode()
    assert f"/runs/{junk.pk}/" not in body


@pytest.mark.django_db
def test_delete_page_says_what_goes_and_asks_first(junk, dataset, lee, dee) -> None:
    assert page_client("lee").get(f"/runs/{junk.pk}/delete/").status_code == 403
    assert "Delete run" not in page_client("lee").get(f"/runs/{junk.pk}/").content.decode()
    admin = page_client("dee")
    assert f'href="/runs/{junk.pk}/delete/"' in admin.get(f"/runs/{junk.pk}/").content.decode()
    confirm = admin.get(f"/runs/{junk.pk}/delete/").content.decode()
    assert "<strong>6</strong> predictions" in confirm
    assert "<strong>1</strong> validation sample drawn" in confirm
    assert "<strong>5</strong> verdicts" in confirm
    assert ClassificationRun.objects.filter(pk=junk.pk).exists()  # GET deletes nothing
    ClassificationRun.objects.filter(pk=junk.pk).update(status="queued")
    refused = admin.post(f"/runs/{junk.pk}/delete/")
    assert refused.status_code == 409
    assert "cancel it on its page" in refused.content.decode()
    ClassificationRun.objects.filter(pk=junk.pk).update(status="failed")
    done = admin.post(f"/runs/{junk.pk}/delete/", follow=True)
    assert done.redirect_chain[-1][0] == f"/datasets/{dataset.pk}/"
    assert "Deleted run" in done.content.decode()
    assert "5 verdicts" in done.content.decode()
    assert not ClassificationRun.objects.filter(pk=junk.pk).exists()


@pytest.mark.django_db
def test_csrf_is_required(junk, lee) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="lee", password=PASSWORD)
    assert client.post(f"/runs/{junk.pk}/hide/", {"hidden": "1"}).status_code == 403
    assert not ClassificationRun.objects.get(pk=junk.pk).hidden


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_hides_unhides_and_deletes_in_the_browser(page, live_server, junk, dee) -> None:
    login(page, live_server, "dee")
    page.goto(f"{live_server.url}/runs/{junk.pk}/")
    page.click("#run-hide-form button")
    page.wait_for_selector("#run-hidden")  # htmx swapped the status card
    assert ClassificationRun.objects.get(pk=junk.pk).hidden
    page.click("#run-hide-form button")  # Unhide
    page.wait_for_selector("#run-hidden", state="detached")
    assert not ClassificationRun.objects.get(pk=junk.pk).hidden
    page.click("#run-delete-link")
    assert "5 verdicts" in page.inner_text("#run-delete")
    page.click("#run-delete button.danger")
    page.wait_for_url(f"{live_server.url}/datasets/{junk.dataset_id}/")
    assert f"Deleted run #{junk.pk}" in page.inner_text(".messages")
    assert not ClassificationRun.objects.filter(pk=junk.pk).exists()
