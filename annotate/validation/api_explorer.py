"""`GET /api/runs/{id}/items/`: the explorer's rows (docs/architecture.md#explorer)."""

from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound


@api_view(["GET"])
def run_items(request, pk: int):
    raise NotFound("not built yet")
