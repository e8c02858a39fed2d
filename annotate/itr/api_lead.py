"""REST endpoints of the ITR lead's work (docs/architecture.md#itr-adjudication): the
adjudication queue, the comment threads, the model signal and the controversial-list upload.
Thin: the queue is queue.py, the signal signal.py, the list importers.py, comments
services.py; decisions go through `POST /api/itr/decisions/` (api.py).

Who may do what: the queue, the signal and the list are for leads and admins of the dataset
(403 for reviewers). A comment thread is read and written by leads, and by reviewers on the
items they have reviewed themselves: the discussion is among people who already gave their
vote, so it never sways a review still to come."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.itr.importers import ItrImportError, controversial_import
from annotate.itr.models import ItrComment, ItrItem, ItrReview
from annotate.itr.queue import CROWDLAB, DEFAULT_LIMIT, MARGIN, QueueEntry, lead_queue
from annotate.itr.selectors import get_itr_dataset_for_user, get_itr_item_for_user
from annotate.itr.serializers import (
    ItrDecisionSerializer,
    SummaryReviewerSerializer,
    image_url_of,
)
from annotate.itr.services import MAX_TEXT, comment_add
from annotate.itr.signal import signal_compute
from annotate.rest import (
    ErrorSerializer,
    PageQuery,
    Pagination,
    StrictCharField,
    StrictIntegerField,
    error_body,
    page_of,
    paginate,
    query_params,
    responses,
)
from classifier.selectors import get_run_for_user

LEADS_ONLY = "Only leads and admins of this dataset may do this."
REVIEWED_ONLY = "Reviewers may discuss only the items they have reviewed."
MAX_LIST = 1_000_000  # characters of a controversial list (the published one has 3,000)

# ---------------------------------------------------------------- serializers


class SignalSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="run_id", allow_null=True)
    created = serializers.DateTimeField()


class QueueVoteSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="review.pk")
    reviewer = serializers.CharField(source="review.reviewer.username")
    text_is_represented = serializers.IntegerField(source="review.text_is_represented")
    image_adds = serializers.IntegerField(source="review.image_adds")
    reason = serializers.CharField(source="review.reason", allow_null=True)
    agrees = serializers.BooleanField(help_text="the vote equals the item's final labels")
    updated = serializers.DateTimeField(source="review.updated")

    def to_representation(self, vote) -> dict:
        row = super().to_representation(vote)
        row["reason"] = row["reason"] or None
        return row


def _label(source: str, help_text: str = "", **kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(source=f"item.{source}", help_text=help_text, **kwargs)


def _nullable(source: str, help_text: str = "") -> serializers.IntegerField:
    return _label(source, help_text, allow_null=True)


class QueueEntrySerializer(serializers.Serializer):
    """An item of the queue: the tweet, its labels at each stage, the model signal, CROWDLAB's
    view of it, the votes side by side, the decision and the number of comments."""

    id = serializers.IntegerField(source="item.pk")
    item = serializers.IntegerField(source="item.item_id")
    row = serializers.IntegerField(source="item.row")
    tweet_id = serializers.CharField(source="item.tweet_id")
    text = serializers.CharField(source="item.item.caption", allow_blank=True)
    image_url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(source="item.status", choices=ItrItem.Status.choices)
    review_count = serializers.IntegerField(source="item.review_count")
    wanted_reviews = serializers.IntegerField(source="item.wanted_reviews")
    text_is_represented = _label("text_is_represented", "the published label")
    image_adds = _label("image_adds", "the published label")
    listed = serializers.BooleanField(source="item.listed")
    listed_text_is_represented = _nullable("listed_text", "the imported list's label")
    listed_image_adds = _nullable("listed_image", "the imported list's label")
    proposed_text_is_represented = _nullable("proposed_text", "the reviewers' majority")
    proposed_image_adds = _nullable("proposed_image", "the reviewers' majority")
    final_text_is_represented = _label("final_text", "decision, else proposal, else original")
    final_image_adds = _label("final_image", "decision, else proposal, else original")
    margin = serializers.FloatField(source="item.margin", allow_null=True)
    similarity = serializers.FloatField(source="item.similarity", allow_null=True)
    p_text = serializers.FloatField(source="item.p_text", allow_null=True)
    p_image = serializers.FloatField(source="item.p_image", allow_null=True)
    model_score = serializers.FloatField(source="item.model_score", allow_null=True)
    consensus_quality = serializers.FloatField(
        allow_null=True, help_text="CROWDLAB's consensus quality score (null unless ranked by it)"
    )
    crowdlab_text_is_represented = serializers.SerializerMethodField()
    crowdlab_image_adds = serializers.SerializerMethodField()
    votes = QueueVoteSerializer(many=True)
    decision = serializers.SerializerMethodField()
    comments = serializers.SerializerMethodField(help_text="how many comments")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, entry: QueueEntry) -> str | None:
        return image_url_of(entry.item.item, self.context.get("request"))

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_crowdlab_text_is_represented(self, entry: QueueEntry) -> int | None:
        return entry.crowdlab_label[0] if entry.crowdlab_label else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_crowdlab_image_adds(self, entry: QueueEntry) -> int | None:
        return entry.crowdlab_label[1] if entry.crowdlab_label else None

    @extend_schema_field(serializers.IntegerField())
    def get_comments(self, entry: QueueEntry) -> int:
        return len(entry.item.comments.all())  # prefetched

    @extend_schema_field(ItrDecisionSerializer(allow_null=True))
    def get_decision(self, entry: QueueEntry) -> dict | None:
        decision = getattr(entry.item, "decision", None)
        return ItrDecisionSerializer(decision).data if decision is not None else None


class ReviewerAgreementSerializer(SummaryReviewerSerializer):
    """The summary's agreement row (the same `reviewer_agreement`), with CROWDLAB's view."""

    quality = serializers.FloatField(
        allow_null=True, help_text="CROWDLAB's annotator quality (null unless ranked by it)"
    )


class QueueSerializer(serializers.Serializer):
    ranking = serializers.ChoiceField(choices=[CROWDLAB, MARGIN])
    ranking_note = serializers.CharField(allow_null=True, help_text="why not CROWDLAB")
    signal = SignalSerializer(allow_null=True)
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = QueueEntrySerializer(many=True)
    reviewers = ReviewerAgreementSerializer(many=True)


class QueueQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=ItrItem.Status.choices, required=False)


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    author = serializers.CharField(source="author.username", allow_null=True)
    text = serializers.CharField()
    created = serializers.DateTimeField()


class CommentInput(serializers.Serializer):
    text = StrictCharField(max_length=MAX_TEXT)


class SignalInput(serializers.Serializer):
    run = StrictIntegerField(min_value=1, help_text="a succeeded classification run")


class TaskFitSerializer(serializers.Serializer):
    coefficient = serializers.FloatField(help_text="of the raw cosine similarity")
    intercept = serializers.FloatField()
    train_items = serializers.IntegerField()
    positives = serializers.IntegerField()
    auc_train = serializers.FloatField(allow_null=True)
    auc_test = serializers.FloatField(allow_null=True, help_text="against the published labels")


class TaskFitsSerializer(serializers.Serializer):
    text = TaskFitSerializer()
    image = TaskFitSerializer()


class SignalResultSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    run = serializers.IntegerField()
    model = serializers.CharField()
    train_items = serializers.IntegerField(help_text="train items with embeddings (the fit)")
    test_items = serializers.IntegerField(help_text="test items scored")
    without_embeddings = serializers.IntegerField(help_text="items left without a score")
    candidate_score = serializers.FloatField()
    candidates = serializers.IntegerField(help_text="test items with model_score < candidate_score")
    candidates_text = serializers.IntegerField(help_text="test items with P(own text label) < 0.5")
    candidates_image = serializers.IntegerField(
        help_text="test items with P(own image label) < 0.5"
    )
    prior_text = serializers.FloatField()
    prior_image = serializers.FloatField()
    tasks = TaskFitsSerializer()


class ControversialInput(serializers.Serializer):
    text = StrictCharField(max_length=MAX_LIST, help_text="lines like `01->11: 3997, 4067`")


class ControversialResultSerializer(serializers.Serializer):
    listed = serializers.IntegerField()
    text = serializers.IntegerField()
    image = serializers.IntegerField()
    both = serializers.IntegerField()


class ImportErrorSerializer(ErrorSerializer):
    errors = serializers.ListField(child=serializers.CharField(), help_text="one per bad line")


@error_body.register
def _import_error_body(exc: ItrImportError) -> dict:
    """400 for a file that cannot be imported: the problems, one per line."""
    return {"detail": str(exc).splitlines()[0], "errors": exc.errors}


# ---------------------------------------------------------------- endpoints


def _paginator(request: Request) -> Pagination:
    """The API's limit/offset pagination for a page computed elsewhere (set `count`, then
    ask for the links). The queue's pages hold 20 items by default, like the lead's page: each
    carries its votes, reasons and comments."""
    paginator = Pagination()
    paginator.default_limit = DEFAULT_LIMIT
    paginator.request = request
    paginator.limit, paginator.offset = paginator.get_limit(request), paginator.get_offset(request)
    return paginator


@extend_schema(
    parameters=[QueueQuery, PageQuery],
    responses=responses({200: QueueSerializer}, 400, 403, 404),
)
@api_view(["GET"])
def queue(request: Request, pk: int) -> Response:
    """The lead's queue: the items whose reviewers disagree, the weakest consensus first.
    `ranking` says how: `crowdlab` (CROWDLAB's consensus quality, lowest first) when the
    dataset has a model signal, else `margin` (the smaller vote margin of the two tasks);
    `ranking_note` says why CROWDLAB was not used. `?status=` filters. Leads and admins."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    status_filter = query_params(QueueQuery, request).get("status")
    paginator = _paginator(request)
    page = lead_queue(dataset, status=status_filter, limit=paginator.limit, offset=paginator.offset)
    paginator.count = page["count"]
    context = {"request": request}
    return Response(
        {
            "ranking": page["ranking"],
            "ranking_note": page["ranking_note"],
            "signal": SignalSerializer(page["signal"]).data if page["signal"] else None,
            "count": page["count"],
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": QueueEntrySerializer(page["entries"], many=True, context=context).data,
            "reviewers": ReviewerAgreementSerializer(page["reviewers"], many=True).data,
        }
    )


def _may_discuss(user, item: ItrItem, role: str) -> None:
    """Leads, and reviewers of the item (403 for the other reviewers of the dataset)."""
    if role_at_least(role, Role.LEAD):
        return
    if not ItrReview.objects.filter(item=item, reviewer=user.pk).exists():
        require_role(role, Role.LEAD, REVIEWED_ONLY)


@extend_schema(
    methods=["GET"],
    parameters=[PageQuery],
    responses=responses({200: page_of(CommentSerializer)}, 400, 403, 404),
)
@extend_schema(
    methods=["POST"],
    request=CommentInput,
    responses=responses({201: CommentSerializer}, 400, 403, 404),
)
@api_view(["GET", "POST"])
def comments(request: Request, pk: int) -> Response:
    """An item's comment thread, oldest first; POST adds a comment. Leads and admins, and the
    reviewers who reviewed this item (403 for other reviewers, 404 for non-members)."""
    item, role = get_itr_item_for_user(request.user, pk)
    _may_discuss(request.user, item, role)
    if request.method == "GET":
        rows = ItrComment.objects.filter(item=item).select_related("author").order_by("id")
        return paginate(request, rows, lambda page: CommentSerializer(page, many=True).data)
    data = CommentInput(data=request.data)
    data.is_valid(raise_exception=True)
    comment = comment_add(item=item, author=request.user, text=data.validated_data["text"])
    return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


@extend_schema(
    request=SignalInput,
    responses=responses({200: SignalResultSerializer}, 400, 403, 404, 409),
)
@api_view(["POST"])
def signal(request: Request, pk: int) -> Response:
    """Compute the model signal from a succeeded run of this dataset (leads and admins): the
    CLIP image-caption similarity of every item, a logistic regression per task fitted on the
    train split, and each test item's probability of its own labels (`model_score`); the
    review queue then serves the likeliest errors first. 404 for a run of another dataset,
    409 for a run that did not succeed or left no embeddings."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    data = SignalInput(data=request.data)
    data.is_valid(raise_exception=True)
    run, _ = get_run_for_user(request.user, data.validated_data["run"])
    return Response(SignalResultSerializer(signal_compute(dataset=dataset, run=run)).data)


@extend_schema(
    request=ControversialInput,
    responses=responses({200: ControversialResultSerializer, 400: ImportErrorSerializer}, 403, 404),
)
@api_view(["POST"])
def controversial(request: Request, pk: int) -> Response:
    """Upload a controversial list (leads and admins): its items become the review queue's
    first candidates, with the list's labels, replacing an earlier list. A bad line answers
    400 with `errors`, one per problem, and nothing changes."""
    dataset, role = get_itr_dataset_for_user(request.user, pk)
    require_role(role, Role.LEAD, LEADS_ONLY)
    data = ControversialInput(data=request.data)
    data.is_valid(raise_exception=True)
    result = controversial_import(dataset=dataset, text=data.validated_data["text"])
    return Response(ControversialResultSerializer(result).data)


urlpatterns: list = [
    path("itr/<int:pk>/queue/", queue, name="api-itr-queue"),
    path("itr/<int:pk>/signal/", signal, name="api-itr-signal"),
    path("itr/<int:pk>/controversial/", controversial, name="api-itr-controversial"),
    path("itr/items/<int:pk>/comments/", comments, name="api-itr-comments"),
]
