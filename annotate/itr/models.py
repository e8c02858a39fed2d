"""Image-text relation (ITR) relabelling (docs/architecture.md#itr).

An ITR dataset is a Sieve dataset (`Dataset.kind == "itr"`): its items are the tweets (external
id = tweet id, caption = tweet text, image `T{tweet_id}.jpg` when one was given), with the same
memberships and roles. `ItrItem` adds the published labels; reviewers' `ItrReview`s, a lead's
`ItrDecision` and the consensus rule give the corrected labels, which the review service keeps
on the item (`proposed_*`, `final_*`, `status`) so that summaries and exports read one row per
item.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.datasets.models import Dataset, Item
from classifier.models import ClassificationRun

BINARY = [(0, "0"), (1, "1")]


class ItrItem(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # no review yet
        IN_REVIEW = "in_review", "In review"  # reviews, fewer than the quorum
        CONSENSUS = "consensus", "Consensus"  # the quorum is reached
        DECIDED = "decided", "Decided"  # a lead decided

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="itr")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="itr_items")
    row = models.PositiveIntegerField()  # 0-based data row of the imported CSV
    tweet_id = models.CharField(max_length=32)
    user_id = models.CharField(max_length=32, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices)
    # The published labels.
    text_is_represented = models.PositiveSmallIntegerField(choices=BINARY)
    image_adds = models.PositiveSmallIntegerField(choices=BINARY)
    # An imported controversial list named the item, with these proposed labels.
    listed = models.BooleanField(default=False)
    listed_text = models.PositiveSmallIntegerField(choices=BINARY, null=True, blank=True)
    listed_image = models.PositiveSmallIntegerField(choices=BINARY, null=True, blank=True)
    # Model signal (annotate/itr/signal.py): CLIP image-caption cosine similarity, the fitted
    # probabilities of label 1 per task, and the probability of the item's own labels (low =
    # a likely error).
    similarity = models.FloatField(null=True, blank=True)
    p_text = models.FloatField(null=True, blank=True)
    p_image = models.FloatField(null=True, blank=True)
    model_score = models.FloatField(null=True, blank=True)
    # Review queue order (lower first): listed items, then the likeliest errors, then by row.
    priority = models.IntegerField(default=0)
    wanted_reviews = models.PositiveSmallIntegerField(default=3)  # the quorum
    # Kept by the review service in the same transaction as the reviews (services.py).
    review_count = models.PositiveIntegerField(default=0)
    proposed_text = models.PositiveSmallIntegerField(choices=BINARY, null=True, blank=True)
    proposed_image = models.PositiveSmallIntegerField(choices=BINARY, null=True, blank=True)
    final_text = models.PositiveSmallIntegerField(choices=BINARY)
    final_image = models.PositiveSmallIntegerField(choices=BINARY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    disagreement = models.BooleanField(default=False)
    margin = models.FloatField(null=True, blank=True)  # smallest vote margin of the two tasks

    class Meta:
        ordering = ["dataset", "row"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "row"], name="unique_itr_row"),
            models.UniqueConstraint(fields=["dataset", "tweet_id"], name="unique_itr_tweet"),
        ]
        indexes = [models.Index(fields=["dataset", "split", "priority", "row"])]

    def __str__(self) -> str:
        return f"ITR row {self.row} of dataset {self.dataset_id}"

    @property
    def original(self) -> tuple[int, int]:
        return (self.text_is_represented, self.image_adds)

    @property
    def final(self) -> tuple[int, int]:
        return (self.final_text, self.final_image)


class ItrReview(models.Model):
    item = models.ForeignKey(ItrItem, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="itr_reviews"
    )
    text_is_represented = models.PositiveSmallIntegerField(choices=BINARY)
    image_adds = models.PositiveSmallIntegerField(choices=BINARY)
    reason = models.TextField(blank=True)  # required when the review differs from the original
    key = models.CharField(max_length=100, blank=True)  # idempotency key, "" when none
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="unique_itr_review"),
            models.UniqueConstraint(
                fields=["reviewer", "key"], condition=~Q(key=""), name="unique_itr_review_key"
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.item_id} by {self.reviewer_id}"


class ItrLease(models.Model):
    """An item handed to one reviewer for a few minutes (annotate/leasing.py)."""

    item = models.ForeignKey(ItrItem, on_delete=models.CASCADE, related_name="leases")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    expires = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="unique_itr_lease")
        ]

    def __str__(self) -> str:
        return f"lease of {self.item_id} to {self.reviewer_id}"


class ItrDecision(models.Model):
    """A lead's final say on an item: overrides the reviewers' consensus."""

    item = models.OneToOneField(ItrItem, on_delete=models.CASCADE, related_name="decision")
    text_is_represented = models.PositiveSmallIntegerField(choices=BINARY)
    image_adds = models.PositiveSmallIntegerField(choices=BINARY)
    note = models.TextField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"decision on {self.item_id}"


class ItrComment(models.Model):
    """The discussion of an item on the lead's page."""

    item = models.ForeignKey(ItrItem, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"comment on {self.item_id}"


class ItrSignal(models.Model):
    """The model signal of a dataset: which run's embeddings, and the fitted mapping."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="itr_signal")
    run = models.ForeignKey(ClassificationRun, null=True, on_delete=models.SET_NULL)
    details = models.JSONField(default=dict)  # coefficients, train size, fit quality
    created = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"model signal of dataset {self.dataset_id}"
