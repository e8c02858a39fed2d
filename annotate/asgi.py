import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
application = get_asgi_application()

from annotate.wsgi import _warm_up  # noqa: E402 - after the settings are configured

_warm_up()
