"""The staff dashboard served by the agent: ``build_web_router(agent)`` (see ``router``)."""

from agent.web.router import build_web_router

__all__ = ["build_web_router"]
