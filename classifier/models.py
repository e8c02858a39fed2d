from django.conf import settings
from django.db import models

from annotate.datasets.models import Dataset, Item
from annotate.taxonomies.models import Label, Taxonomy


class ClassificationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Ensemble(models.TextChoices):
        IMAGE = "image", "Image only"
        WEIGHTED = "weighted", "Weighted image + caption"
        CONDITIONAL = "conditional", "Image, caption when unsure"
        EXTERNAL = "external", "Imported predictions"

    class Source(models.TextChoices):
        MODEL = "model", "Model on GPU workers"
        CACHE = "cache", "Re-scored from the embedding cache"
        IMPORT = "import", "Imported predictions"
        PROBE = "probe", "Probe learned from verdicts"

    TERMINAL = ("succeeded", "failed", "cancelled")

    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.PROTECT, related_name="runs")
    model = models.CharField(max_length=100, default="ViT-B-32")
    weights = models.CharField(max_length=1000, blank=True)  # pretrained tag or checkpoint path
    ensemble = models.CharField(max_length=12, choices=Ensemble.choices, default=Ensemble.IMAGE)
    w_img = models.FloatField(default=0.8)
    w_txt = models.FloatField(default=0.2)
    condition_threshold = models.FloatField(default=0.6)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Extra prompt templates averaged per label in embedding space (empty: the taxonomy's).
    templates = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MODEL)
    item_count = models.PositiveIntegerField(default=0)  # items of the run, fixed at dispatch
    # {reason: count} of items without a prediction (filled when the run ends).
    unreadable = models.JSONField(default=dict, blank=True)
    # {label_id: predictions} over the whole run, written once when the run succeeds: a
    # finished run's counts never change, so no request counts 10M rows for them.
    label_counts = models.JSONField(default=dict, blank=True)
    # Hidden runs (junk, experiments) leave the lists but keep their samples and verdicts.
    hidden = models.BooleanField(default=False)
    # A probe run (source "probe") learned from the verdicts on its parent's dataset, over the
    # parent's cached embeddings (docs/architecture.md#probe). It outlives a deleted parent.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="probes"
    )
    # A probe run's figures and progress: {"verdict_items", "folds", "alpha",
    # "cross_validated_accuracy", "zero_shot_accuracy", "mcnemar_p", ..., "progress"}.
    probe = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"


# Prediction.shuffle = cube((item_id * G) mod P) mod Q: the first step is a bijection of the
# ids mod P (MINSTD), the cube a bijection mod Q because Q = 2 mod 3, and non-linear, so
# consecutive ids land far apart with no visible stride. Every product stays below 2^63.
SHUFFLE_G, SHUFFLE_P, SHUFFLE_Q = 48271, 2147483647, 2147483579


def shuffle_expression(column: str):
    """`shuffle_of` as a database expression (PostgreSQL and SQLite alike)."""
    a = (models.F(column) * SHUFFLE_G) % SHUFFLE_P
    return models.ExpressionWrapper(
        (((a * a) % SHUFFLE_Q) * a) % SHUFFLE_Q, output_field=models.BigIntegerField()
    )


def shuffle_of(item_id: int) -> int:
    """`Prediction.shuffle` of an item, in [0, 2^31)."""
    a = (item_id * SHUFFLE_G) % SHUFFLE_P
    return (((a * a) % SHUFFLE_Q) * a) % SHUFFLE_Q


