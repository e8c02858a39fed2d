"""What the benchmarks share: a throwaway database next to the configured one."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def throwaway_database(name: str) -> Iterator[None]:
    """Run the body on a fresh database (`bench_<name>_<db>` on PostgreSQL, a file under var/
    on SQLite), created with the project's migrations and dropped afterwards. Call after
    `django.setup()`."""
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings_dict = connection.settings_dict
    settings_dict.setdefault("TEST", {})
    settings_dict["TEST"]["NAME"] = (
        f"bench_{name}_{settings_dict['NAME']}"
        if connection.vendor == "postgresql"
        else str(ROOT / "var" / f"bench_{name}.sqlite3")
    )
    old_name = settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
