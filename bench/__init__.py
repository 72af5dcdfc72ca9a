"""Benchmarks that print their figures (`make bench`); never imported by the apps, never part of the tests."""
