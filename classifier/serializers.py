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
