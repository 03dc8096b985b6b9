"""``bm-agent``, the command line: one module per group of commands, ``entry`` parses and runs.

``main`` is the console script (``bm-agent = "agent.cli:main"``).
"""

from agent.cli.entry import main

__all__ = ["main"]
