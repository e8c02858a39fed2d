"""Who sees what: pages, API and images per role and per dataset (other datasets: 404)."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from annotate.datasets.access import membership_set
from annotate.datasets.importers import dataset_import
from annotate.datasets.models import Dataset, Item, Role
from tests.conftest import PASSWORD
from tests.datasets.conftest import write_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def filled(dataset: Dataset) -> Dataset:
    root = Path(dataset.image_root)
    for n in range(5):
        write_jpeg(root / f"{n}.jpg", colour=(n * 50, 0, 0))
    (root / "bad.jpg").write_bytes(b"")
    (root / "0.txt").write_text('<script>alert("pwn")</script> at the <b>beach</b>')
    dataset_import(name="demo", folder=root)
    return dataset


@pytest.fixture
def other(image_root: Path, otto: User) -> Dataset:
    """A second dataset where only otto is a member."""
    root = image_root / "other"
    write_jpeg(root / "x.jpg")
    dataset_import(name="other", folder=root)
    ds = Dataset.objects.get(name="other")
    membership_set(dataset=ds, user=otto, role=Role.ANNOTATOR)
    return ds


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_dataset_pages_per_role(filled: Dataset, other: Dataset, ada: User) -> None:
    for username in ("ann", "lee", "ada"):
        response = client_for(username).get(f"/datasets/{filled.pk}/")
        assert response.status_code == 200
    assert client_for("otto").get(f"/datasets/{filled.pk}/").status_code == 404
    assert client_for("ann").get(f"/datasets/{other.pk}/").status_code == 404
    assert client_for("ada").get(f"/datasets/{other.pk}/").status_code == 200
    assert Client().get(f"/datasets/{filled.pk}/").status_code == 302


def test_dataset_page_counts_statuses_and_escapes_captions(filled: Dataset) -> None:
    body = client_for("ann").get(f"/datasets/{filled.pk}/").content.decode()
    assert 'data-status="ok">5<' in body
    assert 'data-status="unreadable">1<' in body
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt;" in body
    assert "&lt;b&gt;beach&lt;/b&gt;" in body
    unreadable = client_for("ann").get(f"/datasets/{filled.pk}/?status=unreadable")
    assert unreadable.content.decode().count('class="gallery-item"') == 1


def test_api_lists_only_member_datasets(filled: Dataset, other: Dataset, ada: User) -> None:
    names = [d["name"] for d in client_for("ann").get("/api/datasets/").json()["results"]]
    assert names == ["demo"]
    rows = client_for("ada").get("/api/datasets/").json()["results"]
    assert {d["name"]: d["role"] for d in rows} == {"demo": "admin", "other": "admin"}
    detail = client_for("lee").get(f"/api/datasets/{filled.pk}/").json()
    assert detail["role"] == "lead"
    assert detail["item_count"] == 6
    assert client_for("ann").get(f"/api/datasets/{other.pk}/").status_code == 404
    assert client_for("ann").get(f"/api/datasets/{other.pk}/items/").status_code == 404
    assert client_for("otto").get(f"/api/datasets/{filled.pk}/items/").status_code == 404
    assert Client().get("/api/datasets/").status_code in (401, 403)


def test_api_items_paginated_with_fields_and_token_auth(filled: Dataset, ann: User) -> None:
    token = Token.objects.create(user=ann)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    page = api.get(f"/api/datasets/{filled.pk}/items/?limit=2&offset=0").json()
    assert page["count"] == 6
    assert len(page["results"]) == 2
    assert page["next"]
    item = page["results"][0]
    assert set(item) >= {
        "id", "external_id", "caption", "status", "status_reason", "width", "height",
        "metadata", "image_url",
    }  # fmt: skip
    assert item["external_id"] == "0.jpg"
    assert item["caption"].startswith("<script>")
    assert item["image_url"].endswith(f"/items/{item['id']}/image/")
    image = api.get(item["image_url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"  # read: closes the file
    thumbnail = api.get(item["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert b"".join(thumbnail.streaming_content)
    wrong = Client(HTTP_AUTHORIZATION="Token nope").get(item["image_url"])
    assert wrong.status_code == 401
    bad = api.get(f"/api/datasets/{filled.pk}/items/?status=unreadable").json()
    assert bad["count"] == 1
    assert bad["results"][0]["image_url"] is None
    assert bad["results"][0]["status_reason"] == "empty file"
    # A status outside the allow-list is refused, never passed to the ORM.
    assert api.get(f"/api/datasets/{filled.pk}/items/?status=__all").status_code == 400


def test_token_of_an_outsider_gets_no_image(filled: Dataset, otto: User) -> None:
    token = Token.objects.create(user=otto)
    item = Item.objects.filter(dataset=filled, status="ok").first()
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"/items/{item.pk}/image/").status_code == 404


def test_api_token_endpoint(ann: User) -> None:
    response = Client().post(
        "/api/auth/token/",
        {"username": "ann", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["token"]


def test_api_items_query_count_does_not_grow(
    filled: Dataset, django_assert_max_num_queries
) -> None:
    client = client_for("ann")
    with django_assert_max_num_queries(8):
        client.get(f"/api/datasets/{filled.pk}/items/")


def test_openapi_schema_generates(ann: User) -> None:
    response = client_for("ann").get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/datasets/", "/api/datasets/{id}/", "/api/datasets/{id}/items/"} <= set(paths)
    assert client_for("ann").get("/api/docs/").status_code == 200


def test_console_is_for_admins_only(ada: User, dataset: Dataset) -> None:
    assert client_for("ada").get("/console/").status_code == 200
    for username in ("lee", "ann"):
        assert client_for(username).get("/console/").status_code == 403
        response = client_for(username).post(
            "/console/members/", {"dataset": dataset.pk, "username": username, "role": "admin"}
        )
        assert response.status_code == 403
    assert Client().get("/console/").status_code == 302
    assert not Item.objects.exists()


def test_list_queries_do_not_grow_with_datasets(
    filled: Dataset, image_root: Path, ann: User
) -> None:
    def count_for(client: Client, url: str) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    client = client_for("ann")
    before = (count_for(client, "/api/datasets/"), count_for(client, "/"))
    for n in range(3):
        write_jpeg(image_root / f"more{n}" / "a.jpg")
        dataset_import(name=f"more{n}", folder=image_root / f"more{n}")
        membership_set(dataset=Dataset.objects.get(name=f"more{n}"), user=ann, role=Role.LEAD)
    after = (count_for(client, "/api/datasets/"), count_for(client, "/"))
    assert after == before


def test_each_fetch_returns_object_and_role_in_one_query(
    filled: Dataset, ada: User, lee: User, ann: User, otto: User, django_assert_num_queries
) -> None:
    """The per-type fetches share one helper: one query gives the object and the caller's
    role; a non-member, a missing id and a bad id all answer 404 alike."""
    from django.http import Http404

    from annotate.datasets.selectors import get_dataset_for_user, get_item_for_user

    item = filled.items.first()
    for user, role in ((ada, Role.ADMIN), (lee, Role.LEAD), (ann, Role.ANNOTATOR)):
        with django_assert_num_queries(1):
            assert get_dataset_for_user(user, filled.pk) == (filled, role)
        with django_assert_num_queries(1):
            fetched, fetched_role = get_item_for_user(user, item.pk)
        assert fetched == item
        assert fetched_role == role
        assert fetched.dataset == filled
    for user, pk, minimum in (
        (otto, filled.pk, Role.ANNOTATOR),
        (ann, filled.pk, Role.LEAD),
        (ann, 10**9, Role.ANNOTATOR),
        (ann, "1; drop", Role.ANNOTATOR),
    ):
        with pytest.raises(Http404):
            get_dataset_for_user(user, pk, minimum)


def test_lead_and_admin_actions_answer_403_to_members_below(filled: Dataset, otto: User) -> None:
    """One way to require a role: members below it get 403 (they know the object exists),
    outsiders 404."""
    body = {"dataset": filled.pk, "taxonomy": "x"}
    ann = client_for("ann")
    assert ann.post("/api/runs/", body, "application/json").status_code == 403
    assert client_for("otto").post("/api/runs/", body, "application/json").status_code == 404
