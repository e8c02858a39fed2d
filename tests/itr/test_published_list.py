"""The published study, replayed through the API: the real 4,471-tweet dataset and its list of
218 relabelled test items; five reviewers review every listed item (a majority confirming the
list's labels, with dissent that does not change it) and some unlisted items (a majority
keeping the published labels). The change export must then be the published list byte for
byte, and the summary must count its 124 text, 61 image and 33 double changes."""

import random

import krippendorff
import numpy as np
import pytest

from annotate.itr.models import ItrItem, ItrReview
from tests.itr.conftest import ITR_LIST, api_for

PAIRS = [(0, 0), (0, 1), (1, 0), (1, 1)]
UNLISTED_REVIEWED = 40


def votes_for(target: tuple[int, int], rng: random.Random) -> list[tuple[int, int]]:
    """Five votes whose per-task majority is `target`: up to two dissenters, each giving any
    other pair (so at most two votes against the target on each task)."""
    dissenters = rng.choice([0, 0, 1, 2])
    votes = [target] * (5 - dissenters)
    votes += [rng.choice([p for p in PAIRS if p != target]) for _ in range(dissenters)]
    rng.shuffle(votes)
    return votes


def post_review(client, item: ItrItem, labels: tuple[int, int], n: int) -> None:
    reason = "" if labels == item.original else f"reviewer {n}: the labels do not fit"
    body = {
        "item": item.pk,
        "text_is_represented": labels[0],
        "image_adds": labels[1],
        "reason": reason,
        "key": f"study-{item.pk}",
    }
    response = client.post("/api/itr/reviews/", body, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.timeout(900)
def test_the_published_study_through_the_api(itr_real, reviewers, lee) -> None:
    rng = random.Random(2024)
    test_items = list(ItrItem.objects.filter(dataset=itr_real, split="test").order_by("row"))
    assert len(test_items) == 895
    listed = [i for i in test_items if i.listed]
    assert len(listed) == 218
    unlisted = rng.sample([i for i in test_items if not i.listed], UNLISTED_REVIEWED)
    plan: dict[int, list[tuple[int, int]]] = {}
    for item in listed:
        plan[item.pk] = votes_for((item.listed_text, item.listed_image), rng)
    for item in unlisted:
        plan[item.pk] = votes_for(item.original, rng)
    by_pk = {i.pk: i for i in test_items}
    clients = [api_for(user) for user in reviewers]

    # rev1 takes its items from the queue: the listed items come first.
    queued = []
    for _ in listed:
        response = clients[0].get(f"/api/itr/{itr_real.pk}/next/")
        assert response.status_code == 200
        pk = response.json()["id"]
        queued.append(pk)
        post_review(clients[0], by_pk[pk], plan[pk][0], 1)
    assert set(queued) == {i.pk for i in listed}
    # The others review by id, in a shuffled order; rev1 then the unlisted ones.
    for n, client in enumerate(clients[1:], start=2):
        order = [i.pk for i in listed]
        rng.shuffle(order)
        for pk in order:
            post_review(client, by_pk[pk], plan[pk][n - 1], n)
    for n, client in enumerate(clients, start=1):
        for item in unlisted:
            post_review(client, item, plan[item.pk][n - 1], n)
    assert ItrReview.objects.count() == 5 * (218 + UNLISTED_REVIEWED)

    lead = api_for(lee)
    published = ITR_LIST.read_bytes()
    exported = lead.get(f"/api/itr/{itr_real.pk}/export/?set=changes")
    assert exported.status_code == 200
    assert exported.content == published

    summary = lead.get(f"/api/itr/{itr_real.pk}/summary/").json()
    assert (summary["text"], summary["image"], summary["both"]) == (124, 61, 33)
    assert summary["changed"] == 218
    assert summary["items"] == 895
    assert summary["reviewed"] == 218 + UNLISTED_REVIEWED
    assert summary["status"]["consensus"] == 218 + UNLISTED_REVIEWED
    assert summary["listed"] == {"items": 218, "settled": 218, "confirmed": 218, "kept": 0}
    assert summary["spearman_before"] is None  # no model signal
    for task, key in ((0, "alpha_text"), (1, "alpha_image")):
        columns = sorted(plan)
        data = np.array([[plan[pk][r][task] for pk in columns] for r in range(5)], dtype=float)
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        assert summary[key] == pytest.approx(expected, abs=1e-4), key
    agreement = {r["reviewer"]: r for r in summary["reviewers"]}
    assert sorted(agreement) == ["rev1", "rev2", "rev3", "rev4", "rev5"]
    assert all(r["reviews"] == 218 + UNLISTED_REVIEWED for r in agreement.values())

    # The corrected set keeps 895 rows; removing the changed ones leaves 895 - 218.
    corrected = lead.get(f"/api/itr/{itr_real.pk}/export/?set=corrected").content.decode()
    removed = lead.get(f"/api/itr/{itr_real.pk}/export/?set=removed").content.decode()
    assert len(corrected.splitlines()) == 1 + 895
    assert len(removed.splitlines()) == 1 + 895 - 218
