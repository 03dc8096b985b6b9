"""Run the real agent app (``Agent.build`` + ``create_app``, background work on) under uvicorn.

``python -m tests.e2e.agent_server CONFIG``: what ``bm-agent serve`` does, without the CLI,
so the dashboard tests depend only on the service and the API. Stops on SIGTERM.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from agent.api.app import create_app
from agent.app import Agent
from agent.config import load_settings


def main() -> None:
    """Serve the agent configured by ``sys.argv[1]``."""
    settings = load_settings(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(Agent.build(settings), background=True)
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, workers=1,
                access_log=False, log_config=None, proxy_headers=False, lifespan="on")


if __name__ == "__main__":
    main()
