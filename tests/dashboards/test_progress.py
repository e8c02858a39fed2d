""" "Complete" means one thing at every door: an item is complete once its hit/miss verdicts reach
the wanted number, and skips never count (a skip asks for someone else's verdict)."""

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.dashboards.conftest import add_verdicts

pytestmark = pytest.mark.django_db


def as_user(client: Client, username: str) -> Client:
    client.logout()
    client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def judged(small, ann, abe):
    """small: 10 items, two verdicts wanted each. Item 0 has a skip and a hit, item 1 two hits
    (the only complete item), item 2 two skips: 3 of the 20 wanted verdicts given."""
    items = small.sample_items
    add_verdicts(
        [
            (items[0], ann, "skip"),
            (items[0], abe, "hit"),
            (items[1], ann, "hit"),
            (items[1], abe, "hit"),
            (items[2], ann, "skip"),
            (items[2], abe, "skip"),
        ]
    )
    return small


def test_skips_do_not_complete_an_item_in_the_api(client: Client, judged) -> None:
    pk = judged.sample.pk
    body = as_user(client, "lee").get(f"/api/samples/{pk}/progress/").json()
    assert (body["items"], body["wanted"], body["given"], body["complete"]) == (10, 20, 3, 1)
    assert body["percent"] == 15.0
    assert body["verdicts"] == 6
    by_label = {row["label"]: row for row in body["labels"]}
    assert by_label["label 00"]["complete"] == 1
    assert by_label["label 01"]["complete"] == 0
    assert by_label["label 00"]["started"] == 3  # skipped items were looked at
    # The sample's own representation counts the same way.
    sample = client.get(f"/api/samples/{pk}/").json()["progress"]
    assert (sample["given"], sample["done"], sample["percent"]) == (3, 1, 15.0)


def test_skips_do_not_complete_an_item_on_the_pages(client: Client, judged) -> None:
    pk = judged.sample.pk
    fragment = as_user(client, "ann").get(f"/samples/{pk}/annotate/progress/").content.decode()
    assert "Sample: <strong>3</strong> / 20" in fragment
    assert "15.0% of the wanted verdicts" in fragment
    dashboard = as_user(client, "lee").get(f"/samples/{pk}/").content.decode()
    assert "1 of 10 items complete" in dashboard
    csv_rows = client.get(f"/samples/{pk}/dashboard/labels.csv").content.decode().splitlines()
    assert csv_rows[1].startswith("label 00,5,3,1,")  # label,items,started,complete
