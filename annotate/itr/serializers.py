"""What the ITR API reads and answers: small input serializers (JSON types only, see
annotate/rest.py) and one output serializer per response, so that the OpenAPI schema describes
the real JSON. The work is done by services.py, summary.py and exports.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.datasets.api import item_image_url
from annotate.datasets.models import Item
from annotate.itr.consensus import CHANGE_KINDS, change_kind
from annotate.itr.models import ItrItem
from annotate.itr.services import MAX_TEXT
from annotate.rest import OptionalCharField, StrictCharField, StrictIntegerField, duration_field

NULLABLE = {"allow_null": True}
LABEL_HELP = "0 or 1"


def _label(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=1, help_text=LABEL_HELP, **kwargs)


def _nullable_label(source: str, help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        source=source, allow_null=True, required=False, help_text=help_text
    )


# ---------------------------------------------------------------- input


class ReviewInput(serializers.Serializer):
    item = StrictIntegerField(min_value=1, help_text="the ITR item's id")
    text_is_represented = _label()
    image_adds = _label()
    reason = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TEXT,
        default="",
        help_text="why: required when the labels differ from the original ones",
    )
    key = StrictCharField(
        required=False, allow_blank=True, max_length=100, default="", help_text="idempotency key"
    )
    duration_ms = duration_field()


class DecisionInput(serializers.Serializer):
    item = StrictIntegerField(min_value=1, help_text="the ITR item's id")
    text_is_represented = _label()
    image_adds = _label()
    note = StrictCharField(max_length=MAX_TEXT, help_text="why (required)")


# ---------------------------------------------------------------- output


class ItrReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    reviewer = serializers.CharField(source="reviewer.username")
    text_is_represented = serializers.IntegerField()
    image_adds = serializers.IntegerField()
    reason = OptionalCharField()
    key = OptionalCharField(help_text="idempotency key")
    duration_ms = serializers.IntegerField(**NULLABLE)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class ItrDecisionSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    text_is_represented = serializers.IntegerField()
    image_adds = serializers.IntegerField()
    note = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", **NULLABLE)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


def image_url_of(item: Item, request=None) -> str | None:
    """The tweet's image, or None when the item has no readable image."""
    if not item.image_path or item.status != Item.Status.OK:
        return None
    return item_image_url(item.pk, request)


PROPOSED = "the reviewers' majority, once the quorum is reached"
LEAD_FIELDS = (
    "status",
    "review_count",
    "wanted_reviews",
    "proposed_text_is_represented",
    "proposed_image_adds",
    "final_text_is_represented",
    "final_image_adds",
    "changed",
    "disagreement",
    "listed",
    "listed_text_is_represented",
    "listed_image_adds",
    "similarity",
    "model_score",
)


@extend_schema_field(serializers.ChoiceField(choices=CHANGE_KINDS, allow_null=True))
class ChangeKindField(serializers.Field):
    """The change kind of an item (text, image, both; null when unchanged). Not read-only, so
    that the schema does not require it: reviewers never get it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(source="*", required=False, **kwargs)

    def to_representation(self, item: ItrItem) -> str | None:
        return change_kind(item.original, item.final)


class ItrItemSerializer(serializers.Serializer):
    """An ITR item as a reviewer sees it: the tweet, its published labels, its image and the
    caller's own review. Context: `request` (absolute image URLs), `reviews` ({item id: the
    caller's review}, fetched for a whole page at once) and `lead` (adds the consensus state
    and the imported list's labels, which reviewers must not see: they would bias them)."""

    id = serializers.IntegerField()
    dataset = serializers.IntegerField(source="dataset_id")
    item = serializers.IntegerField(source="item_id", help_text="the dataset item (the tweet)")
    row = serializers.IntegerField(help_text="0-based data row of the imported CSV")
    tweet_id = serializers.CharField()
    user_id = OptionalCharField()
    split = serializers.ChoiceField(choices=ItrItem.Split.choices)
    text = serializers.CharField(source="item.caption", allow_blank=True, help_text="the tweet")
    text_is_represented = serializers.IntegerField(help_text="the published label")
    image_adds = serializers.IntegerField(help_text="the published label")
    image_url = serializers.SerializerMethodField()
    my_review = serializers.SerializerMethodField()
    # Leads only (removed for reviewers).
    status = serializers.ChoiceField(choices=ItrItem.Status.choices, required=False)
    review_count = serializers.IntegerField(required=False)
    wanted_reviews = serializers.IntegerField(required=False, help_text="the quorum")
    proposed_text_is_represented = _nullable_label("proposed_text", PROPOSED)
    proposed_image_adds = _nullable_label("proposed_image", PROPOSED)
    final_text_is_represented = serializers.IntegerField(
        source="final_text", required=False, help_text="decision, else proposal, else original"
    )
    final_image_adds = serializers.IntegerField(source="final_image", required=False)
    changed = ChangeKindField(help_text="how the final labels differ from the published ones")
    disagreement = serializers.BooleanField(required=False)
    listed = serializers.BooleanField(required=False, help_text="on the imported list")
    listed_text_is_represented = _nullable_label("listed_text", "the imported list's label")
    listed_image_adds = _nullable_label("listed_image", "the imported list's label")
    similarity = serializers.FloatField(required=False, allow_null=True)
    model_score = serializers.FloatField(required=False, allow_null=True)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, item: ItrItem) -> str | None:
        return image_url_of(item.item, self.context.get("request"))

    @extend_schema_field(ItrReviewSerializer(allow_null=True))
    def get_my_review(self, item: ItrItem) -> dict | None:
        review = self.context.get("reviews", {}).get(item.pk)
        return ItrReviewSerializer(review).data if review is not None else None

    def to_representation(self, item: ItrItem) -> dict:
        row = super().to_representation(item)
        if not self.context.get("lead"):
            for name in LEAD_FIELDS:
                del row[name]
        return row


