r"""Reply bodies byte for byte as the node writes them (docs/protocol.md §2.5).

Three spellings exist and each has a builder here:

- ``client_error``: ``reply_comm_rest_err``, rapidjson PrettyWriter, escaped;
- ``node_error`` / ``node_json``: node-built ``{"errcode":<n>, "message":...}`` made by
  string concatenation WITHOUT escaping (``send_response_error``,
  ``node_request_service.cpp:494-520``), sent with ``reply_comm_rest_succ2``;
- ``local_result``: ``{"errcode": <n>,"message": "<text>"}`` of the local delete,
  modify and DeepLink-set paths (``rest_api_service.cpp:12861-12865``).

Every body ends with ``\\r\\n``; every reply carries ``Content-Type: application/json``
and ``Access-Control-Allow-Origin: *``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from baremetal.emulator import rjson

__all__ = [
    "E_DEFAULT",
    "HTTP_BAD_REQUEST",
    "HTTP_INTERNAL",
    "HTTP_NOT_FOUND",
    "HTTP_OK",
    "RPC_INVALID_PARAMS",
    "RPC_INVALID_REQUEST",
    "RPC_METHOD_NOT_FOUND",
    "RPC_RESPONSE_ERROR",
    "Reply",
    "client_error",
    "encode_text",
    "libevent_error",
    "local_result",
    "node_error",
    "node_json",
    "pretty_success",
]

HTTP_OK = 200
HTTP_BAD_REQUEST = 400
HTTP_NOT_FOUND = 404
HTTP_INTERNAL = 500

E_DEFAULT = -3
RPC_INVALID_PARAMS = -25
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_RESPONSE_ERROR = -32701

_CRLF = b"\r\n"
_ERRCODE = re.compile(rb'"errcode":\s*(-?\d+)')


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, exact body bytes, and the errcode for the access log."""

    status: int
    body: bytes
    errcode: int | None = None
    content_type: str = "application/json"
    close: bool = False


def encode_text(text: str) -> bytes:
    """Encode text built from request values back to the bytes the node would send."""
    return text.encode("utf-8", errors="surrogateescape")


def client_error(status: int, errcode: int, message: str) -> Reply:
    r"""Build ``reply_comm_rest_err``: pretty-printed, escaped, ``\\r\\n``-terminated."""
    body = rjson.pretty({"errcode": errcode, "message": message})
    return Reply(status, encode_text(body) + _CRLF, errcode)


def pretty_success(message: object) -> Reply:
    """Build ``reply_comm_rest_succ``: ``{"errcode": 0, "message": ...}`` pretty-printed."""
    body = rjson.pretty({"errcode": 0, "message": message})
    return Reply(HTTP_OK, encode_text(body) + _CRLF, 0)


def node_json(text: str) -> Reply:
    """Send node-built JSON verbatim with HTTP 200 (``reply_comm_rest_succ2``)."""
    raw = encode_text(text)
    match = _ERRCODE.search(raw)
    return Reply(HTTP_OK, raw + _CRLF, int(match.group(1)) if match else None)


def node_error(errcode: int, message: str) -> str:
    """Return ``send_response_error``'s text: ``{"errcode":<n>, "message":"<raw>"}``."""
    return '{"errcode":' + str(errcode) + ', "message":"' + message + '"}'


def local_result(errcode: int, message: str) -> Reply:
    """Build the local delete/modify/DeepLink-set spelling (unescaped message)."""
    return node_json('{"errcode": ' + str(errcode) + ',"message": "' + message + '"}')


def libevent_error(status: int, phrase: str) -> Reply:
    """Build libevent's own ``evhttp_send_error`` page (limits exceeded, bad request)."""
    body = (
        f"<HTML><HEAD>\n<TITLE>{status} {phrase}</TITLE>\n</HEAD><BODY>\n"
        f"<H1>{phrase}</H1>\n</BODY></HTML>\n"
    )
    return Reply(status, body.encode("ascii"), None, "text/html", close=True)
