"""The approximate index: a run over more than SIEVE_SEARCH_EXACT_MAX items gets its cache's
index built by a real `search` worker when it succeeds (recall@50 against exact search
measured and stored), and the search API then answers through it (`exact: false`)."""

import time

import pytest

from classifier.cache import cache_dir
from classifier.models import JobStatus, SearchIndex
from classifier.search_jobs import index_path, index_request
from tests.classifier.conftest import tiny_checkpoint  # noqa: F401
from tests.search.test_duplicates import make_copies_run
from tests.validation.conftest import api_for

pytestmark = [pytest.mark.torch, pytest.mark.worker]


def wait_for_index(timeout: float = 60) -> SearchIndex:
    deadline = time.monotonic() + timeout
    while True:
        row = SearchIndex.objects.first()
        if row is not None and row.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return row
        assert time.monotonic() < deadline, row and row.status
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_large_run_gets_an_index_and_search_uses_it(
    settings,
    monkeypatch,
    tiny_checkpoint,  # noqa: F811
    start_worker,
) -> None:
    settings.SIEVE_SEARCH_EXACT_MAX = 5
    monkeypatch.setenv("SIEVE_SEARCH_EXACT_MAX", "5")  # the worker's too
    start_worker("search")
    run, lead = make_copies_run(settings, tiny_checkpoint)  # 12 items > 5: an index
    row = wait_for_index()
    assert row.status == JobStatus.SUCCEEDED, row.error
    assert row.dataset_id == run.dataset_id
    assert row.kind.startswith("IVF")
    assert row.kind.endswith(",SQ8")
    assert row.items == 12
    assert row.recall_at_50 == pytest.approx(1.0)
    assert row.memory_bytes > 0
    assert row.build_seconds >= 0
    assert row.finished is not None
    folder = cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights)
    assert row.folder == str(folder.relative_to(settings.MEDIA_ROOT))
    assert index_path(folder, row.fingerprint).is_file()
    # Fresh: asking again queues nothing.
    assert index_request(dataset_id=run.dataset_id, folder=folder).status == JobStatus.SUCCEEDED
    # The search worker answers "more like this" through the index.
    item = run.dataset.items.order_by("id").first()
    response = api_for(lead).post(
        f"/api/runs/{run.pk}/search/", {"item": item.pk, "k": 3}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["exact"] is False
    assert body["results"][0]["item"] == item.pk
    assert len(body["results"]) == 3


@pytest.mark.django_db(transaction=True)
def test_small_run_gets_no_index(settings, tiny_checkpoint) -> None:  # noqa: F811
    make_copies_run(settings, tiny_checkpoint)  # 12 items, far below the default 2,000,000
    assert not SearchIndex.objects.exists()
