"""Long-lived objects are frozen out of the garbage collector's full scans (annotate/runtime.py):
after start-up, and after a large library's first import."""

import subprocess
import sys

from tests.conftest import ROOT, child_env

CODE = """
import gc, sys
import annotate.wsgi
after_start = gc.get_freeze_count()
assert "scipy.stats" not in sys.modules
from annotate.runtime import import_long_lived
stats = import_long_lived("scipy.stats")
after_import = gc.get_freeze_count()
again = import_long_lived("scipy.stats")
print(after_start, after_import, gc.get_freeze_count(), stats is again, hasattr(stats, "spearmanr"))
"""


def test_start_up_and_first_imports_freeze_long_lived_objects() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    start, imported, again, same, has = out.stdout.split()
    assert int(start) > 50_000  # Django, the apps and every view
    assert int(imported) > int(start)
    assert int(again) == int(imported)  # a second import freezes nothing more
    assert (same, has) == ("True", "True")
