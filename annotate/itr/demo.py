"""The ITR part of the demo: the published dataset (bundled in annotate/itr/data) with its
published list of relabelled items, and a review study already under way.

Three simulated reviewers (accounts without a usable password) have reviewed the first listed
items of the queue: they mostly confirm the list's labels, sometimes keep the original, and
give a reason whenever they change a label, so the dashboard, the lead's queue and the
agreement figures look like a real study's. The demo's people (annotator1, annotator2, lead)
review the rest from the review page: items with two simulated reviews reach consensus with
their vote.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.itr.importers import itr_import
from annotate.itr.models import ItrItem
from annotate.itr.services import review_record

DATA = Path(__file__).resolve().parent / "data"
DEMO_ITR_DATASET = "itr"
SIMULATED = ["reviewer-sim-1", "reviewer-sim-2", "reviewer-sim-3"]
FULLY_REVIEWED = 60  # listed items with three simulated reviews (consensus reached)
HALF_REVIEWED = 60  # the next ones with two (a person's vote completes the quorum)
AGREE = 0.8  # chance that a simulated reviewer gives the list's label on a task

REASONS = {
    "text": [
        "The words of the tweet are visible in the picture.",
        "The image shows what the text talks about.",
        "Nothing in the image corresponds to the text.",
    ],
    "image": [
        "The photo adds context the text does not give.",
        "The image only repeats what the tweet says.",
        "Without the picture the joke does not work.",
    ],
}


@dataclass
class ItrDemoResult:
    dataset_id: int
    items: int
    reviews: int


def _vote(rng: random.Random, original: tuple[int, int], listed: tuple[int, int]) -> tuple:
    labels = tuple(listed[task] if rng.random() < AGREE else original[task] for task in (0, 1))
    changed = [
        name for task, name in enumerate(("text", "image")) if labels[task] != original[task]
    ]
    reason = " ".join(rng.choice(REASONS[name]) for name in changed)
    return labels, reason


def itr_demo_seed(*, members: list[tuple[str, str]]) -> ItrDemoResult:
    """Import the bundled ITR data as dataset `itr`, add `members` ((username, role) pairs) and
    the simulated reviewers, and record their reviews."""
    result = itr_import(
        name=DEMO_ITR_DATASET,
        csv_path=DATA / "textimage-data.csv",
        controversial=DATA / "controversial_samples.txt",
    )
    dataset = Dataset.objects.get(pk=result.dataset_id)
    User = get_user_model()
    for username, role in members:
        membership_set(dataset=dataset, user=User.objects.get(username=username), role=role)
    simulated = []
    for username in SIMULATED:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
        membership_set(dataset=dataset, user=user, role=Role.ANNOTATOR)
        simulated.append(user)
    rng = random.Random(9)  # noqa: S311 - simulated votes, not secrets
    listed = ItrItem.objects.filter(dataset=dataset, listed=True).order_by("priority", "row")
    reviews = 0
    for index, item in enumerate(listed[: FULLY_REVIEWED + HALF_REVIEWED]):
        reviewers = simulated if index < FULLY_REVIEWED else simulated[:2]
        for user in reviewers:
            (text, image), reason = _vote(
                rng, item.original, (item.listed_text or 0, item.listed_image or 0)
            )
            review_record(
                item=item,
                reviewer=user,
                text_is_represented=text,
                image_adds=image,
                reason=reason,
            )
            reviews += 1
    return ItrDemoResult(dataset.pk, result.items, reviews)
