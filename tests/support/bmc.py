"""Fixtures: bmc (filled in by its owner)."""
