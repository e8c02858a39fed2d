"""What the API answers about samples, items, verdicts and a sample's metrics: one output
serializer per response, so the OpenAPI schema describes the real JSON. The metric tables are
computed in `metrics.py` as plain dicts; these serializers render exactly the documented keys."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.datasets.api import item_thumbnail_url
from annotate.rest import ErrorSerializer, OptionalCharField
from annotate.validation.assignment import sample_progress
from annotate.validation.models import Adjudication, CuratedExport, Sample, Verdict
from classifier.models import ClassificationRun

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
    strategy = serializers.ChoiceField(choices=Sample.Strategy.choices)
    random = serializers.BooleanField(
        read_only=True,
        help_text="true only for balanced samples, whose rates estimate the run's accuracy",
    )
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
    precision_low = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    precision_high = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    adjudicated = serializers.IntegerField(help_text="of them, items the lead adjudicated")


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
    adjudicated = serializers.IntegerField(help_text="items decided by the lead, not the majority")


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
    adjudicated = serializers.IntegerField(help_text="of them, items the lead adjudicated")


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
    source = serializers.ChoiceField(choices=ClassificationRun.Source.choices)
    parent = serializers.IntegerField(
        allow_null=True, help_text="a probe run's parent: the run it learned from"
    )


class RunPairSerializer(serializers.Serializer):
    """Two runs on the items the facts decide for both (docs/architecture.md#run-comparison)."""

    a = serializers.IntegerField()
    a_name = serializers.CharField()
    b = serializers.IntegerField()
    b_name = serializers.CharField()
    current = serializers.BooleanField(help_text="run a is the sample's run")
    items = serializers.IntegerField(help_text="shared items")
    a_correct = serializers.IntegerField()
    b_correct = serializers.IntegerField()
    both_correct = serializers.IntegerField()
    a_only = serializers.IntegerField(help_text="items only run a gets right")
    b_only = serializers.IntegerField(help_text="items only run b gets right")
    neither = serializers.IntegerField()
    a_accuracy = serializers.FloatField(**NULLABLE_FLOAT)
    b_accuracy = serializers.FloatField(**NULLABLE_FLOAT)
    mcnemar_p = serializers.FloatField(
        **NULLABLE_FLOAT, help_text="exact two-sided McNemar test; null without discordant items"
    )
    probe = serializers.BooleanField(help_text="one run is a probe learned from the other")


class ScoresSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    rows = ScoreRowSerializer(many=True)
    pairs = RunPairSerializer(many=True, help_text="runs compared on their shared items")
    targeted_samples = serializers.IntegerField(
        help_text="targeted (suspects, uncertain) samples among those whose verdicts are the "
        "facts: the items they decide were chosen as likely errors, not at random"
    )


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
    adjudicated = serializers.IntegerField(help_text="items the lead adjudicated")


class ProgressSerializer(serializers.Serializer):
    verdicts = serializers.IntegerField()
    items = serializers.IntegerField()
    wanted = serializers.IntegerField()
    given = serializers.IntegerField()
    complete = serializers.IntegerField()
    percent = serializers.FloatField()
    annotators = AnnotatorProgressSerializer(many=True)
    labels = LabelProgressSerializer(many=True)
    adjudicated = serializers.IntegerField(help_text="items the lead adjudicated")


# ---------------------------------------------------------------- adjudication


class AdjudicationSerializer(serializers.Serializer):
    """A lead's decision on a sample item (docs/architecture.md#adjudication)."""

    id = serializers.IntegerField()
    sample_item = serializers.IntegerField(source="sample_item_id")
    value = serializers.ChoiceField(choices=Adjudication.Value.choices)
    corrected_label = serializers.IntegerField(source="corrected_label_id", allow_null=True)
    corrected_label_key = serializers.CharField(source="corrected_label.key", allow_null=True)
    note = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class DisagreementVerdictSerializer(serializers.Serializer):
    annotator = serializers.CharField(source="annotator.username")
    value = serializers.ChoiceField(choices=Verdict.Value.choices)
    corrected_label = LabelSerializer(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class DisagreementSerializer(serializers.Serializer):
    """A sample item whose annotators disagree (or that the lead decided), with every verdict
    side by side. Context: `request` (absolute thumbnail URLs)."""

    id = serializers.IntegerField()
    position = serializers.IntegerField()
    item = serializers.IntegerField(source="prediction.item_id")
    external_id = serializers.CharField(source="prediction.item.external_id")
    caption = serializers.CharField(source="prediction.item.caption", allow_blank=True)
    thumbnail_url = serializers.SerializerMethodField()
    label = LabelSerializer(source="prediction.label")
    probability = serializers.FloatField(source="prediction.probability")
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    majority = serializers.ChoiceField(
        choices=["hit", "miss", "tie"], help_text="of the hit/miss verdicts, before the lead"
    )
    verdicts = DisagreementVerdictSerializer(many=True)
    adjudication = AdjudicationSerializer(allow_null=True)

    @extend_schema_field(serializers.URLField())
    def get_thumbnail_url(self, item) -> str:
        return item_thumbnail_url(item.prediction.item_id, self.context.get("request"))


class AnnotatorFiguresSerializer(AnnotatorProgressSerializer):
    timed = serializers.IntegerField(help_text="verdicts with a recorded duration")
    median_seconds = serializers.FloatField(**NULLABLE_FLOAT)
    q1_seconds = serializers.FloatField(**NULLABLE_FLOAT, help_text="first quartile")
    q3_seconds = serializers.FloatField(**NULLABLE_FLOAT, help_text="third quartile")
    majority_items = serializers.IntegerField(
        help_text="hit/miss verdicts compared with the majority of the OTHER annotators"
    )
    majority_agree = serializers.IntegerField()
    majority_agreement = serializers.FloatField(**NULLABLE_FLOAT)
    majority_low = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    majority_high = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    majority_ties = serializers.IntegerField(help_text="left out: the other annotators tie")
    lead_items = serializers.IntegerField(help_text="hit/miss verdicts on adjudicated items")
    lead_agree = serializers.IntegerField()
    lead_agreement = serializers.FloatField(**NULLABLE_FLOAT)
    lead_low = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    lead_high = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    last = serializers.DateTimeField(help_text="the annotator's last verdict")


class AnnotatorsSerializer(serializers.Serializer):
    rows = AnnotatorFiguresSerializer(many=True)
    adjudicated = serializers.IntegerField(help_text="items of the sample the lead decided")


# ---------------------------------------------------------------- curated selection and export


class SelectionRuleSerializer(serializers.Serializer):
    """`{"kind": "threshold", "threshold": T, ...}` or `{"kind": "target_precision",
    "target_precision": P, ...}` (curation.Rule.as_dict)."""

    kind = serializers.ChoiceField(choices=["threshold", "target_precision"])
    threshold = serializers.FloatField(
        required=False, help_text="the one global θ (kind threshold only)"
    )
    target_precision = serializers.FloatField(
        required=False, help_text="each label's precision must reach this (kind target_precision)"
    )
    include_unvalidated = serializers.BooleanField(
        help_text="items of labels the sample cannot measure are included"
    )


class SelectionLabelSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="the label's key")
    name = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["selected", "below_target", "unmeasured"],
        help_text="below_target: its Wilson lower bound never reaches the target (left out); "
        "unmeasured: no judged sample item of the label at its threshold (unvalidated)",
    )
    threshold = serializers.FloatField(**NULLABLE_FLOAT, help_text="null: never reaches target")
    selected = serializers.IntegerField(help_text="the run's items of the label selected")
    available = serializers.IntegerField(help_text="the run's items of the label with p ≥ θ")
    judged = serializers.IntegerField(
        help_text="decided sample items of the label with p ≥ θ (below_target: all of them)"
    )
    hits = serializers.IntegerField()
    precision = serializers.FloatField(**NULLABLE_FLOAT, help_text="hits / judged")
    precision_low = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    precision_high = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % Wilson")
    best_lower_bound = serializers.FloatField(
        **NULLABLE_FLOAT,
        help_text="target rule: the highest Wilson lower bound the label reached on the grid "
        "(below the target when the label is left out); null for a global threshold",
    )


