"""Fixtures of the probe tests: the demo (seeded once per module, as in tests/search) and its
storage settings. Tests using `demo` must not be transactional."""

from tests.classifier.conftest import tiny_checkpoint
from tests.search.conftest import demo, demo_model_file, demo_storage

__all__ = ["demo", "demo_model_file", "demo_storage", "tiny_checkpoint"]
