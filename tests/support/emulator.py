"""Fixtures: emulator (filled in by its owner)."""
