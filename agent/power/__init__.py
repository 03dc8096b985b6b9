"""Each seat's power path as the agent uses it: capabilities (data) and backends (I/O).

``capabilities_of`` answers from the inventory alone what a seat's path can do, so the
dashboard, the API and the CLI can grey out the rest before anyone clicks.
"""

from agent.power.capabilities import capabilities_of, operation_names

__all__ = ["capabilities_of", "operation_names"]
