"""HTTP plumbing of the DBC client: the only module that imports ``requests``.

One ``_exchange`` does every call: it builds the URL, sends the JSON body with a
deadline, reads at most ``MAX_ANSWER_BYTES``, decodes the ``{"errcode", "message"}``
envelope (docs/protocol.md §2.5) and translates every ``requests`` exception
once:

- the request never reached the node (refused, reset before sending, DNS, connect
  timeout) -> ``NodeUnreachable``: safe to retry;
- no complete answer within the deadline -> ``NodeTimeout``: the node may have acted;
- any answer that is not the JSON envelope -> ``DecodeError``, whose reason never
  quotes the body (a verified list carries private keys).

Timeouts. A call through a client node waits for the node's own 30 s relay timer
(``MAX_WAIT_HTTP_RESPONSE_TIME``, §2.6); only a client deadline above 30 s lets the
caller see the node's "<op> timeout" answer (HTTP 500) instead of a NodeTimeout of its
own, so ``DEFAULT_TIMEOUT_S`` is 35 s. Calls served by the bare-metal node itself
(list, add, delete, modify, DeepLink) answer in milliseconds: pass ``LOCAL_TIMEOUT_S``
when the client talks to a bare-metal node directly. The deadline is OVERALL: connect,
send, status line, headers and body together (``baremetal.dbc.deadline`` shuts the
call's socket down when it passes), so a node that drip-feeds bytes is cut off at the
deadline, not after every single read. The answer is capped at ``MAX_ANSWER_BYTES``.
A session passed in by the caller keeps its proxies and ``trust_env``, but the client
mounts its deadline adapter for the node's URL on it; the client's own session ignores
proxy settings from the environment.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from baremetal.dbc.auth import Auth
from baremetal.dbc.deadline import CallWatch, DeadlineAdapter, overall_deadline
from baremetal.errors import (
    DecodeError,
    InvalidInput,
    NodeTimeout,
    NodeUnreachable,
    api_error_from_reply,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "LOCAL_TIMEOUT_S",
    "MAX_ANSWER_BYTES",
    "ClientCore",
    "Reply",
    "check_path_segment",
    "decode_envelope",
    "request_body",
]

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT_S = 35.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
LOCAL_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024
# The node splits the path on '/' after dropping '?query' and never percent-decodes
# (url_util.cpp:6-24), so an id must be plain, unreserved-ish ASCII.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=-]+")
_UNESCAPED_HINT = (
    "the node writes strings without escaping, so a '\"' or '\\' in a stored field "
    "yields invalid JSON (docs/protocol.md §2.5)"
)


@dataclass(frozen=True)
class Reply:
    """A decoded answer: HTTP status, errcode and message (any JSON value)."""

    http_status: int
    errcode: int
    message: Any


def request_body(
    peers: Sequence[str], additional: dict[str, Any], auth: Auth | None,
) -> dict[str, Any]:
    """Build the common envelope; ``peer_nodes_list`` and ``additional`` always present (§2.4)."""
    body: dict[str, Any] = {"peer_nodes_list": list(peers), "additional": additional}
    if auth is not None:
        body.update(auth.to_fields())
    return body


def check_path_segment(name: str, value: object) -> str:
    """Return ``value`` if it can be one path segment of a node URL; else InvalidInput."""
    if not isinstance(value, str) or not _PATH_SEGMENT.fullmatch(value):
        raise InvalidInput(f"{name} must be non-empty ASCII without '/', '?', '#', '%' or spaces")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _decode_json(endpoint: str, http_status: int, body: bytes, content_type: str) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(endpoint, f"body is not UTF-8 (byte {exc.start})", http_status) from None
    if not text.strip():
        raise DecodeError(endpoint, "empty body", http_status)
    try:
        # strict=False: the node copies raw control characters (tabs, ...) into strings.
        return json.loads(text, strict=False, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        kind = f"content-type {content_type!r}" if content_type else "no content-type"
        reason = f"invalid JSON at {where} ({exc.msg}; {kind}); {_UNESCAPED_HINT}"
        raise DecodeError(endpoint, reason, http_status) from None
    except (ValueError, RecursionError) as exc:
        raise DecodeError(endpoint, f"unusable JSON ({type(exc).__name__})", http_status) from None


def decode_envelope(endpoint: str, http_status: int, body: bytes, content_type: str = "") -> Reply:
    """Decode and check ``{"errcode": int, "message": ...}``; raise DecodeError otherwise."""
    doc = _decode_json(endpoint, http_status, body, content_type)
    if not isinstance(doc, dict):
        raise DecodeError(endpoint, f"answer is a JSON {type(doc).__name__}, not an object",
                          http_status)
    errcode = doc.get("errcode")
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        raise DecodeError(endpoint, "answer has no integer errcode", http_status)
    if "message" not in doc:
        raise DecodeError(endpoint, "answer has no message", http_status)
    message = doc["message"]
    if errcode != 0 and not isinstance(message, str):
        raise DecodeError(endpoint, f"error answer (errcode {errcode}) has a non-string message",
                          http_status)
    if errcode == 0 and http_status != 200:
        raise DecodeError(endpoint, f"HTTP {http_status} with errcode 0", http_status)
    return Reply(http_status, errcode, message)


def _normalise_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("base_url must look like http://host:port")
    if parts.query or parts.fragment:
        raise InvalidInput("base_url must not carry a query or fragment")
    path = parts.path.rstrip("/")
    path = path.removesuffix(API_PREFIX)
    return f"{parts.scheme}://{parts.netloc}{path}"


class ClientCore:
    """Connection, deadline and envelope handling shared by every endpoint method."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        session: requests.Session | None = None,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise InvalidInput("timeouts must be positive")
        self.base_url = _normalise_base_url(base_url)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._owns_session = session is None
        self._session = session or requests.Session()
        if self._owns_session:
            # Ignore HTTP(S)_PROXY and .netrc from the environment: node traffic goes
            # straight to the node, never through a proxy that would see signatures.
            self._session.trust_env = False
        # Every call's overall deadline needs the watched connections (client_deadline).
        self._session.mount(self.base_url + "/", DeadlineAdapter())

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _exchange(
        self, endpoint: str, path: str, body: dict[str, Any] | None,
        timeout_s: float | None, *, method: str = "POST",
    ) -> Reply:
        """Send one request and decode the envelope; errcode is left to the caller."""
        deadline_s = self.timeout_s if timeout_s is None else timeout_s
        if deadline_s <= 0:
            raise InvalidInput("timeout_s must be positive")
        url = f"{self.base_url}{API_PREFIX}{path}"
        status, content_type, raw = self._send(endpoint, method, url, body, deadline_s)
        reply = decode_envelope(endpoint, status, raw, content_type)
        _LOGGER.debug("%s %s -> HTTP %s errcode %s", method, path, status, reply.errcode)
        return reply

    def _call(
        self, endpoint: str, path: str, body: dict[str, Any] | None, timeout_s: float | None,
    ) -> Any:
        """Send one request and return ``message``; raise the typed ApiError otherwise."""
        reply = self._exchange(endpoint, path, body, timeout_s)
        if reply.errcode != 0:
            raise api_error_from_reply(endpoint, reply.http_status, reply.errcode, reply.message)
        return reply.message

    def _send(
        self, endpoint: str, method: str, url: str, body: dict[str, Any] | None,
        deadline_s: float,
    ) -> tuple[int, str, bytes]:
        """Do one exchange within ``deadline_s`` overall; return status, type and body."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        with overall_deadline(deadline_s) as watch:
            try:
                return self._exchange_within(endpoint, method, url, data, deadline_s, watch)
            except (NodeUnreachable, DecodeError):
                if watch.expired:  # the watchdog cut the socket: that is a timeout
                    raise NodeTimeout(endpoint, f"no complete answer within {deadline_s}s"
                                      ) from None
                raise

    def _exchange_within(
        self, endpoint: str, method: str, url: str, data: bytes | None, deadline_s: float,
        watch: CallWatch,
    ) -> tuple[int, str, bytes]:
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            resp = self._session.request(
                method, url, data=data, headers=headers, stream=True, allow_redirects=False,
                timeout=(min(self.connect_timeout_s, deadline_s), deadline_s),
            )
        except requests.exceptions.ConnectTimeout:
            raise NodeUnreachable(endpoint, f"connect timed out after {self.connect_timeout_s}s"
                                  ) from None
        except requests.exceptions.Timeout:
            raise NodeTimeout(endpoint, f"no answer within {deadline_s}s") from None
        except requests.exceptions.RequestException as exc:
            raise NodeUnreachable(endpoint, f"cannot reach node ({type(exc).__name__})") from None
        with resp:
            raw = self._read_body(endpoint, resp)
            if watch.expired:  # an answer cut short by the watchdog may look complete
                raise NodeTimeout(endpoint, f"answer not complete within {deadline_s}s")
            return resp.status_code, resp.headers.get("Content-Type", ""), raw

    def _read_body(self, endpoint: str, resp: requests.Response) -> bytes:
        # read1 returns whatever one socket read brings; the size cap is checked after
        # each read, so a node cannot make us hold more than MAX_ANSWER_BYTES + one chunk.
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := resp.raw.read1(_CHUNK):
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise DecodeError(endpoint, f"answer larger than {MAX_ANSWER_BYTES} bytes",
                                      resp.status_code)
                chunks.append(chunk)
        except urllib3.exceptions.ReadTimeoutError:
            raise NodeTimeout(endpoint, "answer not complete within the deadline") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DecodeError(endpoint, f"answer cut short or badly framed ({type(exc).__name__})",
                              resp.status_code) from None
        return b"".join(chunks)
