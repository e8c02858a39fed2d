"""What the API answers about runs: one output serializer per response, so the OpenAPI schema
describes the real JSON."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.rest import (
    IdOrNameField,
    OptionalCharField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    absolute_url,
)
from classifier.models import ClassificationRun
from classifier.selectors import run_error_for, run_progress
from classifier.services import ENSEMBLES


class RunProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    predicted = serializers.IntegerField()
    unreadable = serializers.IntegerField()
    unreadable_by_reason = serializers.DictField(child=serializers.IntegerField())
    processed = serializers.IntegerField()
    percent = serializers.FloatField()
    elapsed_seconds = serializers.FloatField()
    items_per_second = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True)


class ProbeProgressSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=["queued", "training", "writing", "done"])
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class ProbeExamplesSerializer(serializers.Serializer):
    positive = serializers.IntegerField(help_text="labels a verdict says are right")
    not_label = serializers.IntegerField(help_text="labels a verdict says are wrong")


def _figure(field: type[serializers.Field], help_text: str, **kwargs) -> serializers.Field:
    """A figure known once the probe succeeded: null before."""
    return field(allow_null=True, help_text=help_text, **kwargs)


class ProbeSerializer(serializers.Serializer):
    """A probe run's training options, progress and, once it succeeded, its figures against
    the parent's zero-shot predictions (docs/architecture.md#probe)."""

    folds = serializers.IntegerField(help_text="cross-fitting folds over the verdict items")
    seed = serializers.IntegerField()
    progress = ProbeProgressSerializer()
    parent = _figure(serializers.IntegerField, "the run it learned from")
    verdict_items = _figure(serializers.IntegerField, "items whose verdicts gave examples")
    examples = ProbeExamplesSerializer(allow_null=True)
    judged_items = _figure(
        serializers.IntegerField, "verdict items the facts decide for the probe and the parent"
    )
    cross_validated_accuracy = _figure(
        serializers.FloatField, "the probe's accuracy on the judged items, each predicted by a "
        "head that never saw it"
    )  # fmt: skip
    cross_validated_low = _figure(serializers.FloatField, "95% Wilson interval")
    cross_validated_high = _figure(serializers.FloatField, "95% Wilson interval")
    zero_shot_accuracy = _figure(
        serializers.FloatField, "the parent's accuracy on the same judged items"
    )
    zero_shot_low = _figure(serializers.FloatField, "95% Wilson interval")
    zero_shot_high = _figure(serializers.FloatField, "95% Wilson interval")
    probe_only = _figure(serializers.IntegerField, "judged items only the probe gets right")
    zero_shot_only = _figure(serializers.IntegerField, "judged items only the parent gets right")
    mcnemar_p = _figure(serializers.FloatField, "exact McNemar p-value of the difference")
    alpha = _figure(
        serializers.FloatField, "the final head is alpha * trained + (1 - alpha) * zero-shot"
    )
    fold_alphas = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    l2 = _figure(serializers.FloatField, "pull toward the zero-shot weights")
    rank = _figure(serializers.IntegerField, "dimensions of the label-free basis")
    active_labels = _figure(serializers.IntegerField, "labels with at least one example")
    trainings = _figure(serializers.IntegerField, "heads trained, all folds and alphas")
    seconds = serializers.DictField(
        child=serializers.FloatField(), allow_null=True, help_text="seconds per phase"
    )


class RunSerializer(serializers.Serializer):
    """A run. Context: `request` (absolute URLs), `roles` ({dataset id: caller's role}, for
    `error`) and optionally `progress` ({run id: progress}, counted for a whole page at once)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    dataset = serializers.IntegerField(source="dataset_id")
    dataset_name = serializers.CharField(source="dataset.name")
    taxonomy = serializers.IntegerField(source="taxonomy_id")
    taxonomy_name = serializers.CharField(source="taxonomy.name")
    model = serializers.CharField()
    weights = OptionalCharField(help_text="pretrained tag or checkpoint path")
    ensemble = serializers.ChoiceField(choices=ClassificationRun.Ensemble.choices)
    w_img = serializers.FloatField()
    w_txt = serializers.FloatField()
    condition_threshold = serializers.FloatField()
    templates = serializers.ListField(child=serializers.CharField())
    source = serializers.ChoiceField(choices=ClassificationRun.Source.choices)
    parent = serializers.IntegerField(
        source="parent_id",
        allow_null=True,
        help_text="a probe run's parent: the run it learned from",
    )
    probe = serializers.SerializerMethodField(help_text="a probe run's figures; null for others")
    status = serializers.ChoiceField(choices=ClassificationRun.Status.choices)
    hidden = serializers.BooleanField(help_text="left out of the run lists")
    error = serializers.SerializerMethodField(
        help_text="why the run failed; the details for admins of the dataset only"
    )
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="the run's page")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, run: ClassificationRun) -> str | None:
        return run_error_for(run, self.context.get("roles", {}).get(run.dataset_id))

    @extend_schema_field(RunProgressSerializer)
    def get_progress(self, run: ClassificationRun) -> dict:
        progress = self.context.get("progress", {}).get(run.pk)
        return RunProgressSerializer(progress or run_progress(run=run)).data

    @extend_schema_field(ProbeSerializer(allow_null=True))
    def get_probe(self, run: ClassificationRun) -> dict | None:
        if run.source != ClassificationRun.Source.PROBE:
            return None
        return ProbeSerializer(run.probe or {}).data

    @extend_schema_field(serializers.URLField())
    def get_url(self, run: ClassificationRun) -> str:
        return absolute_url(self.context.get("request"), reverse("run-detail", args=[run.pk]))


class RunCreateSerializer(serializers.Serializer):
    dataset = StrictIntegerField(min_value=1)
    taxonomy = IdOrNameField(help_text="taxonomy id or name")
    model = StrictCharField(default="ViT-B-32", max_length=100)
    weights = StrictCharField(
        default="", allow_blank=True, max_length=1000, help_text="pretrained tag or checkpoint"
    )
    ensemble = serializers.ChoiceField(choices=ENSEMBLES, default="image")
    w_img = StrictFloatField(default=0.8, min_value=0, max_value=1)
    w_txt = StrictFloatField(default=0.2, min_value=0, max_value=1)
    condition_threshold = StrictFloatField(default=0.6, min_value=0, max_value=1)
    templates = serializers.ListField(
        child=StrictCharField(max_length=300, allow_blank=True),
        default=list,
        max_length=50,
        help_text="prompt templates with one {} for the label (blank ones are dropped)",
    )
    name = StrictCharField(default="", allow_blank=True, max_length=200)


class CoverageRowSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    classified = serializers.IntegerField()
    percent = serializers.FloatField()


class CoverageSerializer(serializers.Serializer):
    rows = CoverageRowSerializer(many=True)


class LabelCountSerializer(serializers.Serializer):
    label_id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField()
    percent = serializers.FloatField()


class LabelDistributionSerializer(serializers.Serializer):
    rows = LabelCountSerializer(many=True)


class RunDeletedSerializer(serializers.Serializer):
    """What a deleted run took with it."""

    run = serializers.IntegerField(help_text="the deleted run's id")
    predictions = serializers.IntegerField()
    samples = serializers.IntegerField()
    verdicts = serializers.IntegerField()
