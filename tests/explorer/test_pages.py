"""The explorer page and the item page, through Django's test client: who sees what, the
filter form's empty fields, htmx's next page, escaping, and a constant number of queries."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotate.datasets.models import Dataset, Item
from classifier.models import ClassificationRun
from tests.conftest import PASSWORD
from tests.explorer.conftest import SCRIPT_CAPTION, write_run

pytestmark = pytest.mark.django_db


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_explorer_page_for_leads_only(explored, lee, ann, otto) -> None:
    url = f"/runs/{explored.run.pk}/items/"
    response = client_for("lee").get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="explorer-card') == 40
    assert client_for("ann").get(url).status_code == 403
    assert client_for("otto").get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page


def test_explorer_page_takes_the_forms_empty_fields(explored, lee) -> None:
    url = (
        f"/runs/{explored.run.pk}/items/?label=beach&min_probability=&max_probability=0.5"
        "&verdict=&sample=&order=-probability&seed=&limit=2"
    )
    response = client_for("lee").get(url)
    assert response.status_code == 200
    page = response.context["page"]
    beach = explored.labels[1].pk
    assert [row.label_id for row in page.rows] == [beach, beach]
    assert all(row.probability <= 0.5 for row in page.rows)
    assert 'id="explorer-next"' in response.content.decode()
    assert "cursor=" in response.context["next_url"]


def test_explorer_page_shows_bad_filters(explored, lee) -> None:
    client = client_for("lee")
    response = client.get(f"/runs/{explored.run.pk}/items/?min_probability=2")
    assert response.status_code == 400
    assert "min_probability" in response.content.decode()
    response = client.get(f"/runs/{explored.run.pk}/items/?label=nowhere")
    assert response.status_code == 404
    assert "No label" in response.content.decode()


def test_htmx_gets_the_next_cards_only(explored, lee) -> None:
    client = client_for("lee")
    first = client.get(f"/runs/{explored.run.pk}/items/?limit=30")
    following = client.get(f"/runs/{explored.run.pk}/items/{first.context['next_url']}",
                           headers={"HX-Request": "true"})  # fmt: skip
    body = following.content.decode()
    assert "<html" not in body
    assert body.count('class="explorer-card') == 10
    assert "End of the list." in body


def test_item_page_for_a_lead(explored, dataset, taxonomy, lee, ann, abe) -> None:
    hidden = write_run(dataset, taxonomy, explored.items, name="old junk run")
    ClassificationRun.objects.filter(pk=hidden.pk).update(hidden=True)
    item = explored.items[4]  # split 1-1 between ann and abe, adjudicated a miss by lee
    response = client_for("lee").get(f"/items/{item.pk}/?run={explored.run.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    runs = [row.run.pk for row in response.context["overview"].predictions]
    assert runs == [explored.run.pk, hidden.pk]  # hidden runs last
    assert "(hidden run)" in html
    assert "<td>ann</td>" in html
    assert "<td>abe</td>" in html
    assert "the sign says bakery" in html
    assert f'href="/runs/{explored.run.pk}/items/"' in html  # back to the explorer
    top5 = response.context["overview"].predictions[0].top5
    assert [t.name for t in top5] == ["street", "beach", "forest"]


def test_item_page_for_an_annotator_shows_only_their_verdicts(explored, ann, otto) -> None:
    item = explored.items[4]
    response = client_for("ann").get(f"/items/{item.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your verdicts" in html
    assert "<td>abe</td>" not in html
    assert "<th>Who</th>" not in html
    assert "What each run predicted" not in html
    assert "the sign says bakery" not in html
    assert client_for("otto").get(f"/items/{item.pk}/").status_code == 404


def test_item_page_escapes_the_caption(explored, lee) -> None:
    html = client_for("lee").get(f"/items/{explored.items[0].pk}/").content.decode()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; a street" in html
    assert SCRIPT_CAPTION not in html


def test_item_page_queries_do_not_grow_with_runs_or_verdicts(explored, dataset, taxonomy, lee):
    client = client_for("lee")
    item = explored.items[4]
    with CaptureQueriesContext(connection) as one:
        client.get(f"/items/{item.pk}/")
    for n in range(3):
        write_run(dataset, taxonomy, explored.items, name=f"another {n}")
    with CaptureQueriesContext(connection) as four:
        response = client.get(f"/items/{item.pk}/")
    assert len(response.context["overview"].predictions) == 4
    assert len(four.captured_queries) == len(one.captured_queries)


def test_item_of_another_dataset_is_not_found(explored, lee, image_root) -> None:
    elsewhere = Dataset.objects.create(name="elsewhere", image_root=str(image_root))
    item = Item.objects.create(dataset=elsewhere, external_id="x.jpg", image_path="x.jpg")
    assert client_for("lee").get(f"/items/{item.pk}/").status_code == 404
