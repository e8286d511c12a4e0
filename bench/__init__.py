"""Benchmarks of speed and memory, run by ``make bench`` (never part of the test suite)."""
