"""The dashboard page, its poller and CSV downloads; a browser watches it update live."""

import csv
import io
import json
import time
import urllib.request

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from annotate.validation.models import Verdict
from annotate.validation.services import verdict_undo
from tests.conftest import PASSWORD, login
from tests.dashboards.conftest import add_verdicts


def as_user(client: Client, username: str) -> Client:
    client.login(username=username, password=PASSWORD)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("user", "status"), [("lee", 200), ("ada", 200), ("ann", 403), ("otto", 404)]
)
def test_page_permissions(client: Client, small, ada, otto, user, status) -> None:
    assert as_user(client, user).get(f"/samples/{small.sample.pk}/").status_code == status
    poll = client.get(f"/samples/{small.sample.pk}/dashboard/poll/")
    assert poll.status_code == status
    assert client.get(f"/samples/{small.sample.pk}/dashboard/classes.csv").status_code == status


@pytest.mark.django_db
def test_page_requires_login(client: Client, small) -> None:
    response = client.get(f"/samples/{small.sample.pk}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    # The poller of a page whose session expired sends the browser to the login form.
    poll = client.get(f"/samples/{small.sample.pk}/dashboard/poll/", headers={"HX-Request": "true"})
    assert poll.status_code == 204
    assert poll["HX-Redirect"] == f"/accounts/login/?next=%2Fsamples%2F{small.sample.pk}%2F"
    assert client.get(f"/api/samples/{small.sample.pk}/classes/").status_code in (401, 403)


@pytest.mark.django_db
def test_page_shows_tables_links_and_escapes_names(client: Client, published) -> None:
    label = published.labels[0]
    label.name = "<script>alert(1)</script>"
    label.save()
    body = as_user(client, "lee").get(f"/samples/{published.sample.pk}/").content.decode()
    for section in (
        "dash-thresholds",
        "dash-classes",
        "dash-agreement",
        "dash-progress",
        "dash-scores",
        "chart-thresholds",
        "chart-classes",
        "chart-histogram",
    ):
        assert f'id="{section}"' in body, section  # fmt: skip
    assert f'href="/runs/{published.run.pk}/"' in body
    assert f'href="/api/samples/{published.sample.pk}/verdicts/?format=csv"' in body
    assert "vendor/chart-4.6.1.umd.min.js" in body
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "0.5870" in body
    assert "1.3374" in body


@pytest.mark.django_db
def test_poll_answers_204_until_a_verdict_changes(client: Client, small, ann) -> None:
    as_user(client, "lee")
    page = client.get(f"/samples/{small.sample.pk}/").content.decode()
    version = page.split('id="dash-poll" hidden data-version="')[1].split('"')[0]
    url = f"/samples/{small.sample.pk}/dashboard/poll/?v={version}"
    assert client.get(url).status_code == 204
    add_verdicts([(small.sample_items[0], ann, "hit")])
    fresh = client.get(url)
    assert fresh.status_code == 200
    html = fresh.content.decode()
    assert 'hx-swap-oob="true"' in html
    assert 'data-field="verdicts">1<' in html
    new_version = html.split('data-version="')[1].split('"')[0]
    assert new_version != version
    # An undo (delete) changes the version too.
    verdict_undo(verdict=Verdict.objects.get())
    assert client.get(f"{url[: url.index('?')]}?v={new_version}").status_code == 200


CSV_HEADERS = {
    "thresholds": "threshold,classified,hits,errors,hit_rate,error_rate,ratio",
    "classes": "label,label_key,frequency,sampled,hits,misses",
    "agreement": "a,b,kappa,items",
    "annotators": "annotator,verdicts,hits,misses,skips",
    "labels": "label,items,started,complete",
    "scores": "run,name,model,ensemble,status,current,covered,correct,accuracy",
}


@pytest.mark.django_db
def test_every_table_downloads_as_csv(client: Client, published) -> None:
    as_user(client, "lee")
    for table, header in CSV_HEADERS.items():
        response = client.get(f"/samples/{published.sample.pk}/dashboard/{table}.csv")
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert ",".join(rows[0]).startswith(header), table
        assert len(rows) > 1 or table == "agreement"  # one annotator: no pairs
        if table == "thresholds":
            row = next(r for r in rows if r[0] == "0.6")
            assert row[1:4] == ["507", "270", "237"]


@pytest.mark.django_db
def test_unknown_csv_and_bad_step(client: Client, small) -> None:
    as_user(client, "lee")
    assert client.get(f"/samples/{small.sample.pk}/dashboard/secrets.csv").status_code == 404
    assert client.get(f"/samples/{small.sample.pk}/?step=abc").status_code == 400
    assert client.get(f"/samples/{small.sample.pk}/?step=0.25").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_updates_live_after_a_verdict_is_posted(page, live_server, small, ann) -> None:
    add_verdicts([(small.sample_items[0], ann, "hit")])
    token = Token.objects.create(user=ann).key
    login(page, live_server, "lee")
    page.goto(f"{live_server.url}/samples/{small.sample.pk}/")
    count = page.locator("#dash-summary [data-field=verdicts]")
    assert count.inner_text() == "1"
    page.wait_for_function("() => document.body.dataset.chartsVersion")  # charts drawn
    assert page.evaluate("Chart.getChart('chart-thresholds').data.datasets[1].data[0]") is None
    page.evaluate("window.notReloaded = true; window.scrollTo(0, document.body.scrollHeight)")
    scroll = page.evaluate("window.scrollY")
    assert scroll > 0

    request = urllib.request.Request(
        f"{live_server.url}/api/verdicts/",
        data=json.dumps({"sample_item": small.sample_items[1].pk, "value": "miss"}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    posted = time.monotonic()

    # The DOM changes by itself (poller every second): no reload, same scroll position.
    page.wait_for_function(
        "() => document.querySelector('#dash-summary [data-field=verdicts]').textContent === '2'",
        timeout=2000,  # the requirement: within 2 s of the verdict (measured 0.6-0.9 s)
    )
    elapsed = time.monotonic() - posted
    assert elapsed < 2
    assert page.locator("#dash-summary [data-field=errors]").inner_text() == "1"
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate("window.scrollY") == scroll
    # The charts were updated in place: error rate at θ = 0 is now 1.
    page.wait_for_function(
        "() => Chart.getChart('chart-thresholds').data.datasets[1].data[0] === 1"
    )


@pytest.mark.django_db
def test_poll_sees_new_runs_and_other_samples(client: Client, small, dataset, ann) -> None:
    """The scores table depends on every sample of the dataset and on its runs."""
    from tests.dashboards.conftest import make_run, make_sample

    as_user(client, "lee")
    page = client.get(f"/samples/{small.sample.pk}/").content.decode()
    version = page.split('id="dash-poll" hidden data-version="')[1].split('"')[0]
    url = f"/samples/{small.sample.pk}/dashboard/poll/?v={version}"
    labels = [small.labels[1]] * 12
    other, predictions = make_run(dataset, small.taxonomy, small.items, labels, [0.5] * 12)
    fresh = client.get(url)
    assert fresh.status_code == 200
    assert f'href="/runs/{other.pk}/"' in fresh.content.decode()
    version = fresh.content.decode().split('data-version="')[1].split('"')[0]
    url = f"/samples/{small.sample.pk}/dashboard/poll/?v={version}"
    assert client.get(url).status_code == 204
    _other_sample, items = make_sample(other, predictions[:2])
    add_verdicts([(items[0], ann, "hit")])  # a verdict on another sample of the dataset
    assert client.get(url).status_code == 200
