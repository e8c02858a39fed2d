import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Import every view now rather than in the first request, then freeze what lives as long
    as the process (annotate/runtime.py)."""
    from django.urls import get_resolver

    from annotate.runtime import freeze_long_lived

    get_resolver().url_patterns  # noqa: B018 - evaluated for its imports
    freeze_long_lived()


_warm_up()
