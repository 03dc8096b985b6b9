"""Fixtures: agentproc (filled in by its owner)."""
