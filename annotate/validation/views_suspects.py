"""The "Likely errors" page of a run (docs/architecture.md#suspects). Thin: the ranking is in
`suspects.py`, shared with `GET /api/runs/{id}/suspects/`; its sample form posts to the run
page's sample form view with `strategy=suspects`."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotate.datasets.access import require_role
from annotate.datasets.models import Role
from annotate.taxonomies.models import Label
from annotate.validation.api_suspects import SUSPECTS_LEADS_ONLY
from annotate.validation.explorer import ExplorerNotFound, ExplorerQueryError
from annotate.validation.suspects import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    W_DISAGREE,
    W_MARGIN,
    WP_DISAGREE,
    WP_MARGIN,
    WP_PROBE,
    SuspectsQuery,
    SuspectsQueryError,
    parse_suspects_query,
    suspects_page,
)
from classifier.selectors import get_run_for_user


@login_required
@require_GET
def run_suspects(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's top suspects as cards (thumbnail, score bar, reasons), a label filter and,
    for leads, the form that draws a suspects sample."""
    run, role = get_run_for_user(request.user, pk)
    require_role(role, Role.LEAD, SUSPECTS_LEADS_ONLY)
    query, page, error, status = SuspectsQuery(), None, None, 200
    try:
        query = parse_suspects_query(request.GET, form=True)
        page = suspects_page(run=run, query=query)
    except (SuspectsQueryError, ExplorerQueryError) as exc:
        error, status = f"{exc.field}: {exc}", 400
    except ExplorerNotFound as exc:
        error, status = str(exc), 404
    context = {
        "run": run,
        "page": page,
        "query": query,
        "error": error,
        "labels": Label.objects.filter(taxonomy_id=run.taxonomy_id).order_by("name"),
        "default_limit": DEFAULT_LIMIT,
        "max_limit": MAX_LIMIT,
        "w_margin": W_MARGIN,
        "w_disagree": W_DISAGREE,
        "wp_margin": WP_MARGIN,
        "wp_disagree": WP_DISAGREE,
        "wp_probe": WP_PROBE,
    }
    return render(request, "validation/suspects.html", context, status=status)
