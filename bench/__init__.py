"""Benchmarks and the processes the chaos suite drives (see docs/benchmarks.md)."""
