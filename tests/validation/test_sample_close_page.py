"""Closing and reopening a sample from the run page and the dashboard (not only the API), and
the sample form that keeps what was typed when it refuses it. lee leads the dataset, ann
annotates it, otto is an outsider."""

import pytest
from django.test import Client

from annotate.validation.models import Lease, Sample
from annotate.validation.sampling import sample_draw
from tests.conftest import PASSWORD, login
from tests.validation.conftest import api_for


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def sample(run, lee) -> Sample:
    return sample_draw(run=run, classes=2, per_class=3, seed=1, created_by=lee)


@pytest.mark.django_db
@pytest.mark.parametrize(("user", "status"), [("ann", 403), ("otto", 404)])
def test_only_leads_close(sample, ann, otto, user, status) -> None:
    assert client_for(user).post(f"/samples/{sample.pk}/close/").status_code == status
    sample.refresh_from_db()
    assert sample.status == "open"


@pytest.mark.django_db
def test_close_and_reopen_from_the_dashboard(sample, lee, ann) -> None:
    api_for(ann).get(f"/api/samples/{sample.pk}/next/")  # ann holds a lease
    assert Lease.objects.exists()
    lead = client_for("lee")
    assert lead.get(f"/samples/{sample.pk}/close/").status_code == 405
    box = lead.post(f"/samples/{sample.pk}/close/", HTTP_HX_REQUEST="true").content.decode()
    assert box.startswith('<div id="sample-status"')
    assert "Reopen sample" in box
    sample.refresh_from_db()
    assert sample.status == "closed"
    assert not Lease.objects.exists()  # the service's own effects, as through the API
    assert api_for(ann).get(f"/api/samples/{sample.pk}/next/").status_code in (204, 409)
    plain = lead.post(f"/samples/{sample.pk}/reopen/")
    assert plain.status_code == 302
    assert plain["Location"] == f"/samples/{sample.pk}/"
    sample.refresh_from_db()
    assert sample.status == "open"


@pytest.mark.django_db
def test_close_from_the_run_page_swaps_the_sample_card(sample, run, lee) -> None:
    lead = client_for("lee")
    card = lead.post(
        f"/samples/{sample.pk}/close/", {"from": "run"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert card.startswith('<section class="card" id="run-samples">')
    assert f'data-sample="{sample.pk}" data-status="closed"' in card
    assert "Reopen" in card
    assert f"/samples/{sample.pk}/annotate/" not in card  # nothing left to annotate
    back = lead.post(f"/samples/{sample.pk}/reopen/", {"from": "run"})
    assert back["Location"] == f"/runs/{run.pk}/"


@pytest.mark.django_db
def test_csrf_is_required(sample, lee) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username="lee", password=PASSWORD)
    assert client.post(f"/samples/{sample.pk}/close/").status_code == 403


@pytest.mark.django_db
def test_refused_sample_form_keeps_the_values(run, lee) -> None:
    url = f"/runs/{run.pk}/samples/new/"
    form = {"classes": "3", "per_class": "oops", "seed": "42", "redundancy": "2",
            "overlap": "0.25", "min_probability": "0.3", "blind": "on"}  # fmt: skip
    lead = client_for("lee")
    for headers in ({"HTTP_HX_REQUEST": "true"}, {}):
        response = lead.post(url, form, **headers)
        html = response.content.decode()
        assert response.status_code == (200 if headers else 400)
        assert "Please enter numbers" in html
        for name, value in form.items():
            if name != "blind":
                assert f'name="{name}" value="{value}"' in html, name
        assert 'name="blind" checked' in html
        assert 'name="exclude_previous" checked' not in html
    assert not Sample.objects.exists()
    # A form the sampler refuses (too many verdicts per item) comes back filled in too.
    refused = lead.post(url, {**form, "per_class": "5", "redundancy": "25"}, HTTP_HX_REQUEST="true")
    assert 'name="redundancy" value="25"' in refused.content.decode()
    assert 'class="error"' in refused.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lead_closes_and_reopens_in_the_browser(page, live_server, sample, run, lee) -> None:
    login(page, live_server, "lee")
    page.goto(f"{live_server.url}/samples/{sample.pk}/")
    page.click("#sample-status button")
    page.wait_for_selector("#sample-status[data-status=closed]")
    assert Sample.objects.get(pk=sample.pk).status == "closed"
    # The run page's sample list shows it closed and reopens it.
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    row = page.locator(f'#sample-list tr[data-sample="{sample.pk}"]')
    assert "closed" in row.inner_text()
    row.locator("button", has_text="Reopen").click()
    page.wait_for_selector(f'#sample-list tr[data-sample="{sample.pk}"][data-status=open]')
    assert Sample.objects.get(pk=sample.pk).status == "open"
