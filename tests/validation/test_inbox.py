"""The home page: the annotator's inbox (what is left for them in each open sample, when leased
items come back) and, for leads and admins, the datasets below it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.validation.assignment import inbox_for_user, sample_item_next
from annotate.validation.models import Lease, Sample
from annotate.validation.sampling import sample_draw
from annotate.validation.services import verdict_record
from annotate.validation.views_annotator import human_delta
from tests.conftest import PASSWORD, login, make_user
from tests.validation.conftest import build_run


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def figures(user) -> dict[int, tuple[int, int, int]]:
    return {s.pk: (s.left, s.waiting, s.mine) for s in inbox_for_user(user)}


def test_inbox_counts_what_is_left_for_each_annotator(run, ann, abe, lee, otto) -> None:
    sample = sample_draw(run=run, classes=1, per_class=4, seed=1, overlap=0)
    assert figures(ann) == {sample.pk: (4, 0, 0)}
    # abe holds one item (leased), ann judges one (a skip counts as hers, not as done).
    held = sample_item_next(sample=sample, annotator=abe)
    mine = sample_item_next(sample=sample, annotator=ann)
    verdict_record(sample_item=mine, annotator=ann, value="skip")
    assert figures(ann) == {sample.pk: (2, 1, 1)}
    # The skipped item still wants a verdict: it is abe's to take, not ann's.
    assert figures(abe) == {sample.pk: (4, 0, 0)}
    for _ in range(2):
        item = sample_item_next(sample=sample, annotator=ann)
        verdict_record(sample_item=item, annotator=ann, value="hit")
    (row,) = inbox_for_user(ann)
    assert (row.left, row.waiting, row.mine) == (0, 1, 3)
    lease = Lease.objects.get(sample_item=held, annotator=abe)
    assert row.comes_back == lease.expires
    assert human_delta(row.comes_back, timezone.now()) == "in 5 min"
    # Outsiders and closed samples: nothing.
    assert inbox_for_user(otto) == []
    sample.status = Sample.Status.CLOSED
    sample.save()
    assert inbox_for_user(ann) == []


def test_an_expired_lease_is_left_again(run, ann, abe) -> None:
    sample = sample_draw(run=run, classes=1, per_class=1, seed=1)
    held = sample_item_next(sample=sample, annotator=abe)
    assert figures(ann) == {sample.pk: (0, 1, 0)}
    Lease.objects.filter(sample_item=held).update(expires=timezone.now() - timedelta(seconds=1))
    assert figures(ann) == {sample.pk: (1, 0, 0)}


def test_items_wanting_two_verdicts(run, ann, abe) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1, redundancy=2, overlap=1)
    item = sample_item_next(sample=sample, annotator=abe)
    # abe's lease uses one of the item's two slots: ann may still take it.
    assert figures(ann) == {sample.pk: (2, 0, 0)}
    verdict_record(sample_item=item, annotator=abe, value="hit")
    assert figures(ann) == {sample.pk: (2, 0, 0)}
    assert figures(abe) == {sample.pk: (1, 0, 1)}


def test_human_delta() -> None:
    now = timezone.now()
    assert human_delta(now + timedelta(seconds=299.5), now) == "in 5 min"
    assert human_delta(now + timedelta(seconds=30), now) == "in less than a minute"
    assert human_delta(now + timedelta(hours=3), now) == "in 3 h"
    assert human_delta(now - timedelta(seconds=5), now) == "just now"
    assert human_delta(now - timedelta(minutes=12, seconds=5), now) == "12 min ago"
    assert human_delta(now - timedelta(hours=3), now) == "3 h ago"
    assert human_delta(now - timedelta(days=1, hours=2), now) == "yesterday"
    assert human_delta(now - timedelta(days=4), now) == "4 days ago"
    assert human_delta(now - timedelta(days=40), now)[-4:].isdigit()  # a date


def test_home_page_inbox_and_datasets_by_role(
    run, dataset, taxonomy, ann, lee, abe, django_assert_num_queries
) -> None:
    sample = sample_draw(run=run, classes=1, per_class=3, seed=1, overlap=0)
    body = client_for("ann").get("/").content.decode()
    assert 'id="inbox"' in body
    assert f'href="/samples/{sample.pk}/annotate/">Continue</a>' in body
    assert "<strong>3</strong> left for you" in body
    assert "<strong>0</strong> done by you" in body
    assert 'id="dataset-list"' not in body  # an annotator with work sees the inbox only
    assert 'href="/history/"' in body
    # A lead sees the inbox and the datasets.
    lead = client_for("lee").get("/").content.decode()
    assert 'id="inbox"' in lead
    assert 'id="dataset-list"' in lead
    # Nothing left, an item leased to someone else: when it comes back.
    item = sample_item_next(sample=sample, annotator=abe)
    for _ in range(2):
        verdict_record(sample_item=sample_item_next(sample=sample, annotator=ann), annotator=ann,
                       value="hit")  # fmt: skip
    assert item is not None
    body = client_for("ann").get("/").content.decode()
    assert "Nothing left for now." in body
    assert "1 item leased to others may come back" in body
    assert "in 5 min" in body
    assert "Continue</a>" not in body
    # The same number of queries with more samples and datasets.
    client = client_for("ann")
    with django_assert_num_queries(10) as few:
        client.get("/")
    for n in range(4):
        other = Dataset.objects.create(name=f"more{n}")
        membership_set(dataset=other, user=ann, role=Role.ANNOTATOR)
        sample_draw(run=build_run(other, taxonomy, [3, 2]), classes=2, per_class=2, seed=n)
    with django_assert_num_queries(len(few)):
        body = client.get("/").content.decode()
    assert body.count('class="inbox-row') == 5


def test_home_without_work_shows_the_datasets(dataset, ann) -> None:
    body = client_for("ann").get("/").content.decode()
    assert 'id="inbox"' not in body
    assert 'id="dataset-list"' in body
    assert "Nothing to annotate right now" in body
    make_user("newbie")
    body = client_for("newbie").get("/").content.decode()
    assert "You are not a member of any dataset yet" in body
    assert Client().get("/")["Location"].startswith("/accounts/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_inbox_continue_in_the_browser(live_server, run, ann, page) -> None:
    sample = sample_draw(run=run, classes=1, per_class=2, seed=1, overlap=0)
    login(page, live_server, "ann")
    row = page.locator(f"#inbox-sample-{sample.pk}")
    assert "2 left for you" in row.inner_text()
    row.get_by_role("link", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/samples/{sample.pk}/annotate/")
    page.wait_for_function("() => document.getElementById('annotate').dataset.shown")
    page.keyboard.press("h")
    page.wait_for_function("() => document.getElementById('mine-count')?.textContent == '1'")
    page.goto(f"{live_server.url}/")
    row = page.locator(f"#inbox-sample-{sample.pk}")
    assert "1 left for you" in row.inner_text()
    assert "1 done by you" in row.inner_text()