# ---------------------------------------------------------------- summary


class DistributionSerializer(serializers.Serializer):
    def get_fields(self) -> dict:
        fields = {
            code: serializers.IntegerField(help_text=f"items labelled {code}")
            for code in ("00", "01", "10", "11")
        }
        fields["text_is_represented_percent"] = serializers.FloatField(**NULLABLE)
        fields["image_adds_percent"] = serializers.FloatField(**NULLABLE)
        return fields


class DistributionsSerializer(serializers.Serializer):
    before = DistributionSerializer(help_text="the published labels")
    after = DistributionSerializer(help_text="the final labels")


class SpearmanSerializer(serializers.Serializer):
    rho = serializers.FloatField()
    p = serializers.FloatField()
    n = serializers.IntegerField(help_text="test items with a model similarity")


class StatusCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    in_review = serializers.IntegerField()
    consensus = serializers.IntegerField()
    decided = serializers.IntegerField()


class ListedSerializer(serializers.Serializer):
    items = serializers.IntegerField(help_text="test items on the imported list")
    settled = serializers.IntegerField(help_text="of which have a consensus or a decision")
    confirmed = serializers.IntegerField(help_text="whose final labels are the list's")
    kept = serializers.IntegerField(help_text="settled with the published labels kept")


class SummaryReviewerSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    reviews = serializers.IntegerField()
    settled = serializers.IntegerField(help_text="reviews of items with a consensus or decision")
    agreement = serializers.FloatField(
        help_text="share of the settled reviews equal to the final labels (both)", **NULLABLE
    )
    agreement_text = serializers.FloatField(
        help_text="share of the settled reviews equal to the final text label", **NULLABLE
    )
    agreement_image = serializers.FloatField(**NULLABLE)


class SummarySerializer(serializers.Serializer):
    """The summary of a dataset's test split (summary.py)."""

    items = serializers.IntegerField(help_text="test items")
    reviewed = serializers.IntegerField(help_text="test items with at least one review")
    reviews = serializers.IntegerField()
    quorum = serializers.IntegerField(**NULLABLE)
    status = StatusCountsSerializer()
    text = serializers.IntegerField(help_text="items whose final labels changed the text only")
    image = serializers.IntegerField(help_text="changed the image label only")
    both = serializers.IntegerField(help_text="changed both labels")
    changed = serializers.IntegerField()
    alpha_text = serializers.FloatField(
        help_text="Krippendorff's alpha (nominal) among reviewers", **NULLABLE
    )
    alpha_image = serializers.FloatField(**NULLABLE)
    distribution = DistributionsSerializer()
    spearman_before = SpearmanSerializer(
        allow_null=True, help_text="similarity vs category score of the published labels"
    )
    spearman_after = SpearmanSerializer(allow_null=True, help_text="... of the final labels")
    listed = ListedSerializer()
    reviewers = SummaryReviewerSerializer(many=True)
