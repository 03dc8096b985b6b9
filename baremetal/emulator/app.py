"""The HTTP listener: libevent-like request reading, URI routing, exact reply bytes.

Routing follows ``rest_api_service.cpp:34-82,329-358``: every URI must start with
``/api/v1``; ``/`` is exact, every other entry is a prefix match in table order, the
rest of the URI (query included) is the handler's sub-path. Limits follow
``http_server_service.h:7-9``: 8192 bytes of request head, 32 MiB of body (both
answered by libevent's own 413 page), 30 s idle timeout.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from baremetal.emulator.context import HttpContext, HttpRequest
from baremetal.emulator.http_bare_metal import rest_bare_metal
from baremetal.emulator.http_deeplink import rest_deeplink
from baremetal.emulator.http_misc import (
    Handler,
    rest_mining_nodes,
    rest_peers,
    rest_rent_orders,
    rest_silent,
    rest_version,
    rest_vm,
)
from baremetal.emulator.replies import (
    HTTP_BAD_REQUEST,
    HTTP_INTERNAL,
    HTTP_NOT_FOUND,
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_RESPONSE_ERROR,
    Reply,
    client_error,
    libevent_error,
)

__all__ = ["EmulatorHttpServer", "dispatch"]

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_HEADERS_SIZE = 8192
MAX_BODY_SIZE = 32 * 1024 * 1024
SERVER_TIMEOUT_S = 30.0
_ALLOWED = ("GET", "POST", "HEAD", "PUT", "DELETE")  # evhttp's default allowed methods
_KNOWN = (*_ALLOWED, "OPTIONS", "TRACE", "CONNECT", "PATCH")
_PHRASES = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Request Entity Too Large",
            500: "Internal Server Error", 501: "Not Implemented"}

ROUTES: tuple[tuple[str, bool, Handler], ...] = (
    ("/", True, rest_version),
    ("/tasks", False, rest_vm("tasks")),
    ("/images", False, rest_vm("images")),
    ("/snapshot", False, rest_vm("snapshot")),
    ("/disk", False, rest_vm("disk")),
    ("/mining_nodes", False, rest_mining_nodes),
    ("/peers", False, rest_peers),
    ("/stat", False, rest_silent),
    ("/config", False, rest_silent),
    ("/monitor", False, rest_vm("monitor")),
    ("/lan", False, rest_vm("lan")),
    ("/bare_metal", False, rest_bare_metal),
    ("/deeplink", False, rest_deeplink),
    ("/rent_orders", False, rest_rent_orders),
)


def dispatch(ctx: HttpContext, req: HttpRequest) -> Reply:
    """Route one request like ``on_http_request_event`` and return the reply."""
    uri = req.uri
    if not uri.startswith(API_PREFIX):
        return client_error(HTTP_BAD_REQUEST, RPC_INVALID_REQUEST,
                            "request uri is invalid, uri:" + uri)
    for prefix, exact, handler in ROUTES:
        full = API_PREFIX + prefix
        if (uri == full) if exact else uri.startswith(full):
            try:
                return handler(ctx, req, uri[len(full):])
            except Exception:
                _LOGGER.exception("handler for %s failed", prefix)
                return client_error(HTTP_INTERNAL, RPC_RESPONSE_ERROR, "Unhandled request")
    return client_error(HTTP_NOT_FOUND, RPC_METHOD_NOT_FOUND, "not support uri:" + uri)


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorHttpServer
    timeout = SERVER_TIMEOUT_S
    protocol_version = "HTTP/1.1"

    def handle_one_request(self) -> None:
        try:
            request = self._read_request()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True
            return
        except _TooLarge:
            self._send(libevent_error(413, _PHRASES[413]), "-", "-")
            return
        except _BadRequest:
            self._send(libevent_error(HTTP_BAD_REQUEST, _PHRASES[400]), "-", "-")
            return
        if request is None:
            self.close_connection = True
            return
        if request.method not in _ALLOWED:
            self._send(libevent_error(501, _PHRASES[501]), request.method, request.uri)
            return
        reply = dispatch(self.server.context, request)
        self._send(reply, request.method, request.uri)

    def _read_head(self) -> list[bytes] | None:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_HEADERS_SIZE + 3)
            if not line:
                if lines:
                    raise _BadRequest
                return None
            if not lines and line in (b"\r\n", b"\n"):
                continue  # libevent skips blank lines before the request line
            stripped = line.rstrip(b"\r\n")
            size += len(stripped)
            if size > MAX_HEADERS_SIZE or not line.endswith(b"\n"):
                raise _TooLarge
            if not stripped:
                return lines
            lines.append(stripped)

    def _read_request(self) -> HttpRequest | None:
        lines = self._read_head()
        if lines is None:
            return None
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            raise _BadRequest
        method = parts[0].decode("ascii", errors="replace")
        if method not in _KNOWN:
            raise _BadRequest
        headers = {}
        for raw in lines[1:]:
            name, sep, value = raw.partition(b":")
            if not sep:
                raise _BadRequest
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self._set_keep_alive(parts[2], headers)
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as evhttp does (curl)
            self.wfile.flush()
        body = self._read_body(headers)
        uri = parts[1].decode("utf-8", errors="surrogateescape")
        return HttpRequest(method, uri, body)

    def _set_keep_alive(self, version: bytes, headers: dict[str, str]) -> None:
        connection = headers.get("connection", "").lower()
        if version == b"HTTP/1.0":
            self.close_connection = connection != "keep-alive"
        else:
            self.close_connection = connection == "close"

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        text = headers.get("content-length", "0") or "0"
        if not text.isdigit():
            raise _BadRequest
        length = int(text)
        if length > MAX_BODY_SIZE:
            raise _TooLarge
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadRequest from None
            if size == 0:
                while self.rfile.readline(MAX_HEADERS_SIZE) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_SIZE:
                raise _TooLarge
            body += self.rfile.read(size)
            self.rfile.readline(3)

    def _send(self, reply: Reply, method: str, uri: str) -> None:
        _LOGGER.info("%s %s %s %s", method, uri[:300], reply.status or "no-reply",
                     reply.errcode if reply.errcode is not None else "-")
        if reply.status == 0:  # the node never answers this one
            threading.Event().wait(self.server.no_reply_hold_s)
            self.close_connection = True
            return
        if reply.close:
            self.close_connection = True
        head = [f"HTTP/1.1 {reply.status} {_PHRASES.get(reply.status, 'Unknown')}"]
        if reply.content_type == "application/json":
            head += ["Access-Control-Allow-Origin: *", "Content-Type: application/json"]
        else:
            head.append("Content-Type: text/html; charset=ISO-8859-1")
        head.append("Date: " + email.utils.formatdate(usegmt=True))
        head.append(f"Content-Length: {len(reply.body)}")
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if method != "HEAD":
            payload += reply.body
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Silence BaseHTTPRequestHandler's own stderr lines (we log per request)."""


class EmulatorHttpServer(ThreadingHTTPServer):
    """A threaded HTTP listener serving one node role."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, host: str, port: int, context: HttpContext, no_reply_hold_s: float
    ) -> None:
        self.context = context
        self.no_reply_hold_s = no_reply_hold_s
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer.server_bind`` does."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
