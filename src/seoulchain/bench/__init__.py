"""Benchmarks: measured figures, never asserted in unit tests (docs/performance.md)."""