class SelectionSerializer(serializers.Serializer):
    """The curated selection of a sample's run and its stratified precision estimate
    (curation.Selection.as_dict)."""

    rule = SelectionRuleSerializer()
    selected = serializers.IntegerField(
        help_text="items selected (validated ones, plus unvalidated ones when included)"
    )
    unvalidated = serializers.IntegerField(
        help_text="items of labels outside the sample (or unmeasured) at the rule's threshold"
    )
    per_label = SelectionLabelSerializer(many=True)
    precision = serializers.FloatField(
        **NULLABLE_FLOAT, help_text="stratified estimate over the validated selected items"
    )
    precision_low = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % bootstrap interval")
    precision_high = serializers.FloatField(**NULLABLE_FLOAT, help_text="95 % bootstrap interval")
    expected_wrong = serializers.FloatField(
        **NULLABLE_FLOAT, help_text="(1 − precision) × validated selected items"
    )
    validated = serializers.IntegerField(help_text="selected items of validated labels")
    unvalidated_included = serializers.BooleanField()
    unvalidated_threshold = serializers.FloatField(
        **NULLABLE_FLOAT, help_text="the θ that unvalidated labels are counted at"
    )
    left_out = serializers.ListField(
        child=serializers.CharField(), help_text="keys of the sampled labels not selected"
    )
    sample = serializers.IntegerField()
    run = serializers.IntegerField()
    resamples = serializers.IntegerField(help_text="bootstrap resamples of the interval")
    seed = serializers.IntegerField(help_text="the bootstrap's seed")


class CuratedExportSerializer(serializers.Serializer):
    """A queued curated export: its progress, then its file and manifest."""

    id = serializers.IntegerField()
    sample = serializers.IntegerField()
    run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CuratedExport.Status.choices)
    format = serializers.ChoiceField(choices=CuratedExport.Format.choices)
    rule = SelectionRuleSerializer(help_text="the selection's rule, as the selection endpoint's")
    exclude_duplicates = serializers.BooleanField(
        help_text="near-duplicates of an exported item are left out"
    )
    exclude_suspects = serializers.IntegerField(
        help_text="the N most likely label errors are left out (0: none)"
    )
    done = serializers.IntegerField(help_text="rows written so far")
    total = serializers.IntegerField(help_text="rows to write")
    percent = serializers.IntegerField(min_value=0, max_value=100)
    manifest = serializers.DictField(
        allow_null=True, help_text="the export's manifest once it succeeded (null before)"
    )
    error = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    download_url = serializers.URLField(allow_null=True, help_text="the file, once succeeded")
    manifest_url = serializers.URLField(allow_null=True, help_text="the manifest, once succeeded")