class Prediction(models.Model):
    # No separate index on run: the unique (run, item) index serves run lookups, and one index
    # less makes bulk loads of a million predictions faster.
    run = models.ForeignKey(
        ClassificationRun, on_delete=models.CASCADE, related_name="predictions", db_index=False
    )
    # No database-level foreign keys to items and labels: their per-row checks were half the
    # time of bulk loading a million predictions. Django still enforces on_delete (CASCADE,
    # PROTECT) for ORM deletes, and rows are written only by classifier.services.
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="predictions", db_constraint=False
    )
    label = models.ForeignKey(
        Label, on_delete=models.PROTECT, related_name="predictions", db_constraint=False
    )
    probability = models.FloatField()
    # [[label_id, probability], ...] best first, at most 5.
    top5 = models.JSONField(default=list, blank=True)
    image_probability = models.FloatField(null=True, blank=True)  # max P_img
    text_probability = models.FloatField(null=True, blank=True)  # max P_txt
    # argmax P_img and argmax P_txt: the explorer's image-caption disagreement filter. Null
    # for imported predictions, for rows written before they were stored, and (caption) for
    # the `image` ensemble and items without a caption.
    image_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_constraint=False, db_index=False,
    )  # fmt: skip
    text_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_constraint=False, db_index=False,
    )  # fmt: skip
    # A pseudo-random key in [0, 2^31) that the database computes from the item id, so every
    # writer (COPY, bulk_create, fixtures) sets it: the explorer's random order walks it with
    # keyset pagination (docs/architecture.md#explorer).
    shuffle = models.GeneratedField(
        expression=shuffle_expression("item_id"),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="unique_prediction")]
        # The explorer's keyset pages (docs/architecture.md#explorer): each order is one index
        # range scan. (run, label, ...) also serves the per-label counts, and
        # (run, probability, ...) the coverage table. Every index costs bulk loads (COPY of a
        # re-scored run), so there is no second random-order index for a label.
        indexes = [
            models.Index(fields=["run", "label", "probability", "id"], name="prediction_run_label"),
            models.Index(fields=["run", "probability", "id"], name="prediction_run_prob"),
            # The random order's index ends with the probability and the label (after the
            # unique id, so the order is unchanged): bounds and a label are checked in the
            # index while walking it, without visiting the table. With a rare label the
            # planner sorts that label's rows instead (docs/architecture.md#explorer).
            models.Index(
                fields=["run", "shuffle", "id", "probability", "label"],
                name="prediction_run_shuffle_pl",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.label_id} ({self.probability:.3f})"


class RunChunk(models.Model):
    """A slice of a run's items (ids first_item_id..last_item_id), processed by one Celery task.

    Chunks make a run resumable: only chunks that are not `done` are ever re-dispatched, and
    `heartbeat` (touched after every batch) lets a sweep spot chunks whose worker died."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(ClassificationRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_item_id = models.BigIntegerField()
    last_item_id = models.BigIntegerField()
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # {reason: count} of the chunk's images that could not be classified.
    unreadable = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_run_chunk")]

    def __str__(self) -> str:
        return f"run {self.run_id} chunk {self.index} ({self.status})"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SearchIndex(models.Model):
    """An approximate nearest-neighbour index over one embedding cache folder (one dataset,
    model and weights), built by a `search` worker (docs/architecture.md#search). The index
    file lives next to the cache; `fingerprint` names the chunk files it was built from, so
    a cache that grew since is rebuilt, never trusted."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    folder = models.CharField(max_length=500, unique=True)  # cache folder, relative to media
    fingerprint = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    kind = models.CharField(max_length=40, blank=True)  # e.g. "IVF1024,SQ8"
    items = models.PositiveIntegerField(default=0)
    build_seconds = models.FloatField(null=True, blank=True)
    memory_bytes = models.BigIntegerField(null=True, blank=True)
    recall_at_50 = models.FloatField(null=True, blank=True)  # against exact search, measured
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"search index {self.folder}"


class DuplicateScan(models.Model):
    """Near-duplicate groups of a run's items at one similarity threshold, found by a
    `search` worker (docs/architecture.md#near-duplicates)."""

    run = models.ForeignKey(ClassificationRun, on_delete=models.CASCADE, related_name="+")
    min_similarity = models.FloatField()
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    done = models.PositiveIntegerField(default=0)  # items scanned
    total = models.PositiveIntegerField(default=0)
    # [{"items": [item ids], "similarity": lowest linking cosine}], largest groups first.
    groups = models.JSONField(default=list, blank=True)
    exact = models.BooleanField(default=True)
    # Each item's nearest other item: {"median", "p90", "p99", "linked_share"} (cosines; the
    # share of items with one at or above min_similarity), to tell reposts from a model that
    # puts distinct images this close.
    nearest = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["run", "min_similarity", "-id"], name="dupscan_lookup")]

    def __str__(self) -> str:
        return f"duplicate scan {self.pk} of run {self.run_id}"
