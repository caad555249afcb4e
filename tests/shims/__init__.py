"""Tests of the per-language Lambda-simulating shims."""
