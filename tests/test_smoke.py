import pytest
from django.test import Client

from tests.conftest import PASSWORD, login


def test_login_page_is_served(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_dataset_list_requires_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_member_sees_only_their_datasets(client: Client, dataset, otto) -> None:
    from annotate.datasets.models import Dataset

    Dataset.objects.create(name="secret")
    client.login(username="ann", password=PASSWORD)
    body = client.get("/").content.decode()
    assert "demo" in body
    assert "secret" not in body
    client.login(username="otto", password=PASSWORD)
    assert "demo" not in client.get("/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_login_shows_dataset_list(page, live_server, dataset) -> None:
    login(page, live_server, "ann")
    assert page.locator("#dataset-list").inner_text().count("demo") == 1


def test_api_docs_are_served_without_a_cdn(client: Client, ada) -> None:
    client.login(username="ada", password=PASSWORD)
    body = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in body
    assert "cdn." not in body
    assert "unpkg" not in body
    asset = body.split('src="')[1].split('"')[0]  # the first script: Swagger UI's bundle
    assert asset.startswith("/static/")
