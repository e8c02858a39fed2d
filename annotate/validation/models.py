from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.taxonomies.models import Label
from classifier.models import ClassificationRun, JobStatus, Prediction


class Sample(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Strategy(models.TextChoices):
        # Only a balanced sample is random: its tables estimate the run's accuracy. The
        # targeted ones find labels to fix (docs/architecture.md#sample-strategies).
        BALANCED = "balanced", "Balanced random"
        SUSPECTS = "suspects", "Likely errors (targeted)"
        UNCERTAIN = "uncertain", "Probe's least certain (targeted)"

    run = models.ForeignKey(ClassificationRun, on_delete=models.CASCADE, related_name="samples")
    classes = models.PositiveIntegerField(default=10)  # top-N labels by frequency
    per_class = models.PositiveIntegerField(default=100)  # K items per label
    seed = models.BigIntegerField(default=0)
    redundancy = models.PositiveIntegerField(default=1)  # verdicts wanted per item
    overlap = models.FloatField(default=0.1)  # share of items that get >= 2 verdicts
    min_probability = models.FloatField(default=0.0)
    exclude_previous = models.BooleanField(default=False)
    blind = models.BooleanField(default=False)  # hide probabilities from annotators
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.BALANCED)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"sample {self.pk} of run {self.run_id}"

    @property
    def random(self) -> bool:
        """True only for balanced samples, whose rates estimate the run's accuracy."""
        return self.strategy == self.Strategy.BALANCED


class SampleItem(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="items")
    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    wanted_verdicts = models.PositiveIntegerField(default=1)
    # Denormalised count of hit and miss verdicts (a skip hands the item to someone else, so
    # it does not count), kept by the verdict service, so that assignment can skip finished
    # items without counting rows.
    verdict_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sample", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "position"], name="unique_sample_position"),
            models.UniqueConstraint(fields=["sample", "prediction"], name="unique_sample_pred"),
        ]

    def __str__(self) -> str:
        return f"sample {self.sample_id} #{self.position}"


class Lease(models.Model):
    """An item handed to one annotator for a few minutes, so two people don't get it at once."""

    sample_item = models.ForeignKey(SampleItem, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    expires = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sample_item", "annotator"], name="unique_lease")
        ]

    def __str__(self) -> str:
        return f"lease of {self.sample_item_id} to {self.annotator_id}"


class Verdict(models.Model):
    class Value(models.TextChoices):
        HIT = "hit", "Hit"
        MISS = "miss", "Miss"
        SKIP = "skip", "Skip"

    sample_item = models.ForeignKey(SampleItem, on_delete=models.CASCADE, related_name="verdicts")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verdicts"
    )
    value = models.CharField(max_length=4, choices=Value.choices)
    corrected_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    key = models.CharField(max_length=100, blank=True)  # idempotency key, "" when none
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sample_item", "annotator"], name="unique_verdict"),
            models.UniqueConstraint(
                fields=["annotator", "key"], condition=~Q(key=""), name="unique_verdict_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value} on {self.sample_item_id} by {self.annotator_id}"


class Adjudication(models.Model):
    """A lead's final say on a sample item: it overrides the annotators' majority in every
    table (docs/architecture.md#adjudication)."""

    class Value(models.TextChoices):
        HIT = "hit", "Hit"
        MISS = "miss", "Miss"

    sample_item = models.OneToOneField(
        SampleItem, on_delete=models.CASCADE, related_name="adjudication"
    )
    value = models.CharField(max_length=4, choices=Value.choices)
    corrected_label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.value} on {self.sample_item_id} (adjudicated)"


class CuratedExport(models.Model):
    """A curated dataset written by a worker from a sample's selection
    (docs/architecture.md#curated-export): the rule, the file once written, its manifest."""

    Status = JobStatus  # queued, running, succeeded, failed: as every job of the project

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON lines"
        IMAGEFOLDER = "imagefolder", "Hugging Face imagefolder (zip)"

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="exports")
    # {"threshold": T} or {"target_precision": P}, plus "include_unvalidated",
    # "exclude_duplicates" and "exclude_suspects" (curation.parse_rule's keys).
    rule = models.JSONField(default=dict)
    format = models.CharField(max_length=12, choices=Format.choices, default=Format.CSV)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)  # rows written
    total = models.PositiveIntegerField(default=0)  # rows the selection holds
    file = models.CharField(max_length=300, blank=True)  # relative to MEDIA_ROOT
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"curated export {self.pk} of sample {self.sample_id}"
