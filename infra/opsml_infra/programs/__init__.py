"""Thin per-cloud programs: read `pulumi.Config` once, compose the components, return outputs.

Each `run()` returns the stack outputs instead of exporting them, so the unit tests can run the
very same program under mocks and inspect what it would export.
"""
