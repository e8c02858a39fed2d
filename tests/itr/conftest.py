"""ITR fixtures: the real published dataset and list (bundled in annotate/itr/data for the
demo), a small generated CSV, and reviewers."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.itr.importers import itr_import
from tests.conftest import PASSWORD, make_user

DATA = Path(__file__).resolve().parent.parent.parent / "annotate" / "itr" / "data"
ITR_CSV = DATA / "textimage-data.csv"
ITR_LIST = DATA / "controversial_samples.txt"

HEADER = '"tweet_id","user_id","tweet","text_is_represented","image_adds"\n'


def small_csv(path: Path, labels: list[tuple[int, int]], texts: list[str] | None = None) -> Path:
    """A CSV in the published format (backslash-escaped quotes), tweet ids 1000 + row."""
    lines = [HEADER]
    for row, (t, i) in enumerate(labels):
        text = texts[row] if texts else f'tweet {row} says \\"hi\\" @user https://t.co/x{row}'
        lines.append(f'"{1000 + row}","{row % 7}","{text}","{t}","{i}"\n')
    path.write_text("".join(lines))
    return path


def api_for(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def login(client: Client, name: str) -> Client:
    """`client`, logged in as `name` (a session, as the pages are used)."""
    assert client.login(username=name, password=PASSWORD)
    return client


@pytest.fixture
def reviewers(db) -> list[User]:
    """Five reviewers (rev1..rev5); members once a dataset fixture adds them."""
    return [make_user(f"rev{n}") for n in range(1, 6)]


def _members(dataset: Dataset, lee: User, reviewers: list[User]) -> Dataset:
    membership_set(dataset=dataset, user=lee, role=Role.LEAD)
    for user in reviewers:
        membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)
    return dataset


@pytest.fixture
def itr_real(db, lee: User, reviewers: list[User]) -> Dataset:
    """The published 4,471-tweet dataset with the published list; lee leads, rev1..5 review."""
    result = itr_import(name="itr", csv_path=ITR_CSV, controversial=ITR_LIST)
    return _members(Dataset.objects.get(pk=result.dataset_id), lee, reviewers)


@pytest.fixture
def make_itr(db, tmp_path: Path, lee: User, reviewers: list[User]) -> Callable[..., Dataset]:
    """make_itr(labels, split=..., name=...) -> a small ITR dataset with members."""

    def make(labels: list[tuple[int, int]], *, split: int, name: str = "small", **kw) -> Dataset:
        path = small_csv(tmp_path / f"{name}.csv", labels)
        result = itr_import(name=name, csv_path=path, split=split, **kw)
        return _members(Dataset.objects.get(pk=result.dataset_id), lee, reviewers)

    return make
