"""The HTTP plug / café power service path: a smart plug or the café's power service.

Four presets, each following its vendor's published API:

- ``dbc-sample``: the DBC node's sample café power service
  (``tool/netbar_power_manager`` in DBC-AIComputingNet): ``POST /api/v1/power`` with
  ``{"id": [<uuid or MAC>], "mode": "on"|"off", "delay": 0}``; it answers
  ``{"mac": [<the ids>]}`` and success means our id is in ``mac``. It has no status query
  (the node's own tool prints "Not supported"), so ``status`` is not available.
- ``shelly-gen2``: ``/rpc/Switch.Set?id=N&on=true|false`` and ``/rpc/Switch.GetStatus?id=N``
  (``output``, ``apower`` watts); digest auth (SHA-256) when a password is set.
- ``tasmota``: ``/cm?cmnd=Power%20On|Off`` and ``/cm?cmnd=Power``, answering
  ``{"POWER":"ON"}``; ``user``/``password`` query parameters.
- ``template``: method, URLs, bodies and a regex or a dotted JSON path for the status.

A plug can switch power and read it; soft shutdown, reset and boot device are not
available (cutting power is not a reset). Every request is bounded by its deadline, body
read included. Errors name the plug by scheme, host and port only: never a path, a query
(Tasmota carries the password there) or a credential.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.auth import AuthBase, HTTPDigestAuth

from baremetal.dbc.deadline import DeadlineAdapter, overall_deadline
from baremetal.errors import (
    NotAvailableOnThisPath,
    PathAuthFailed,
    PathProtocolError,
    PathTimeout,
    PathUnreachable,
    PowerPathError,
)
from baremetal.power.backend import (
    BootSetting,
    Capabilities,
    Operation,
    PowerPath,
    PowerReading,
    PowerState,
)

__all__ = ["PRESETS", "HttpPlug", "PlugConfig", "TemplateConfig", "preset_capabilities"]

PRESETS = ("dbc-sample", "shelly-gen2", "tasmota", "template")
_MAX_BODY = 64 * 1024
_STATUS_OPS = frozenset({Operation.STATUS, Operation.ON, Operation.OFF})


@dataclass(frozen=True)
class TemplateConfig:
    """A plug described by its URLs: paths (``/…``) after the plug's base URL.

    The status answer is read with ``status_regex`` (group 1) or ``status_json_path``
    (dotted, list indexes as numbers); the value equal to ``on_value`` (case-insensitive,
    ``true``/``1`` for booleans) means on.
    """

    on_url: str
    off_url: str
    status_url: str
    method: str = "GET"
    on_body: str | None = None
    off_body: str | None = None
    status_regex: str | None = None
    status_json_path: str | None = None
    on_value: str = "on"

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "PUT"):
            raise ValueError("template method must be GET, POST or PUT")
        for url in (self.on_url, self.off_url, self.status_url):
            if not url.startswith("/"):
                raise ValueError("template URLs are paths after the base URL, starting with /")
        if self.status_regex is not None:
            try:
                re.compile(self.status_regex)
            except re.error as exc:
                raise ValueError(f"template status_regex does not compile: {exc}") from None


@dataclass(frozen=True)
class PlugConfig:
    """One seat's plug: preset, base URL and credentials (never shown by repr)."""

    preset: str
    base_url: str
    target: str = "0"  # dbc-sample: the seat's uuid or MAC; shelly/tasmota: switch/relay index
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    template: TemplateConfig | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown plug preset {self.preset!r}; one of {', '.join(PRESETS)}")
        if self.preset == "template" and self.template is None:
            raise ValueError("the template preset needs a template config")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("plug base URL must be http://host[:port] or https://host[:port]")
        if parts.username or parts.password or parts.query:
            raise ValueError("put plug credentials in username/password, not in the base URL")
        if self.preset in ("shelly-gen2", "tasmota") and not self.target.isdigit():
            raise ValueError("the switch/relay index (target) must be a number")


def preset_capabilities(preset: str) -> Capabilities:
    """Tell what a plug of ``preset`` can do: status (not the DBC sample service), on, off."""
    ops = _STATUS_OPS
    if preset == "dbc-sample":
        ops = frozenset({Operation.ON, Operation.OFF})
    return Capabilities(path=PowerPath.HTTP, operations=ops)


