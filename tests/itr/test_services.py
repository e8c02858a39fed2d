"""The ITR review queue and the review services, on real PostgreSQL transactions: the queue
shares the lease machinery of the hit/miss page (annotate/leasing.py)."""

import threading
from collections import Counter

import pytest
from django.db import connection

from annotate.errors import Conflict, Invalid
from annotate.itr.models import ItrItem, ItrReview
from annotate.itr.services import (
    decision_record,
    decision_withdraw,
    quorum_set,
    refresh_items,
    review_next,
    review_record,
    review_undo,
)

LABELS = [(0, 0), (0, 1), (1, 0), (1, 1)] * 3  # 12 rows: 6 train, 6 test


@pytest.fixture
def small(make_itr):
    return make_itr(LABELS, split=6)


def item_at(dataset, row: int) -> ItrItem:
    return ItrItem.objects.get(dataset=dataset, row=row)


def test_the_queue_serves_test_items_until_each_has_its_quorum(small, reviewers) -> None:
    served = Counter()
    for reviewer in reviewers:
        while (item := review_next(dataset=small, reviewer=reviewer)) is not None:
            assert item.split == "test"
            served[item.row] += 1
            review_record(
                item=item,
                reviewer=reviewer,
                text_is_represented=item.text_is_represented,
                image_adds=item.image_adds,
            )
    assert served == dict.fromkeys(range(6, 12), 3)
    assert set(
        ItrItem.objects.filter(dataset=small, split="test").values_list("status", flat=True)
    ) == {"consensus"}


def test_a_reload_resumes_the_leased_item_and_exclude_preloads_another(small, reviewers) -> None:
    first = review_next(dataset=small, reviewer=reviewers[0])
    assert review_next(dataset=small, reviewer=reviewers[0]).pk == first.pk
    second = review_next(dataset=small, reviewer=reviewers[0], exclude=[first.pk])
    assert second.pk != first.pk


def test_listed_items_come_first(make_itr, tmp_path, reviewers) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("11->01: 11\n00->10: 8\n")
    dataset = make_itr(LABELS, split=6, name="listed", controversial=listing)
    rows = []
    while (item := review_next(dataset=dataset, reviewer=reviewers[0])) is not None:
        rows.append(item.row)
        review_record(
            item=item,
            reviewer=reviewers[0],
            text_is_represented=item.text_is_represented,
            image_adds=item.image_adds,
        )
    assert rows[:2] == [8, 11]
    assert sorted(rows) == list(range(6, 12))


def test_reviewing_again_updates_the_one_vote(small, reviewers) -> None:
    item = item_at(small, 6)  # original 10? row 6 is (1, 0)... whatever it is:
    original = item.original
    flipped = (1 - original[0], original[1])
    review, created = review_record(
        item=item,
        reviewer=reviewers[0],
        text_is_represented=flipped[0],
        image_adds=flipped[1],
        reason="the words are on the sign",
        key="k1",
    )
    assert created
    again, created = review_record(
        item=item,
        reviewer=reviewers[0],
        text_is_represented=original[0],
        image_adds=original[1],
        key="k2",
    )
    assert not created
    assert again.pk == review.pk
    assert ItrReview.objects.filter(item=item).count() == 1
    assert (again.text_is_represented, again.reason) == (original[0], "")
    assert item_at(small, 6).review_count == 1


def test_the_same_key_is_a_no_op_and_another_items_key_a_conflict(small, reviewers) -> None:
    item, other = item_at(small, 6), item_at(small, 7)
    _first, created = review_record(
        item=item,
        reviewer=reviewers[0],
        text_is_represented=item.original[0],
        image_adds=item.original[1],
        key="same",
    )
    repeat, created_again = review_record(
        item=item,
        reviewer=reviewers[0],
        text_is_represented=1 - item.original[0],
        image_adds=item.original[1],
        reason="changed my mind",
        key="same",
    )
    assert created
    assert not created_again
    assert repeat.text_is_represented == item.original[0]  # the repeat changed nothing
    with pytest.raises(Conflict):
        review_record(
            item=other,
            reviewer=reviewers[0],
            text_is_represented=other.original[0],
            image_adds=other.original[1],
            key="same",
        )


@pytest.mark.parametrize(
    ("text", "image", "reason"), [(2, 0, "x"), ("yes", 0, "x"), (None, 1, "x")]
)
def test_bad_labels_are_refused(small, reviewers, text, image, reason) -> None:
    with pytest.raises(Invalid):
        review_record(
            item=item_at(small, 6),
            reviewer=reviewers[0],
            text_is_represented=text,
            image_adds=image,
            reason=reason,
        )


