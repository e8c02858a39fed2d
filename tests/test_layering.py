"""The apps layer one way (docs/architecture.md#layout): an app imports at module level only
from apps to its left, and the web tier never imports torch (nor faiss)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    ["annotate.accounts"],
    ["annotate.datasets"],
    ["annotate.taxonomies"],
    ["classifier"],
    ["annotate.validation", "annotate.itr"],
    ["annotate.console"],
]
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}


def app_of(module: str) -> str | None:
    for app in RANK:
        if module == app or module.startswith(app + "."):
            return app
    return None


def module_level_imports(path: Path) -> list[str]:
    """Imports executed when the module loads (not those inside functions)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_apps_import_only_from_their_left() -> None:
    wrong = []
    for path in [*ROOT.glob("annotate/**/*.py"), *ROOT.glob("classifier/**/*.py")]:
        relative = path.relative_to(ROOT).with_suffix("")
        importer = app_of(".".join(relative.parts))
        if importer is None or "migrations" in relative.parts:
            continue
        for name in module_level_imports(path):
            imported = app_of(name)
            if imported and RANK[imported] > RANK[importer]:
                wrong.append(f"{relative}: {name}")
    assert wrong == []


def test_web_tier_never_imports_torch_or_faiss() -> None:
    code = (
        "import django, os, sys;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotate.settings');"
        "django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import annotate.wsgi;"
        "heavy = ('torch', 'open_clip', 'faiss');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_api_settings_load_before_any_view() -> None:
    """A Celery worker reads DRF's settings in its system checks before any view is imported;
    the classes they name must import on their own (no cycle through rest_framework.views)."""
    code = (
        "import django, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotate.settings');"
        "django.setup();"
        "from rest_framework.settings import api_settings as s;"
        "print(s.DEFAULT_PAGINATION_CLASS.__name__, s.DEFAULT_PARSER_CLASSES[0].__name__,"
        " s.EXCEPTION_HANDLER.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["Pagination", "JSONParser", "exception_handler"]
