"""Fixtures for the course tests: progress-store backends (see databases.py)."""

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


_db = _shared("straightline_test_databases", Path(__file__).with_name("databases.py"))
postgres_database = _db.postgres_database
store_url = _db.store_url
