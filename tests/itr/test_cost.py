"""Query counts of the ITR summary, the exports and the item list, pinned at two dataset sizes:
the same number of queries for 10 and for 300 test items with reviews, reasons and decisions
(timings over the real dataset: benchmarks/itr_bench.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.itr.exports import SETS, itr_export
from annotate.itr.models import ItrItem, ItrReview
from annotate.itr.services import decision_record, refresh_items
from annotate.itr.summary import itr_summary
from tests.itr.conftest import api_for

SIZES = (10, 300)


@pytest.fixture
def studies(make_itr, reviewers, lee) -> dict:
    """{test items: dataset} for each size: five reviews per test item (with reasons where
    they change the labels), a decision on every tenth item, a similarity on each."""
    built = {}
    for n in SIZES:
        labels = [((row // 2) % 2, row % 2) for row in range(n + 5)]
        dataset = make_itr(labels, split=5, name=f"cost{n}")
        items = list(ItrItem.objects.filter(dataset=dataset, split="test"))
        reviews = []
        for k, item in enumerate(items):
            for r, user in enumerate(reviewers):
                t = item.text_is_represented ^ int((k + r) % 4 == 0)
                reason = "" if t == item.text_is_represented else f"{user.username} disagrees"
                reviews.append(
                    ItrReview(
                        item=item,
                        reviewer=user,
                        text_is_represented=t,
                        image_adds=item.image_adds,
                        reason=reason,
                    )
                )
            item.similarity = (k % 17) / 17
        ItrReview.objects.bulk_create(reviews)
        ItrItem.objects.bulk_update(items, ["similarity"])
        refresh_items([item.pk for item in items])
        for k, item in enumerate(items):
            if k % 10 == 0:
                decision_record(item=item, lead=lee, text_is_represented=1, image_adds=1, note="n")
        built[n] = dataset
    return built


def test_summary_and_exports_use_two_queries_at_any_size(studies, django_assert_num_queries):
    for dataset in studies.values():
        with django_assert_num_queries(2):
            summary = itr_summary(dataset)
        assert summary["reviews"] == 5 * summary["items"]
        assert summary["alpha_text"] is not None
        assert summary["spearman_after"] is not None
        for which in SETS:
            for fmt in ("csv", "list") if which == "changes" else ("csv",):
                with django_assert_num_queries(2):
                    itr_export(dataset, which, fmt)


def test_endpoints_use_as_many_queries_at_every_size(studies, lee, reviewers) -> None:
    lead, reviewer = api_for(lee), api_for(reviewers[0])
    urls = [
        (lead, "/api/itr/{pk}/summary/"),
        (lead, "/api/itr/{pk}/export/?set=corrected"),
        (lead, "/api/itr/{pk}/export/?set=changes"),
        (lead, "/api/itr/{pk}/items/?split=test&limit=10"),
        (reviewer, "/api/itr/{pk}/items/?split=test&limit=10"),
    ]
    for client, url in urls:
        counts = []
        for dataset in studies.values():
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url.format(pk=dataset.pk))
            assert response.status_code == 200, url
            counts.append(len(ctx.captured_queries))
        assert len(set(counts)) == 1, (url, counts)
        assert counts[0] <= 6, (url, counts)
