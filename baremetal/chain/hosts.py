"""Which chain hosts to ask: ``dbc_chain_domain`` lines of the node's ``core.conf``, or a list.

The node reads every ``dbc_chain_domain=host[:port]`` line of ``conf/core.conf`` into a
list (``conf_manager.cpp:91,134-137``; shipped: ``httpinfo.dbcwallet.io:443`` and
``httpinfo2.dbcwallet.io:7788``), splits each on ``:`` and talks HTTPS to it, port 443 when
none is given (``HttpDBCChainClient.cpp:24-36``). ``chain_additional_field=terminatingRental``
switches every RPC to the ``terminatingRental_*`` pallet (``conf_manager.h:52-54``).

Here a host may also be a full ``http://`` or ``https://`` URL (the chain simulator
listens on plain HTTP on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from baremetal.errors import InvalidInput

__all__ = ["CoreChainConf", "host_url", "host_urls", "read_core_conf"]


@dataclass(frozen=True)
class CoreChainConf:
    """The chain settings of one ``core.conf``."""

    hosts: tuple[str, ...] = ()
    terminating_rental: bool = False


def host_url(entry: str) -> str:
    """Turn ``host``, ``host:port`` or an http(s) URL into the URL to POST to (ending ``/``)."""
    text = entry.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"chain host {text!r} is not an http(s) URL")
        return f"{parts.scheme}://{parts.netloc}/"
    host, _, rest = text.partition(":")
    port_text = rest.split(":", 1)[0]
    if not host or any(c in host for c in "/?#@ []"):
        raise InvalidInput(f"chain host {text!r} is not host[:port]")
    if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise InvalidInput(f"chain host {text!r} has a bad port")
    return f"https://{host}:{int(port_text) if port_text else 443}/"


def host_urls(entries: Iterable[str]) -> tuple[str, ...]:
    """``host_url`` of each non-empty entry, duplicates dropped, order kept."""
    urls: list[str] = []
    for entry in entries:
        if entry.strip() and (url := host_url(entry)) not in urls:
            urls.append(url)
    return tuple(urls)


def read_core_conf(path: Path) -> CoreChainConf:
    """Read the chain keys of a node's ``core.conf`` (boost ``parse_config_file`` syntax).

    Raises ``OSError`` if the file cannot be read.
    """
    hosts: list[str] = []
    additional = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        text = line.split("#", 1)[0].strip()
        key, sep, value = text.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "dbc_chain_domain" and value:
            hosts.append(value)
        elif key == "chain_additional_field":
            additional = value
    return CoreChainConf(tuple(hosts), additional == "terminatingRental")
