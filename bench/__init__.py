"""Benchmarks (`make bench`): numbers for the targets in the issues, printed as a table."""
