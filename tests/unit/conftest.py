"""Unit tests share the suite-wide fixtures of tests/fixtures.py."""
from tests.fixtures import *  # noqa
