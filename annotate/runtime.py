"""The garbage collector and long-lived objects (docs/architecture.md#runtime).

A web process holds a few hundred thousand objects that live as long as it does: modules, URL
patterns, settings, and the analytics libraries (scipy, scikit-learn, cleanlab) that the ITR
pages import on first use. CPython's full collections rescan all of them: 70 to 140 ms on a
small CPU, paid by whichever request triggers one. Freezing moves the objects alive at that
moment out of the collector's reach, so later collections scan only what requests leave
behind. It is done once after start-up (wsgi.py, asgi.py) and once after each large library's
first import; whatever else is alive then (one request's objects) stays for the process's life.

No app imports here.
"""

import gc
import importlib
import sys
from types import ModuleType


def freeze_long_lived() -> None:
    gc.collect()
    gc.freeze()


def import_long_lived(name: str) -> ModuleType:
    """Import a module; after its first import in this process, freeze (see above)."""
    if name in sys.modules:
        return sys.modules[name]
    module = importlib.import_module(name)
    freeze_long_lived()
    return module
