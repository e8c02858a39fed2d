"""Fixtures of the curation tests: the dashboards' constructed runs and samples (ORM bulk
inserts, verdicts through the verdict service)."""

from tests.dashboards.conftest import Built, _fast_passwords, published, small

__all__ = ["Built", "_fast_passwords", "published", "small"]
