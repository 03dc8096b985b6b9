"""Pure pieces of the API: error mapping, language choice, route templates, hook body rules,
DeepLink freshness, and the boot watcher over a real (temporary) store."""

import json

import pytest
from starlette.requests import Request

from agent.api.app import route_template
from agent.api.errors import (
    _accept_language,
    baremetal_status,
    error_body,
    error_class_status,
    request_lang,
)
from agent.errors import all_error_classes
from agent.hook.relay import HookRefusal, iso_utc, parse_publish_body
from agent.i18n import LANGS, catalogue
from agent.models import CheckResult, DeepLinkStatus, ReadingRecord, Verdict
from agent.monitor.deeplink_status import (
    FRESH,
    STALE,
    UNKNOWN,
    BootWatcher,
    deeplink_views,
    freshness,
)
from agent.secrets import Secret
from baremetal import errors as bm


def request(query="", accept="", default="zh_CN"):
    class App:
        class state:  # mimics app.state
            default_lang = default
    headers = [(b"accept-language", accept.encode())] if accept else []
    return Request({"type": "http", "query_string": query.encode(), "headers": headers,
                    "app": App, "path": "/", "method": "GET"})


@pytest.mark.parametrize(("query", "accept", "expected"), [
    ("", "", "zh_CN"),
    ("lang=en", "zh-CN", "en"),
    ("lang=zh", "en", "zh_CN"),
    ("", "en-US,en;q=0.9", "en"),
    ("", "fr-FR, en;q=0.5, zh;q=0.8", "zh_CN"),
    ("", "fr, de", "zh_CN"),
    ("lang=klingon", "en", "en"),
])
def test_request_language(query, accept, expected):
    assert request_lang(request(query, accept)) == expected


def test_default_language_comes_from_the_app():
    assert request_lang(request(default="en")) == "en"


def test_accept_language_ignores_zero_weight_and_garbage():
    assert _accept_language("en;q=0, zh;q=bad, fr") == ["fr"]


def test_every_agent_error_has_a_status_and_both_translations():
    for cls in all_error_classes():
        assert 400 <= error_class_status(cls) <= 599, cls
        for lang in LANGS:
            assert cls.code in catalogue(lang), (cls.code, lang)


@pytest.mark.parametrize(("exc", "status", "code"), [
    (bm.DeepLinkNotConnected("deeplink", 400, -32600, "deeplink service not connected"), 503,
     "deeplink_not_connected"),
    (bm.NodeTimeout("list", "slow"), 502, "node_unreachable"),
    (bm.NodeUnreachable("list", "refused"), 502, "node_unreachable"),
    (bm.SignatureRejected("list", 400, -25, "verify sign failed"), 502, "node_error"),
    (bm.DecodeError("list", "bad json"), 502, "node_error"),
    (bm.IpmiTimeout("127.0.0.1:623", "deadline"), 503, "bmc_unreachable"),
    (bm.IpmiAuthError("127.0.0.1:623", "refused"), 502, "bmc_error"),
    (bm.InvalidInput("bad"), 422, "invalid_input"),
    (bm.SigningError("bad key"), 502, "upstream_error"),
])
def test_baremetal_errors_map_to_gateway_statuses(exc, status, code):
    assert baremetal_status(exc) == (status, code)
    for lang in LANGS:
        assert code in catalogue(lang)


def test_error_body_shape():
    assert error_body("x", "y") == {"error": {"code": "x", "message": "y"}}


@pytest.mark.parametrize(("path", "params", "expected"), [
    ("/api/v1/servers", {}, "/api/v1/servers"),
    ("/api/v1/servers/pc-1", {"uuid": "pc-1"}, "/api/v1/servers/{uuid}"),
    ("/api/v1/servers/servers/power", {"uuid": "servers"}, "/api/v1/servers/{uuid}/power"),
    ("/api/v1/auth/tokens/12", {"token_id": 12}, "/api/v1/auth/tokens/{token_id}"),
])
def test_route_template(path, params, expected):
    scope = {"type": "http", "path": path, "path_params": params, "route": object()}
    assert route_template(scope) == expected


def test_unmatched_routes_share_one_label():
    assert route_template({"type": "http", "path": "/random/123"}) == "unmatched"


NODE_ID = "ab" * 32


@pytest.mark.parametrize("body", [
    {"node_id": NODE_ID, "device_password": "Abc123"},
    {"node_id": NODE_ID, "device_password": "A" * 16, "device_id": "123456789"},
])
def test_valid_publish_bodies(body):
    node_id, code, device_id = parse_publish_body(json.dumps(body).encode())
    assert (node_id, code, device_id) == (NODE_ID, body["device_password"],
                                          body.get("device_id", ""))


