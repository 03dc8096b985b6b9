"""The emulator's HTTP layer against the node's quirks.

Reference: docs/protocol.md §2.2-2.5; §10 items 1-3.
"""

from __future__ import annotations

import socket

import requests

from tests.support.emulator import bm_post, start_emulator

EMPTY = {"peer_nodes_list": [], "additional": {}}


def _raw(host_url: str, request: bytes) -> bytes:
    host, port = host_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_version_probe_any_method_pretty(emulator):
    for method in ("GET", "POST", "PUT"):
        reply = requests.request(method, emulator.url + "/api/v1/", timeout=10)
        assert reply.status_code == 200
        assert reply.content == (b'{\n    "errcode": 0,\n    "message": {\n'
                                 b'        "client_version": "0.4.1.8"\n    }\n}\r\n')
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Content-Type"] == "application/json"


def test_version_probe_reports_configured_version(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path, client=False, deeplink=False, node_version="0.4.1.5")
    assert requests.get(emu.url + "/api/v1/", timeout=10).json()["message"] == {
        "client_version": "0.4.1.5"}


def test_uri_checks_and_prefix_routing(emulator):
    bad = requests.post(emulator.url + "/foo", data=b"{}", timeout=10)
    assert bad.status_code == 400
    assert bad.content == (b'{\n    "errcode": -32600,\n    "message": '
                           b'"request uri is invalid, uri:/foo"\n}\r\n')
    missing = requests.post(emulator.url + "/api/v1/nothing", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"errcode": -32601, "message": "not support uri:/api/v1/nothing"}
    # prefix match: /bare_metalXYZ is a list for id "XYZ"; /bare_metal/modify a list for "modify"
    for path in ("/bare_metalXYZ", "/bare_metal/modify", "/bare_metal/modify/?a=b"):
        reply = bm_post(emulator.url, path, EMPTY)
        assert reply.status_code == 200
        assert reply.content == b'{"errcode":0, "message":{"bare_metal_nodes":[]}}\r\n'
    two = bm_post(emulator.url, "/bare_metal/a/b", EMPTY)
    assert (two.status_code, two.json()) == (400, {"errcode": -32600,
                                                  "message": "invalid requests uri"})
    dl = bm_post(emulator.url, "/deeplink/get", EMPTY)
    assert dl.json()["message"] == "invalid requests uri"


def test_post_only_and_mandatory_envelope(emulator):
    got = requests.get(emulator.url + "/api/v1/bare_metal", timeout=10)
    assert (got.status_code, got.json()) == (400, {"errcode": -32600,
                                                  "message": "only support POST request"})
    empty = bm_post(emulator.url, "/bare_metal", b"")
    assert empty.json() == {"errcode": -25, "message": "http request body is empty"}
    # the list handler prefixes parse_req_params errors, add returns them bare
    listing = bm_post(emulator.url, "/bare_metal", {"additional": {}})
    assert listing.json()["message"] == "parse req params failed: has no peer_nodes_list"
    adding = bm_post(emulator.url, "/bare_metal/add", {"peer_nodes_list": []})
    assert (adding.status_code, adding.json()) == (400, {"errcode": -25,
                                                        "message": "has no additional"})
    threshold = bm_post(emulator.url, "/bare_metal", {**EMPTY, "multisig_accounts": {
        "wallets": [], "threshold": 1, "signs": []}})
    assert threshold.json()["message"] == (
        "parse req params failed: multisig_accounts member threshold is not string")
    not_object = bm_post(emulator.url, "/bare_metal", b"[1]")
    assert not_object.json() == {"errcode": -25, "message": "invalid json"}


def test_json_parse_error_text_and_crlf(emulator):
    reply = bm_post(emulator.url, "/bare_metal", b'{"peer_nodes_list":[] "additional":{}}')
    assert reply.status_code == 400
    assert reply.content == (
        b'{\n    "errcode": -25,\n    "message": "json parse error: Missing a comma or \'}\' '
        b"after an object member.(22)\"\n}\r\n")


def test_header_and_body_limits_answer_413(emulator):
    big_header = b"X-Pad: " + b"a" * 9000 + b"\r\n"
    raw = _raw(emulator.url, b"POST /api/v1/ HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    too_long = _raw(emulator.url, b"POST /api/v1/bare_metal HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 33554433\r\n\r\n")
    assert too_long.startswith(b"HTTP/1.1 413 ")
    # still serving afterwards
    assert requests.get(emulator.url + "/api/v1/", timeout=10).status_code == 200


def test_access_log_has_no_secrets(emulator):
    bm_post(emulator.url, "/bare_metal", EMPTY)
    log = emulator.log()
    assert "POST /api/v1/bare_metal 200 0" in log
    assert emulator.manager_key not in log


def test_sigterm_stops_cleanly(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path)
    emu.proc.stop(timeout=10)
    assert emu.proc.popen.returncode == 0
    assert "stopping" in emu.proc.log_path.read_text()


def test_silent_endpoints_close_without_reply(spawn, tmp_path):
    emu = start_emulator(spawn, tmp_path, client=False, deeplink=False,
                         env={"BM_EMULATOR_RELAY_TIMEOUT_S": "0.5"})
    raw = _raw(emu.url, b"POST /api/v1/stat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert raw == b""
