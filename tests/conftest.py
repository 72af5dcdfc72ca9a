"""Suite-wide fixtures: per-test media dir, folder-based markers, the wait_until helper."""
from pathlib import Path

import pytest

from tests import helpers

TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    # Mark by folder so `-m "not browser"` / `-m integration` work without decorating every test.
    for item in items:
        parts = item.path.resolve().relative_to(TESTS_DIR).parts
        if parts and parts[0] in ("integration", "browser"):
            item.add_marker(parts[0])


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploads of each test land in its own tmp dir (threads such as the live server or worker see it too)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def wait_until():
    return helpers.wait_until
