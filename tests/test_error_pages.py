"""Refusals and misses answer with a page of the app (its header, the reason, a way back), and a
failed login keeps the username typed."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def logged_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_a_refused_page_says_why_inside_the_layout(ann: User) -> None:
    response = logged_in("ann").get("/console/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Admins only" in body
    assert 'class="topbar"' in body
    assert "Log out" in body
    assert "Back to the datasets" in body


def test_an_unknown_page_answers_inside_the_layout(ann: User) -> None:
    response = logged_in("ann").get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body
    assert 'class="topbar"' in body
    assert "Back to the datasets" in body


def test_a_failed_login_keeps_the_username_and_focuses_the_password(ann: User) -> None:
    response = Client().post("/accounts/login/", {"username": "ann", "password": "wrong"})
    assert response.status_code == 200
    body = response.content.decode()
    username = re.search(r'<input type="text" name="username"[^>]*>', body)[0]
    password = re.search(r'<input type="password" name="password"[^>]*>', body)[0]
    assert 'value="ann"' in username
    assert "autofocus" not in username
    assert "autofocus" in password
