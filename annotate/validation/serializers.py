"""What the API answers about samples, items, verdicts and a sample's metrics: one output
serializer per response, so the OpenAPI schema describes the real JSON. The metric tables are
computed in `metrics.py` as plain dicts; these serializers render exactly the documented keys."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.rest import ErrorSerializer, OptionalCharField
from annotate.validation.assignment import sample_progress
from annotate.validation.models import Sample, Verdict

NULLABLE_FLOAT = {"allow_null": True}


# ---------------------------------------------------------------- samples


class SampleProgressSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    wanted = serializers.IntegerField(help_text="verdicts wanted (hit or miss)")
    given = serializers.IntegerField(help_text="hit/miss verdicts given, up to the wanted ones")
    done = serializers.IntegerField(help_text="complete items: skips do not count")
    percent = serializers.FloatField()


class SampleSerializer(serializers.Serializer):
    """A sample. Context: optionally `progress` ({sample id: progress}, counted for a whole
    list at once)."""

    id = serializers.IntegerField()
    run = serializers.IntegerField(source="run_id")
    dataset = serializers.IntegerField(source="run.dataset_id")
    taxonomy = serializers.IntegerField(source="run.taxonomy_id")
    classes = serializers.IntegerField()
    per_class = serializers.IntegerField()
    seed = serializers.IntegerField()
    redundancy = serializers.IntegerField()
    overlap = serializers.FloatField()
    min_probability = serializers.FloatField()
    exclude_previous = serializers.BooleanField()
    blind = serializers.BooleanField()
    status = serializers.ChoiceField(choices=Sample.Status.choices)
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created = serializers.DateTimeField()
    progress = serializers.SerializerMethodField()

    @extend_schema_field(SampleProgressSerializer)
    def get_progress(self, sample: Sample) -> dict:
        progress = self.context.get("progress", {}).get(sample.pk)
        return SampleProgressSerializer(progress or sample_progress(sample=sample)).data


class SampleItemSerializer(serializers.Serializer):
    """A row of a sample's frozen item list. Context: `lead` (the caller leads the dataset:
    adds `verdicts`) and `hide_probability` (blind sample, caller not a lead)."""

    id = serializers.IntegerField()
    position = serializers.IntegerField()
    external_id = serializers.CharField(source="prediction.item.external_id")
    label = serializers.CharField(source="prediction.label.key")
    probability = serializers.SerializerMethodField()
    wanted_verdicts = serializers.IntegerField()
    verdicts = serializers.IntegerField(
        source="verdict_count", required=False, help_text="hit/miss verdicts so far (leads only)"
    )

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_probability(self, item) -> float | None:
        return None if self.context.get("hide_probability") else item.prediction.probability

    def to_representation(self, item) -> dict:
        row = super().to_representation(item)
        if not self.context.get("lead"):
            del row["verdicts"]
        return row


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()


class NextItemSerializer(serializers.Serializer):
    """What an annotator sees of an item (`api.next_item_json`)."""

    id = serializers.IntegerField()
    sample = serializers.IntegerField()
    position = serializers.IntegerField()
    item = serializers.IntegerField()
    external_id = serializers.CharField()
    caption = serializers.CharField(allow_blank=True)
    label = LabelSerializer()
    prompt = serializers.CharField(help_text="the first prompt the model used for the label")
    prompts = serializers.ListField(
        child=serializers.CharField(), help_text="every prompt the model used for the label"
    )
    probability = serializers.FloatField(allow_null=True, help_text="null when blind")
    image_url = serializers.URLField()
    thumbnail_url = serializers.URLField()
    suggestions = LabelSerializer(many=True)
    lease_expires = serializers.DateTimeField(allow_null=True)


# ---------------------------------------------------------------- verdicts


class VerdictSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sample_item = serializers.IntegerField(source="sample_item_id")
    annotator = serializers.CharField(source="annotator.username")
    value = serializers.ChoiceField(choices=Verdict.Value.choices)
    corrected_label = serializers.IntegerField(source="corrected_label_id", allow_null=True)
    corrected_label_key = serializers.CharField(source="corrected_label.key", allow_null=True)
    key = OptionalCharField(help_text="idempotency key")
    duration_ms = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class VerdictConflictSerializer(ErrorSerializer):
    """409: the caller already judged the item (`verdict` is the verdict that stays), or the
    sample is closed (no `verdict`)."""

    verdict = VerdictSerializer(required=False)


class VerdictExportSerializer(serializers.Serializer):
    """A row of the verdict export (JSON, or CSV with these columns)."""

    id = serializers.IntegerField()
    sample_item = serializers.IntegerField(source="sample_item_id")
    position = serializers.IntegerField(source="sample_item.position")
    external_id = serializers.CharField(source="sample_item.prediction.item.external_id")
    label = serializers.CharField(source="sample_item.prediction.label.key")
    probability = serializers.FloatField(source="sample_item.prediction.probability")
    annotator = serializers.CharField(source="annotator.username")
    value = serializers.ChoiceField(choices=Verdict.Value.choices)
    corrected_label = serializers.CharField(source="corrected_label.key", allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


# ---------------------------------------------------------------- metrics


class ThresholdRowSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    classified = serializers.IntegerField()
    hits = serializers.IntegerField()
    errors = serializers.IntegerField()
    hit_rate = serializers.FloatField(**NULLABLE_FLOAT)
    error_rate = serializers.FloatField(**NULLABLE_FLOAT)
    ratio = serializers.FloatField(**NULLABLE_FLOAT)
    ratio_low = serializers.FloatField(**NULLABLE_FLOAT)
    ratio_high = serializers.FloatField(**NULLABLE_FLOAT)
    precision = serializers.FloatField(**NULLABLE_FLOAT)


class HistogramSerializer(serializers.Serializer):
    bins = serializers.ListField(child=serializers.FloatField())
    hits = serializers.ListField(child=serializers.IntegerField())
    misses = serializers.ListField(child=serializers.IntegerField())


class ThresholdsSerializer(serializers.Serializer):
    rows = ThresholdRowSerializer(many=True)
    best_threshold = serializers.FloatField(**NULLABLE_FLOAT)
    best_ratio = serializers.FloatField(**NULLABLE_FLOAT)
    mean_probability_hits = serializers.FloatField(**NULLABLE_FLOAT)
    mean_probability_misses = serializers.FloatField(**NULLABLE_FLOAT)
    items = serializers.IntegerField()
    decided = serializers.IntegerField()
    ties = serializers.IntegerField()
    pending = serializers.IntegerField()
    step = serializers.FloatField()
    histogram = HistogramSerializer()


class ClassRowSerializer(serializers.Serializer):
    label = serializers.CharField()
    label_key = serializers.CharField()
    label_id = serializers.IntegerField()
    frequency = serializers.IntegerField()
    sampled = serializers.IntegerField()
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    ties = serializers.IntegerField()
    accuracy = serializers.FloatField(**NULLABLE_FLOAT)
    accuracy_low = serializers.FloatField(**NULLABLE_FLOAT)
    accuracy_high = serializers.FloatField(**NULLABLE_FLOAT)


class ClassesSerializer(serializers.Serializer):
    rows = ClassRowSerializer(many=True)


class AgreementPairSerializer(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    kappa = serializers.FloatField(**NULLABLE_FLOAT)
    items = serializers.IntegerField()
    agreement = serializers.FloatField(**NULLABLE_FLOAT)


class AgreementSerializer(serializers.Serializer):
    alpha = serializers.FloatField(**NULLABLE_FLOAT)
    items = serializers.IntegerField()
    pairs = AgreementPairSerializer(many=True)


class ScoreRowSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    name = serializers.CharField()
    model = serializers.CharField()
    ensemble = serializers.CharField()
    status = serializers.CharField()
    current = serializers.BooleanField()
    covered = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(**NULLABLE_FLOAT)
    accuracy_low = serializers.FloatField(**NULLABLE_FLOAT)
    accuracy_high = serializers.FloatField(**NULLABLE_FLOAT)


class ScoresSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    rows = ScoreRowSerializer(many=True)


class AnnotatorProgressSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    verdicts = serializers.IntegerField(help_text="skips included")
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    skips = serializers.IntegerField()
    corrected = serializers.IntegerField()
    last = serializers.DateTimeField()


class LabelProgressSerializer(serializers.Serializer):
    label = serializers.CharField()
    items = serializers.IntegerField()
    started = serializers.IntegerField()
    complete = serializers.IntegerField()
    decided = serializers.IntegerField()
    ties = serializers.IntegerField()
    verdicts = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    verdicts = serializers.IntegerField()
    items = serializers.IntegerField()
    wanted = serializers.IntegerField()
    given = serializers.IntegerField()
    complete = serializers.IntegerField()
    percent = serializers.FloatField()
    annotators = AnnotatorProgressSerializer(many=True)
    labels = LabelProgressSerializer(many=True)
