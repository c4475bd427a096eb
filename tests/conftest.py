"""Fixtures shared by the test folders: the progress-store backends (`course/databases.py`).

`store_url` runs each test that asks for it against SQLite and (under `make test`) PostgreSQL;
the course and the web tests use it. The module is loaded once, under one name, whichever
folder's tests run first.
"""

import importlib.util
import sys
from pathlib import Path


def _shared(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_db = _shared("straightline_test_databases", Path(__file__).parent / "course" / "databases.py")
postgres_database = _db.postgres_database
store_url = _db.store_url