@pytest.mark.parametrize("raw", [
    b"", b"[]", b"\xff", b'{"node_id": 1}',
    json.dumps({"node_id": NODE_ID.upper(), "device_password": "Abc123"}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "Abc12"}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "A" * 17}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "Abc 123"}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "Abc123", "device_id": ""}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "Abc123", "device_id": 5}).encode(),
    json.dumps({"node_id": NODE_ID, "device_password": "Abc123", "device_id": 'a"b'}).encode(),
])
def test_invalid_publish_bodies_are_400(raw):
    with pytest.raises(HookRefusal) as caught:
        parse_publish_body(raw)
    assert (caught.value.status, caught.value.code) == (400, "bad_request")
    assert "Abc123" not in caught.value.detail


def test_iso_utc():
    assert iso_utc(1767225601) == "2026-01-01T00:00:01Z"


def status(rotated=None, boot=None):
    return DeepLinkStatus(server_id=1, uuid="pc", last_rotated_at=rotated,
                          last_boot_seen_at=boot)


@pytest.mark.parametrize(("value", "expected"), [
    (None, UNKNOWN), (status(), UNKNOWN), (status(rotated=10), FRESH),
    (status(boot=10), STALE), (status(rotated=10, boot=20), STALE),
    (status(rotated=20, boot=10), FRESH), (status(rotated=10, boot=10), FRESH),
])
def test_freshness(value, expected):
    assert freshness(value) == expected


def add(store, uuid, ip="10.0.0.1"):
    return store.servers.add(uuid=uuid, ip=ip, ipmi_host="127.0.0.1", ipmi_user="admin",
                             ipmi_password=Secret("pw123456"))


def record(store, server, ts, power):
    reading = ReadingRecord(server_id=server.id, ts=ts, power=power)
    store.checks.record(results=[CheckResult(reading=reading, verdict=Verdict.OK)],
                        keep_per_server=100)


def test_boot_watcher_stamps_the_last_off_reading(store):
    server = add(store, "pc-1")
    watcher = BootWatcher(store)
    record(store, server, 100.0, "on")
    assert watcher.poll() == 0
    store.deeplink.record(server_id=server.id, result="confirmed", rotated=True)
    record(store, server, 200.0, "off")
    assert watcher.poll() == 0
    record(store, server, 260.0, None)  # an unreachable pass in between
    record(store, server, 320.0, "on")
    assert watcher.poll() == 1
    assert watcher.poll() == 0  # the same reading is not a second boot
    assert store.deeplink.get(server_id=server.id).last_boot_seen_at == 200.0


def test_boot_watcher_notices_a_boot_across_a_restart(store):
    server = add(store, "pc-1")
    record(store, server, 100.0, "off")
    watcher = BootWatcher(store)  # a new process: first poll sees the stored "off"
    assert watcher.poll() == 0
    record(store, server, 160.0, "on")
    assert watcher.poll() == 1


def test_deeplink_views_flag_duplicates(store):
    one, two, three = add(store, "pc-1"), add(store, "pc-2"), add(store, "pc-3")
    for server in (one, two):
        store.deeplink.record(server_id=server.id, result="confirmed", device_id="777",
                              rotated=True)
    store.deeplink.record(server_id=three.id, result="confirmed", device_id="888", rotated=True)
    views = {v.uuid: v for v in deeplink_views(store)}
    assert views["pc-1"].duplicate_with == ("pc-2",)
    assert views["pc-2"].duplicate_with == ("pc-1",)
    assert views["pc-3"].duplicate_with == ()
    assert [v.uuid for v in deeplink_views(store, uuid="pc-2")] == ["pc-2"]


def test_row_renderer_matches_json_and_reuses_rows(store):
    from agent.api.rendering import RowRenderer
    from agent.api.schemas import ServerOut

    for n in range(3):
        add(store, f"pc-{n}")
    renderer = RowRenderer()
    rows = store.status.find()
    body = renderer.render(rows)
    items = [ServerOut.from_status(r).model_dump(mode="json") for r in rows]
    assert json.loads(body) == {"count": 3, "items": items}
    assert renderer.render(rows) == body
    assert json.loads(renderer.render(rows[1:]))["count"] == 2
    store.servers.update(server_id=rows[0].server.id, desc="changed")  # a commit: new rows
    assert json.loads(renderer.render(store.status.find()))["items"][0]["desc"] == "changed"
    assert json.loads(renderer.render([])) == {"count": 0, "items": []}
