"""The per-annotator figures (docs/architecture.md#annotator-figures): seconds per verdict and
leave-one-out agreement against values computed by hand, through the API, the page and the
CSV download."""

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from scipy.stats import binomtest

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from annotate.validation.models import Verdict
from annotate.validation.services import adjudication_record, verdict_record
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(small, dataset, ann, abe, lee):
    """Three annotators on items 0-5 of the small sample, with their durations (ms):

    item  ann          abe        amy
    0     hit  2000    hit 4000   miss 1000    lead: miss
    1     miss 3000    miss 5000  miss 2000
    2     hit  1000    miss 6000               lead: hit
    3     skip  500    hit 7000   miss 3000
    4     hit   -
    5     hit   -      miss -     hit  -
    """
    amy = make_user("amy")
    membership_set(dataset=dataset, user=amy, role=Role.ANNOTATOR)
    s = small.sample_items
    rows = [
        (0, ann, "hit", 2000), (0, abe, "hit", 4000), (0, amy, "miss", 1000),
        (1, ann, "miss", 3000), (1, abe, "miss", 5000), (1, amy, "miss", 2000),
        (2, ann, "hit", 1000), (2, abe, "miss", 6000),
        (3, ann, "skip", 500), (3, abe, "hit", 7000), (3, amy, "miss", 3000),
        (4, ann, "hit", None),
        (5, ann, "hit", None), (5, abe, "miss", None), (5, amy, "hit", None),
    ]  # fmt: skip
    for i, user, value, ms in rows:
        verdict_record(sample_item=s[i], annotator=user, value=value, duration_ms=ms)
    adjudication_record(sample_item=s[0], lead=lee, value="miss", note="no bakery")
    adjudication_record(sample_item=s[2], lead=lee, value="hit", note="a bakery")
    return small


# Leave-one-out by hand (the majority of the OTHER annotators' hit/miss verdicts):
# ann: 0 others hit+miss tie (left out), 1 agree, 2 disagree, 4 nobody else, 5 tie (left out)
# abe: 0 tie, 1 agree, 2 disagree, 3 disagree (ann skipped), 5 disagree
# amy: 0 disagree, 1 agree, 3 disagree, 5 tie
EXPECTED = {
    "ann": {
        "verdicts": 6, "hits": 4, "misses": 1, "skips": 1, "timed": 4,
        "median_seconds": 1.5, "q1_seconds": 0.875, "q3_seconds": 2.25,
        "majority_items": 2, "majority_agree": 1, "majority_ties": 2,
        "lead_items": 2, "lead_agree": 1,
    },
    "abe": {
        "verdicts": 5, "hits": 2, "misses": 3, "skips": 0, "timed": 4,
        "median_seconds": 5.5, "q1_seconds": 4.75, "q3_seconds": 6.25,
        "majority_items": 4, "majority_agree": 1, "majority_ties": 1,
        "lead_items": 2, "lead_agree": 0,
    },
    "amy": {
        "verdicts": 4, "hits": 1, "misses": 3, "skips": 0, "timed": 3,
        "median_seconds": 2.0, "q1_seconds": 1.5, "q3_seconds": 2.5,
        "majority_items": 3, "majority_agree": 1, "majority_ties": 1,
        "lead_items": 1, "lead_agree": 1,
    },
}  # fmt: skip


def test_figures_match_hand_computed_values(client: Client, judged) -> None:
    client.login(username="lee", password=PASSWORD)
    body = client.get(f"/api/samples/{judged.sample.pk}/annotators/").json()
    assert body["adjudicated"] == 2
    rows = {r["annotator"]: r for r in body["rows"]}
    assert list(rows) == ["abe", "amy", "ann"]
    for name, expected in EXPECTED.items():
        row = rows[name]
        for key, value in expected.items():
            assert row[key] == pytest.approx(value), (name, key)
        for kind in ("majority", "lead"):
            agree, n = row[f"{kind}_agree"], row[f"{kind}_items"]
            assert row[f"{kind}_agreement"] == pytest.approx(agree / n)
            ci = binomtest(agree, n).proportion_ci(confidence_level=0.95, method="wilson")
            assert row[f"{kind}_low"] == pytest.approx(ci.low, abs=1e-9)
            assert row[f"{kind}_high"] == pytest.approx(ci.high, abs=1e-9)
    last = Verdict.objects.filter(annotator__username="amy").latest("updated").updated
    assert rows["amy"]["last"] == last.isoformat().replace("+00:00", "Z")


def test_no_durations_no_adjudications(client: Client, small, ann) -> None:
    verdict_record(sample_item=small.sample_items[0], annotator=ann, value="hit")
    client.login(username="lee", password=PASSWORD)
    (row,) = client.get(f"/api/samples/{small.sample.pk}/annotators/").json()["rows"]
    assert (row["timed"], row["median_seconds"], row["q1_seconds"]) == (0, None, None)
    assert (row["majority_items"], row["majority_agreement"], row["majority_low"]) == (
        0,
        None,
        None,
    )
    assert (row["lead_items"], row["lead_agreement"]) == (0, None)


def test_page_and_csv(client: Client, judged) -> None:
    client.login(username="lee", password=PASSWORD)
    page = client.get(f"/samples/{judged.sample.pk}/annotators/").content.decode()
    assert "leave-one-out" in page
    assert "1.5 s" in page  # ann's median
    assert "0.9–2.3 s · 4 timed" in page  # the quartiles 0.875 and 2.25, rounded
    assert f'href="/samples/{judged.sample.pk}/disagreements/"' in page
    response = client.get(f"/samples/{judged.sample.pk}/dashboard/annotator-figures.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["annotator"] for r in rows] == ["abe", "amy", "ann"]
    assert rows[2]["median_seconds"] == "1.5"
    assert rows[2]["majority_agree"] == "1"


@pytest.mark.parametrize(
    ("user", "status"), [("lee", 200), ("ada", 200), ("ann", 403), ("otto", 404)]
)
def test_permissions(client: Client, small, ada, otto, user, status) -> None:
    client.login(username=user, password=PASSWORD)
    assert client.get(f"/samples/{small.sample.pk}/annotators/").status_code == status
    assert client.get(f"/api/samples/{small.sample.pk}/annotators/").status_code == status
    assert client.get(f"/samples/{small.sample.pk}/disagreements/").status_code == status


def count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_constant_queries(client: Client, judged, published) -> None:
    """The same for 10 items with 15 verdicts and 1,000 items with 1,000 verdicts."""
    client.login(username="lee", password=PASSWORD)
    for url in ("/api/samples/{}/annotators/", "/samples/{}/annotators/"):
        sizes = {count(client, url.format(s.pk)) for s in (judged.sample, published.sample)}
        assert len(sizes) == 1, (url, sizes)
    assert count(client, f"/api/samples/{judged.sample.pk}/annotators/") == 7
