"""Refusals and misses answer with a page of the app (its header, the reason, a way back), and a
failed login keeps the username typed."""

import re
import types

import pytest
from django.contrib.auth.models import User
from django.http import Http404
from django.test import Client, RequestFactory

from annotate.errors import permission_denied, user_message
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.models import Sample
from annotate.validation.sampling import sample_draw
from tests.conftest import PASSWORD
from tests.validation.conftest import build_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample(dataset) -> Sample:
    taxonomy = Taxonomy.objects.create(name="places")
    Label.objects.create(taxonomy=taxonomy, key="/b/beach", name="beach")
    return sample_draw(run=build_run(dataset, taxonomy, [3]), classes=1, per_class=2, seed=1)


def logged_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_a_refused_page_says_why_inside_the_layout(ann: User) -> None:
    response = logged_in("ann").get("/console/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Admins only." in body
    assert 'class="topbar"' in body
    assert "Log out" in body
    assert 'href="/">Back home</a>' in body


def test_a_lead_page_refused_to_an_annotator_gives_the_reason(sample, ann) -> None:
    response = logged_in("ann").get(f"/samples/{sample.pk}/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Dashboards are for leads and admins of the dataset." in body
    assert "<title>Not allowed · Sieve</title>" in body
    assert 'class="topbar"' in body


def test_an_unknown_page_answers_inside_the_layout(ann: User) -> None:
    response = logged_in("ann").get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body
    assert 'class="topbar"' in body
    assert 'href="/">Back home</a>' in body
    # Django's own message (the resolver's) is for developers: not shown.
    assert "Resolver404" not in body
    assert "no-such-page" not in body
    assert 'class="error-reason"' not in body


def test_a_missing_object_says_what_is_missing(sample, ann, otto) -> None:
    for user, url in (
        ("ann", "/samples/99999/annotate/"),
        ("otto", f"/samples/{sample.pk}/annotate/"),
    ):
        response = logged_in(user).get(url)
        assert response.status_code == 404
        body = response.content.decode()
        assert '<p class="error-reason">No such sample.</p>' in body
        assert "a dataset you are not a member of" in body


def test_the_messages_shown_are_ours_and_escaped() -> None:
    def raise_it(message):
        raise Http404(message)

    def raised(message, module: str) -> Http404:
        """The exception as code of `module` raises it."""
        raiser = types.FunctionType(raise_it.__code__, {"__name__": module, "Http404": Http404})
        try:
            raiser(message)
        except Http404 as exc:
            return exc
        raise AssertionError("not raised")

    assert user_message(raised("No such run", "annotate.validation.views")) == "No such run."
    assert user_message(raised("Closed!", "classifier.views")) == "Closed!"
    assert user_message(raised("No Sample matches the given query.", "django.shortcuts")) == ""
    assert user_message(raised({"path": "x"}, "annotate.views")) == ""
    assert user_message(Http404("never raised")) == ""
    assert user_message(None) == ""
    html = permission_denied(RequestFactory().get("/"), raised("<b>x</b>", "annotate.x"))
    assert b"&lt;b&gt;x&lt;/b&gt;." in html.content
    assert html.status_code == 403


def test_the_api_keeps_its_json_errors(ann: User) -> None:
    client = logged_in("ann")
    missing = client.get("/api/samples/99999/")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/json")
    unknown = client.get("/api/no-such-endpoint/")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Not found."}


def test_a_failed_login_keeps_the_username_and_focuses_the_password(ann: User) -> None:
    response = Client().post("/accounts/login/", {"username": "ann", "password": "wrong"})
    assert response.status_code == 200
    body = response.content.decode()
    username = re.search(r'<input type="text" name="username"[^>]*>', body)[0]
    password = re.search(r'<input type="password" name="password"[^>]*>', body)[0]
    assert 'value="ann"' in username
    assert "autofocus" not in username
    assert "autofocus" in password