def test_a_change_needs_a_reason(small, reviewers) -> None:
    item = item_at(small, 6)
    with pytest.raises(Invalid, match="reason is required"):
        review_record(
            item=item,
            reviewer=reviewers[0],
            text_is_represented=1 - item.original[0],
            image_adds=item.original[1],
            reason="   ",
        )
    assert not ItrReview.objects.exists()


def test_undo_deletes_the_vote_and_leases_the_item_back(small, reviewers) -> None:
    item = review_next(dataset=small, reviewer=reviewers[0])
    review, _ = review_record(
        item=item, reviewer=reviewers[0], text_is_represented=0, image_adds=0, reason="r"
    )
    assert review_next(dataset=small, reviewer=reviewers[0]).pk != item.pk
    back = review_undo(review=review)
    assert back.review_count == 0
    assert back.status == "pending"
    assert review_next(dataset=small, reviewer=reviewers[0]).pk == item.pk


def test_decisions_override_and_withdraw(small, reviewers, lee) -> None:
    item = item_at(small, 6)
    flipped = (1 - item.original[0], item.original[1])
    for reviewer in reviewers[:3]:
        review_record(
            item=item,
            reviewer=reviewer,
            text_is_represented=flipped[0],
            image_adds=flipped[1],
            reason="r",
        )
    assert item_at(small, 6).final == flipped
    with pytest.raises(Invalid, match="note is required"):
        decision_record(item=item, lead=lee, text_is_represented=1, image_adds=1, note="")
    decision_record(
        item=item,
        lead=lee,
        text_is_represented=item.original[0],
        image_adds=item.original[1],
        note="the sign is unreadable",
    )
    decided = item_at(small, 6)
    assert (decided.status, decided.final) == ("decided", item.original)
    assert decision_withdraw(item=item).final == flipped


def test_a_lower_quorum_turns_reviews_into_consensus(small, reviewers) -> None:
    item = item_at(small, 6)
    review_record(
        item=item,
        reviewer=reviewers[0],
        text_is_represented=item.original[0],
        image_adds=item.original[1],
    )
    assert item_at(small, 6).status == "in_review"
    quorum_set(dataset=small, quorum=1)
    assert item_at(small, 6).status == "consensus"


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_lose_or_double_a_vote(make_itr, reviewers) -> None:
    """Five reviewers on threads, each submitting every review twice (a retried request)."""
    dataset = make_itr(LABELS * 3, split=6)  # 30 test items
    errors: list[BaseException] = []

    def work(reviewer) -> None:
        try:
            while (item := review_next(dataset=dataset, reviewer=reviewer)) is not None:
                for _ in range(2):
                    review_record(
                        item=item,
                        reviewer=reviewer,
                        text_is_represented=item.original[0],
                        image_adds=1 - item.original[1],
                        reason="the image adds the place",
                        key=f"{reviewer.pk}-{item.pk}",
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    tests = ItrItem.objects.filter(dataset=dataset, split="test")
    assert {i.review_count for i in tests} == {3}
    assert all(i.reviews.count() == 3 for i in tests)
    assert all(i.final == (i.original[0], 1 - i.original[1]) for i in tests)


def test_train_items_are_not_reviewed(small, reviewers) -> None:
    with pytest.raises(Invalid, match="test split"):
        review_record(
            item=item_at(small, 0), reviewer=reviewers[0], text_is_represented=0, image_adds=0
        )


def test_a_path_with_a_newline_under_the_api_answers_json(client, lee) -> None:
    client.force_login(lee)
    response = client.post("/api/runs/a%0Ab/cancel/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_refreshing_many_items_takes_three_queries(
    make_itr, reviewers, django_assert_num_queries
) -> None:
    dataset = make_itr(LABELS * 5, split=6)
    ids = list(ItrItem.objects.filter(dataset=dataset, split="test").values_list("pk", flat=True))
    for pk in ids[:10]:
        item = ItrItem.objects.get(pk=pk)
        review_record(
            item=item,
            reviewer=reviewers[0],
            text_is_represented=item.original[0],
            image_adds=item.original[1],
        )
    ItrItem.objects.filter(pk__in=ids).update(status="pending", review_count=0)  # stale
    with django_assert_num_queries(3):
        refresh_items(ids)
    assert ItrItem.objects.filter(pk__in=ids[:10], status="in_review", review_count=1).count() == 10
