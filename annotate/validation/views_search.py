"""The search page `/runs/{id}/search/` (docs/architecture.md#search): a text box, or
`?item=ID` for "more like this", and the nearest items as a grid. Thin: `searching.run_search`
does the work, shared with `POST /api/runs/{id}/search/`. A refused or failed search is a
message on the page with its status code, never a 500."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate.datasets.access import require_role
from annotate.datasets.models import Item, Role
from annotate.errors import ServiceError
from annotate.rest import id_param
from annotate.validation.api_explorer import EXPLORER_LEADS_ONLY
from annotate.validation.searching import DEFAULT_K, MAX_K, MAX_TEXT
from annotate.validation.searching import run_search as search
from classifier.models import ClassificationRun
from classifier.selectors import get_run_for_user

K_CHOICES = (20, 50, 100, 200, 500)


@login_required
@require_GET
def run_search(request: HttpRequest, pk: int) -> HttpResponse:
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    text = request.GET.get("q", "")
    # The box starts ticked: a few words read as a label prompt match better ("beach" as "A
    # photo of a beach."); once a search is submitted the checkbox says what was asked.
    asked = "q" in request.GET or "item" in request.GET
    template = request.GET.get("template", "") in ("1", "on", "true") if asked else True
    raw_k, raw_item = request.GET.get("k", ""), request.GET.get("item", "")
    k = id_param(raw_k) if raw_k else DEFAULT_K
    item_id = id_param(raw_item) if raw_item else None
    answer, error, status, query_item = None, None, 200, None
    if raw_k and (k is None or not 1 <= k <= MAX_K):
        error, status = f"k must be a whole number from 1 to {MAX_K}.", 400
    elif raw_item and item_id is None:
        error, status = "item must be an item id.", 400
    elif item_id is not None or text.strip():
        try:
            answer = search(
                run=run, text=None if item_id is not None else text, item_id=item_id,
                k=k or DEFAULT_K, template=template,
            )  # fmt: skip
            query_item = answer.query_item
        except ServiceError as exc:
            error, status = str(exc), exc.status_code
        if item_id is not None and query_item is None and status != 404:
            query_item = Item.objects.filter(pk=item_id, dataset_id=run.dataset_id).first()
    elif "q" in request.GET:
        error, status = "Type something to search for.", 400
    context = {
        "run": run,
        "text": text if item_id is None else "",
        "template": template,
        "k": k if k and 1 <= k <= MAX_K else DEFAULT_K,
        "k_choices": sorted({*K_CHOICES, k}) if k and 1 <= k <= MAX_K else K_CHOICES,
        "max_text": MAX_TEXT,
        "answer": answer,
        "query_item": query_item,
        "error": error,
        "imported": run.source == ClassificationRun.Source.IMPORT,
    }
    return render(request, "validation/search.html", context, status=status)
