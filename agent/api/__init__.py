"""The JSON REST API of bm-agent (FastAPI): ``create_app`` lives in ``agent.api.app``."""

__all__: list[str] = []