def _json_path(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(part)
    return node


def _is_on(value: Any, on_value: str) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {on_value.lower(), "true", "1"}


class HttpPlug:
    """A :class:`~baremetal.power.backend.PowerBackend` over an HTTP plug or power service."""

    def __init__(self, config: PlugConfig) -> None:
        self._config = config
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment between us and the plug
        for scheme in ("http://", "https://"):  # one overall deadline per call, body included
            self._session.mount(scheme, DeadlineAdapter())
        parts = urlsplit(config.base_url)
        self._base = config.base_url.rstrip("/")
        where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
        self._where = f"{config.preset} plug at {where}"

    def __repr__(self) -> str:
        return f"HttpPlug({self._where!r})"

    @property
    def capabilities(self) -> Capabilities:
        """Status (except the DBC sample service), on and off."""
        return preset_capabilities(self._config.preset)

    # -- the protocol -------------------------------------------------------------------

    def status(self, deadline_s: float) -> PowerReading:
        """Read the plug's output (and its watts where it measures them)."""
        preset = self._config.preset
        if preset == "dbc-sample":
            raise NotAvailableOnThisPath(self._where,
                                         "the DBC sample power service has no status query")
        if preset == "shelly-gen2":
            answer = self._json(self._call("GET", f"/rpc/Switch.GetStatus?id={self._index()}",
                                           deadline_s))
            return self._shelly_reading(answer)
        if preset == "tasmota":
            return self._reading(self._tasmota("Power", deadline_s))
        return self._template_status(deadline_s)

    def on(self, deadline_s: float) -> None:
        """Switch the plug on."""
        self._switch(True, deadline_s)

    def off(self, deadline_s: float) -> None:
        """Switch the plug off (a plug's off is always forced)."""
        self._switch(False, deadline_s)

    def soft(self, deadline_s: float) -> None:
        """Not available: a plug cannot ask the OS to shut down."""
        raise NotAvailableOnThisPath(self._where, "a plug cannot do a graceful shutdown")

    def reset(self, deadline_s: float) -> None:
        """Not available: cutting power is not a reset."""
        raise NotAvailableOnThisPath(self._where,
                                     "a plug cannot reset (cutting power is not a reset)")

    def boot_get(self, deadline_s: float) -> BootSetting:
        """Not available: a plug does not know the boot device."""
        raise NotAvailableOnThisPath(self._where, "a plug cannot read the boot device")

    def boot_set(self, device: str, *, persistent: bool, uefi: bool,
                 deadline_s: float) -> None:
        """Not available: a plug cannot set the boot device."""
        raise NotAvailableOnThisPath(self._where, "a plug cannot set the boot device")

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # -- presets --------------------------------------------------------------------------

    def _switch(self, on: bool, deadline_s: float) -> None:
        preset = self._config.preset
        if preset == "dbc-sample":
            self._dbc_sample("on" if on else "off", deadline_s)
        elif preset == "shelly-gen2":
            wanted = "true" if on else "false"
            self._json(self._call("GET", f"/rpc/Switch.Set?id={self._index()}&on={wanted}",
                                  deadline_s))
        elif preset == "tasmota":
            state = self._tasmota("Power%20On" if on else "Power%20Off", deadline_s)
            if state is not on:
                raise PathProtocolError(self._where, "the relay did not take the new state")
        else:
            self._template_switch(on, deadline_s)

    def _dbc_sample(self, mode: str, deadline_s: float) -> None:
        seat = self._config.target
        body = json.dumps({"id": [seat], "mode": mode, "delay": 0}).encode()
        answer = self._json(self._call("POST", "/api/v1/power", deadline_s, body=body))
        macs = answer.get("mac") if isinstance(answer, dict) else None
        if not isinstance(macs, list) or seat not in macs:
            raise PathProtocolError(self._where,
                                    f"the power service did not confirm power {mode} for the seat")

    def _shelly_reading(self, answer: Any) -> PowerReading:
        if not isinstance(answer, dict) or not isinstance(answer.get("output"), bool):
            raise PathProtocolError(self._where, "Switch.GetStatus answer has no boolean 'output'")
        watts = answer.get("apower")
        if isinstance(watts, bool) or not isinstance(watts, int | float):
            watts = None
        return self._reading(answer["output"], None if watts is None else float(watts))

    def _tasmota(self, command: str, deadline_s: float) -> bool:
        index = self._index()
        query = f"cmnd={command.replace('Power', f'Power{index}', 1) if index else command}"
        if self._config.password is not None:
            user = quote(self._config.username or "admin", safe="")
            password = quote(self._config.password, safe="")
            query = f"user={user}&password={password}&{query}"
        answer = self._json(self._call("GET", f"/cm?{query}", deadline_s))
        if isinstance(answer, dict) and "WARNING" in answer:
            raise PathAuthFailed(self._where, "Tasmota refused the user/password")
        keys = ("POWER", f"POWER{index or 1}")
        value = next((answer[k] for k in keys if isinstance(answer, dict) and k in answer), None)
        if value not in ("ON", "OFF"):
            raise PathProtocolError(self._where, "Tasmota answer has no POWER ON/OFF")
        return bool(value == "ON")

    def _template_switch(self, on: bool, deadline_s: float) -> None:
        tpl = self._template()
        url = tpl.on_url if on else tpl.off_url
        body = tpl.on_body if on else tpl.off_body
        self._call(tpl.method, url, deadline_s, body=body.encode() if body is not None else None)

    def _template_status(self, deadline_s: float) -> PowerReading:
        tpl = self._template()
        text = self._call("GET", tpl.status_url, deadline_s).decode("utf-8", "replace")
        if tpl.status_json_path:
            try:
                value = _json_path(json.loads(text), tpl.status_json_path)
            except (ValueError, KeyError) as exc:
                raise PathProtocolError(self._where,
                                        "status answer lacks the configured JSON path") from exc
        else:
            match = re.search(tpl.status_regex or r"(?i)\b(on|off)\b", text)
            if match is None:
                raise PathProtocolError(self._where,
                                        "status answer does not match the configured regex")
            value = match.group(1) if match.groups() else match.group(0)
        return self._reading(_is_on(value, tpl.on_value))

    # -- plumbing -------------------------------------------------------------------------

    def _template(self) -> TemplateConfig:
        assert self._config.template is not None  # checked by PlugConfig
        return self._config.template

    def _index(self) -> int:
        return int(self._config.target)  # a number: checked by PlugConfig

    def _reading(self, on: bool, watts: float | None = None) -> PowerReading:
        return PowerReading(power=PowerState.ON if on else PowerState.OFF, path=PowerPath.HTTP,
                            watts=watts)

    def _auth(self) -> AuthBase | None:
        if self._config.preset == "shelly-gen2" and self._config.password is not None:
            return HTTPDigestAuth(self._config.username or "admin", self._config.password)
        if self._config.preset == "template" and self._config.password is not None:
            return requests.auth.HTTPBasicAuth(self._config.username or "", self._config.password)
        return None

    def _url(self, path: str) -> str:
        return self._base + path

    def _call(self, method: str, path: str, deadline_s: float, *,
              body: bytes | None = None) -> bytes:
        """One request, connect to last byte within ``deadline_s``; typed errors, no secrets."""
        end = time.monotonic() + deadline_s
        headers = {"Content-Type": "application/json"} if body is not None else {}
        failure: PowerPathError
        timeout = f"no complete answer within {deadline_s:g} s"
        try:
            with overall_deadline(deadline_s) as watch, self._session.request(
                    method, self._url(path), data=body, headers=headers, auth=self._auth(),
                    timeout=deadline_s, stream=True, allow_redirects=False) as resp:
                if resp.status_code in (401, 403):
                    raise PathAuthFailed(self._where, "the plug refused the credentials "
                                                      f"(HTTP {resp.status_code})")
                if not 200 <= resp.status_code < 300:
                    raise PathProtocolError(self._where, f"unexpected HTTP {resp.status_code}")
                raw = self._read_body(resp)
                if not watch.expired:  # an answer cut short by the watchdog may look complete
                    return raw
                failure = PathTimeout(self._where, timeout)
        except (requests.Timeout, TimeoutError, urllib3.exceptions.ReadTimeoutError):
            failure = PathTimeout(self._where, timeout)
        except (requests.ConnectionError, urllib3.exceptions.HTTPError):
            # the watchdog's shutdown of the socket looks like a dropped connection
            failure = (PathTimeout(self._where, timeout) if time.monotonic() >= end
                       else PathUnreachable(self._where, "cannot connect to the plug"))
        except requests.RequestException:
            failure = PathProtocolError(self._where, "the plug's answer is not valid HTTP")
        # Raised outside the handler: the library's exception (its text carries the URL,
        # Tasmota's password query included) is neither the cause nor the context.
        raise failure

    def _read_body(self, resp: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := resp.raw.read1(4096):  # what one socket read brings; size capped
            size += len(chunk)
            if size > _MAX_BODY:
                raise PathProtocolError(self._where, f"answer larger than {_MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise PathProtocolError(self._where, "the answer is not JSON") from exc
