"""The HTTP plug path over real HTTP on 127.0.0.1: each preset against its peer's own state."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from baremetal.errors import (
    NotAvailableOnThisPath,
    PathAuthFailed,
    PathProtocolError,
    PathTimeout,
    PathUnreachable,
)
from baremetal.power.backend import Operation, PowerPath, PowerState
from baremetal.power.http_plug import HttpPlug, PlugConfig, TemplateConfig
from tests.peers.plugs import DbcSamplePeer, ShellyPeer, SilentPeer, TasmotaPeer
from tests.support.drip import DripPeer, body_drip, header_drip
from tests.support.ports import free_port

SECRET = "s3cr3t-Pa55/&?"
SEAT = "1c697ac9084e"


@pytest.fixture
def dbc() -> Iterator[DbcSamplePeer]:
    peer = DbcSamplePeer()
    yield peer
    peer.close()


@pytest.fixture
def shelly() -> Iterator[ShellyPeer]:
    peer = ShellyPeer(password=SECRET, switches=2)
    yield peer
    peer.close()


@pytest.fixture
def tasmota() -> Iterator[TasmotaPeer]:
    peer = TasmotaPeer(password=SECRET)
    yield peer
    peer.close()


def _plug(**kwargs: object) -> HttpPlug:
    return HttpPlug(PlugConfig(**kwargs))  # type: ignore[arg-type]


# -- dbc-sample ---------------------------------------------------------------------------------


def test_dbc_sample_switches_the_seat_the_service_confirms(dbc: DbcSamplePeer) -> None:
    plug = _plug(preset="dbc-sample", base_url=dbc.url, target=SEAT)
    plug.on(2.0)
    assert dbc.power == {SEAT: "on"}
    plug.off(2.0)
    assert dbc.power == {SEAT: "off"}
    assert dbc.requests == [("POST", "/api/v1/power")] * 2
    plug.close()


def test_dbc_sample_has_no_status_and_says_so(dbc: DbcSamplePeer) -> None:
    plug = _plug(preset="dbc-sample", base_url=dbc.url, target=SEAT)
    assert not plug.capabilities.can(Operation.STATUS)
    assert plug.capabilities.can(Operation.ON) and plug.capabilities.path is PowerPath.HTTP
    with pytest.raises(NotAvailableOnThisPath):
        plug.status(1.0)
    assert dbc.requests == []


def test_dbc_sample_unconfirmed_switch_is_a_protocol_error(dbc: DbcSamplePeer) -> None:
    dbc.confirm = False
    plug = _plug(preset="dbc-sample", base_url=dbc.url, target=SEAT)
    with pytest.raises(PathProtocolError, match="did not confirm power on"):
        plug.on(2.0)


def test_dbc_sample_wrong_path_is_a_protocol_error(dbc: DbcSamplePeer) -> None:
    plug = _plug(preset="dbc-sample", base_url=dbc.url + "/elsewhere", target=SEAT)
    with pytest.raises(PathProtocolError, match="HTTP 404"):
        plug.on(2.0)


# -- shelly-gen2 --------------------------------------------------------------------------------


def test_shelly_digest_auth_switch_and_watts(shelly: ShellyPeer) -> None:
    plug = _plug(preset="shelly-gen2", base_url=shelly.url, target="1", password=SECRET)
    assert plug.status(2.0).power is PowerState.OFF
    plug.on(2.0)
    assert shelly.output == [False, True]
    reading = plug.status(2.0)
    assert (reading.power, reading.watts, reading.path) == (PowerState.ON, 85.3, PowerPath.HTTP)
    plug.off(2.0)
    assert shelly.output == [False, False]
    plug.close()


def test_shelly_wrong_password_is_auth_failed_without_the_password(shelly: ShellyPeer) -> None:
    plug = _plug(preset="shelly-gen2", base_url=shelly.url, password="wrong-" + SECRET)
    with pytest.raises(PathAuthFailed) as caught:
        plug.on(2.0)
    assert SECRET not in str(caught.value) and SECRET not in repr(plug)
    assert shelly.output == [False, False]


# -- tasmota ------------------------------------------------------------------------------------


def test_tasmota_switch_and_status(tasmota: TasmotaPeer) -> None:
    plug = _plug(preset="tasmota", base_url=tasmota.url, username="admin", password=SECRET)
    plug.on(2.0)
    assert tasmota.power is True
    reading = plug.status(2.0)
    assert (reading.power, reading.watts) == (PowerState.ON, None)
    plug.off(2.0)
    assert tasmota.power is False and plug.status(2.0).power is PowerState.OFF


def test_tasmota_wrong_password_never_leaks_the_query(tasmota: TasmotaPeer) -> None:
    plug = _plug(preset="tasmota", base_url=tasmota.url, username="admin", password="bad" + SECRET)
    with pytest.raises(PathAuthFailed) as caught:
        plug.on(2.0)
    chain = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert all(SECRET not in str(e) and "password" not in str(e) for e in chain if e is not None)
    assert tasmota.power is False


# -- template -----------------------------------------------------------------------------------


def test_template_json_path_against_a_shelly(shelly: ShellyPeer) -> None:
    shelly.password = None
    tpl = TemplateConfig(on_url="/rpc/Switch.Set?id=0&on=true", off_url="/rpc/Switch.Set?id=0&on=false",
                         status_url="/rpc/Switch.GetStatus?id=0", status_json_path="output")
    plug = _plug(preset="template", base_url=shelly.url, template=tpl)
    plug.on(2.0)
    assert shelly.output[0] is True and plug.status(2.0).power is PowerState.ON
    plug.off(2.0)
    assert shelly.output[0] is False and plug.status(2.0).power is PowerState.OFF


def test_template_regex_and_post_body(dbc: DbcSamplePeer, tasmota: TasmotaPeer) -> None:
    tasmota.password = None
    tpl = TemplateConfig(on_url="/cm?cmnd=Power%20On", off_url="/cm?cmnd=Power%20Off",
                         status_url="/cm?cmnd=Power", status_regex=r'"POWER":\s*"(\w+)"')
    plug = _plug(preset="template", base_url=tasmota.url, template=tpl)
    plug.on(2.0)
    assert tasmota.power is True and plug.status(2.0).power is PowerState.ON
    post = TemplateConfig(method="POST", on_url="/api/v1/power", off_url="/api/v1/power",
                          status_url="/none", on_body='{"id": ["x"], "mode": "on", "delay": 0}')
    _plug(preset="template", base_url=dbc.url, template=post).on(2.0)
    assert dbc.power == {"x": "on"}


def test_template_path_missing_is_a_protocol_error(tasmota: TasmotaPeer) -> None:
    tasmota.password = None
    tpl = TemplateConfig(on_url="/cm?cmnd=Power%20On", off_url="/cm?cmnd=Power%20Off",
                         status_url="/cm?cmnd=Power", status_json_path="Relay.0.state")
    with pytest.raises(PathProtocolError, match="JSON path"):
        _plug(preset="template", base_url=tasmota.url, template=tpl).status(2.0)


# -- deadlines, reachability, capabilities --------------------------------------------------------


def test_silent_plug_times_out_within_the_deadline() -> None:
    peer = SilentPeer()
    plug = _plug(preset="tasmota", base_url=peer.url, password=SECRET)
    started = time.monotonic()
    try:
        with pytest.raises(PathTimeout) as caught:
            plug.on(0.5)
    finally:
        peer.close()
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 0.5 + 0.3, elapsed
    # requests' own exception names the URL, password query and all: it must not ride along
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert SECRET not in str(caught.value) and "password" not in str(caught.value)


@pytest.mark.parametrize("make_peer", [header_drip, body_drip], ids=["headers", "body"])
def test_a_dripping_plug_is_cut_at_the_deadline(make_peer: object) -> None:
    """Each byte arrives well within the read timeout; the whole answer never does."""
    peer: DripPeer = make_peer(0.05)  # type: ignore[operator]
    plug = _plug(preset="shelly-gen2", base_url=peer.url)
    started = time.monotonic()
    try:
        with pytest.raises(PathTimeout):
            plug.status(0.5)
        elapsed = time.monotonic() - started
        assert peer.wait_hangups(1) == 1  # the dripping socket was closed, not left open
    finally:
        peer.close()
        plug.close()
    assert 0.45 <= elapsed < 0.5 + 0.3, elapsed


def test_nothing_listening_is_unreachable() -> None:
    plug = _plug(preset="shelly-gen2", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PathUnreachable):
        plug.status(1.0)


@pytest.mark.parametrize("preset", ["shelly-gen2", "tasmota"])
def test_a_plug_cannot_soft_reset_or_boot(preset: str) -> None:
    plug = _plug(preset=preset, base_url="http://127.0.0.1:9")
    assert plug.capabilities.operations == {Operation.STATUS, Operation.ON, Operation.OFF}
    for call in (plug.soft, plug.reset, plug.boot_get):
        with pytest.raises(NotAvailableOnThisPath):
            call(1.0)
    with pytest.raises(NotAvailableOnThisPath):
        plug.boot_set("pxe", persistent=False, uefi=True, deadline_s=1.0)


def test_config_repr_hides_the_password() -> None:
    config = PlugConfig(preset="tasmota", base_url="http://127.0.0.1:9", password=SECRET)
    assert SECRET not in repr(config) and SECRET not in repr(HttpPlug(config))
    with pytest.raises(ValueError, match="unknown plug preset"):
        PlugConfig(preset="x10", base_url="http://127.0.0.1:9")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "tasmota", "base_url": f"http://admin:{SECRET}@127.0.0.1:9"}, "not in the base URL"),
    ({"preset": "tasmota", "base_url": f"http://127.0.0.1:9/?password={SECRET}"}, "not in the base"),
    ({"preset": "shelly-gen2", "base_url": "http://127.0.0.1:9", "target": "0&on=true"}, "number"),
    ({"preset": "tasmota", "base_url": "file:///etc/passwd"}, "http://host"),
    ({"preset": "template", "base_url": "http://127.0.0.1:9"}, "template config"),
])
def test_bad_plug_configs_are_refused_up_front(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        PlugConfig(**kwargs)  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)


def test_bad_template_configs_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        TemplateConfig(on_url="/on", off_url="/off", status_url="/s", status_regex="(unclosed")
    with pytest.raises(ValueError, match="starting with /"):
        TemplateConfig(on_url="http://elsewhere/on", off_url="/off", status_url="/s")
    with pytest.raises(ValueError, match="GET, POST or PUT"):
        TemplateConfig(on_url="/on", off_url="/off", status_url="/s", method="TRACE")
