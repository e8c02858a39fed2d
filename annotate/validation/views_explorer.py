"""The run explorer and the item page (docs/architecture.md#explorer). Thin: the queries are
in `explorer.py`, shared with `GET /api/runs/{id}/items/`."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from annotate.datasets.access import require_role, role_at_least
from annotate.datasets.models import Role
from annotate.datasets.selectors import get_item_for_user
from annotate.rest import id_param
from annotate.taxonomies.models import Label
from annotate.validation.api_explorer import EXPLORER_LEADS_ONLY
from annotate.validation.explorer import (
    DEFAULT_LIMIT,
    ORDERS,
    VERDICTS,
    ExplorerNotFound,
    ExplorerQuery,
    ExplorerQueryError,
    explore,
    item_overview,
    parse_query,
)
from classifier.scoring import stored_label_counts
from classifier.selectors import get_run_for_user

ORDER_NAMES = {
    "-probability": "Most confident first",
    "probability": "Least confident first",
    "random": "Random (seeded)",
}
VERDICT_NAMES = {
    "hit": "Hit",
    "miss": "Miss",
    "none": "No verdict",
    "disputed": "Disputed (hit and miss)",
}


@login_required
@require_GET
@vary_on_headers("HX-Request")
def run_items(request: HttpRequest, pk: int) -> HttpResponse:
    """A grid of the run's items filtered by the query string (the API's parameters); htmx's
    "Load more" gets the next page's cards only."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, EXPLORER_LEADS_ONLY)
    query, page, error, status = ExplorerQuery(), None, None, 200
    try:
        query = parse_query(request.GET, form=True)
        page = explore(run=run, query=query)
    except ExplorerQueryError as exc:
        error, status = f"{exc.field}: {exc}", 400
    except ExplorerNotFound as exc:
        error, status = str(exc), 404
    next_url = None
    if page is not None and page.next_params is not None:
        next_url = "?" + urlencode(page.next_params)
    context = {"run": run, "page": page, "next_url": next_url, "query": query}
    if request.htmx and page is not None:
        return render(request, "validation/_explorer_cards.html", context)
    counts = stored_label_counts(run)
    label = page.label if page is not None else None
    context.update(
        error=error,
        labels=Label.objects.filter(taxonomy_id=run.taxonomy_id).order_by("name"),
        samples=run.samples.order_by("-id").only("id", "status"),
        orders=[(value, ORDER_NAMES[value]) for value in ORDERS],
        verdicts=[(value, VERDICT_NAMES[value]) for value in VERDICTS],
        seed=page.seed if page is not None else query.seed,
        label_count=counts.get(label.pk, 0) if counts is not None and label else None,
        default_limit=DEFAULT_LIMIT,
        filtered=bool(query.as_params(order="-probability", seed=None, cursor=None)),
    )
    return render(request, "validation/explorer.html", context, status=status)


@login_required
@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An item at full size, its caption, what every run predicted and every verdict on it
    (leads and admins); annotators of its dataset see the item and their own verdicts only."""
    item, role = get_item_for_user(request.user, pk)
    lead = role_at_least(role, Role.LEAD)
    overview = item_overview(item=item, user=request.user, lead=lead)
    back = id_param(request.GET.get("run", ""))
    back_run = next(
        (row.run for row in overview.predictions if row.run.pk == back),
        None,
    )
    context = {"item": item, "overview": overview, "lead": lead, "back_run": back_run}
    return render(request, "validation/item_detail.html", context)
