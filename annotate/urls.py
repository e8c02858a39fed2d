from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotate.api_fallback import api_not_found

# Each app owns its pages (`urls.py`) and its API endpoints (`api_urls.py`).
api_patterns = [
    path("", include("annotate.accounts.api_urls")),
    path("", include("annotate.datasets.api_urls")),
    path("", include("classifier.api_urls")),
    path("", include("annotate.validation.api_urls")),
    path("", include("annotate.itr.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI with its start-up script served from this view (`?script`), not inline, and
    # without drf-spectacular's inline <style>: it runs under the site's CSP unchanged.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    # Last: any other path under /api/ ending in "/" answers a JSON 404 like the endpoints
    # (Django's own 404 is an HTML page); a path without the slash still gets APPEND_SLASH.
    re_path(r"^[\s\S]*/$", api_not_found),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("accounts/", include("annotate.accounts.urls")),
    path("console/", include("annotate.console.urls")),
    path("", include("classifier.urls")),
    path("", include("annotate.validation.urls")),
    path("", include("annotate.itr.urls")),
    path("", include("annotate.datasets.urls")),
]

# Refusals and misses outside the API answer with a page of the app that says why.
handler403 = "annotate.errors.permission_denied"
handler404 = "annotate.errors.page_not_found"
