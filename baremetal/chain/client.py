"""JSON-RPC client of the DBC chain, asking what the DBC node asks (docs/protocol.md §14).

Transport as the node's ``httplib::SSLClient``: ``POST /`` with ``Content-Type:
application/json`` to each configured host in turn (HTTPS, port 443 unless given), the
body built as the node builds it (``baremetal.chain.parse``). Differences, on purpose:

- one OVERALL deadline per call (``timeout_s``, all hosts together; the node gives each
  host 5 s to connect and 10 s per read), enforced with ``baremetal.dbc.deadline`` so a
  host that drips bytes is cut off too;
- a host that answers badly is skipped like one that does not answer (the node stops at
  the first host that answers at all, except for ``chain_getBlock`` bodies that are not
  JSON); a ``result: null`` (machine unknown) is an answer and ends the call;
- the host that answered last is asked first next time (the node sorts its hosts by
  their latest block and latency every 15 minutes, ``HttpDBCChainClient.cpp:8-11,427-480``);
- answers are capped at ``MAX_ANSWER_BYTES``; proxies from the environment are ignored
  (like the node's client).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import requests
import urllib3.exceptions

from baremetal.chain.errors import ChainBadAnswer, ChainError, ChainUnreachable
from baremetal.chain.hosts import host_urls
from baremetal.chain.parse import (
    CommitteeOps,
    Methods,
    RentOrder,
    parse_committee_ops,
    parse_current_block,
    parse_machine_status,
    parse_rent_order,
    parse_renter,
    request_text,
)
from baremetal.dbc.deadline import DeadlineAdapter, overall_deadline
from baremetal.errors import InvalidInput

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_ANSWER_BYTES", "ChainClient"]

_LOGGER = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 2.0
MAX_ANSWER_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
T = TypeVar("T")


class _NoAnswer(Exception):
    """One host gave no complete HTTP answer."""


class ChainClient:
    """Typed, thread-safe chain client over a list of hosts (``host[:port]`` or URLs)."""

    def __init__(self, hosts: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 methods: Methods | None = None, session: requests.Session | None = None,
                 verify_tls: bool = True) -> None:
        if timeout_s <= 0:
            raise InvalidInput("timeout_s must be positive")
        self.hosts = host_urls(hosts)
        if not self.hosts:
            raise InvalidInput("no chain host configured")
        self.timeout_s = timeout_s
        self.methods = methods or Methods()
        self._verify = verify_tls
        if not verify_tls:
            # Said once here, not by urllib3 on every call (process-wide filter).
            _LOGGER.warning("chain hosts' TLS certificates are not checked: %s",
                            ", ".join(self.hosts))
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self._lock = threading.Lock()
        self._preferred = self.hosts[0]
        self._session = session or requests.Session()
        self._session.trust_env = False
        for url in self.hosts:
            self._session.mount(url, DeadlineAdapter())

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # --- the node's calls --------------------------------------------------------------

    def current_block(self) -> int:
        """``chain_getBlock`` -> the best block number (``request_cur_block``)."""
        method = self.methods.current_block
        return self._call(method, request_text(method),
                          lambda body: parse_current_block(method, body))

    def machine_status(self, node_id: str) -> str:
        """``onlineProfile_getMachineInfo`` -> the raw ``machineStatus`` string."""
        method = self.methods.machine_info
        return self._call(method, request_text(method, node_id=node_id),
                          lambda body: parse_machine_status(method, body))

    def current_renter(self, node_id: str) -> tuple[str, int]:
        """``rentMachine_getRentOrder [node_id]`` -> (renter, rentEnd), as the prune timer."""
        method = self.methods.rent_order
        return self._call(method, request_text(method, node_id=node_id),
                          lambda body: parse_renter(method, body))

    def rent_order(self, node_id: str, rent_order: str = "") -> RentOrder:
        """``rentMachine_getRentOrder`` by order id (unquoted) or, without one, by node_id."""
        method = self.methods.rent_order
        text = request_text(method, node_id=node_id, rent_order=rent_order)
        return self._call(method, text,
                          lambda body: parse_rent_order(method, body, by_order=bool(rent_order)))

    def committee_ops(self, wallet: str, node_id: str) -> CommitteeOps:
        """``onlineCommittee_getCommitteeOps [wallet, node_id]`` -> the verify windows."""
        method = self.methods.committee_ops
        return self._call(method, request_text(method, wallet=wallet, node_id=node_id),
                          lambda body: parse_committee_ops(method, body))

    def in_verify_time(self, node_id: str, wallet: str) -> bool:
        """Tell, as the node's ``in_verify_time``, whether the current block is in a window."""
        return self.committee_ops(wallet, node_id).in_verify_time(self.current_block())

    # --- transport ---------------------------------------------------------------------

    def _ordered_hosts(self) -> list[str]:
        with self._lock:
            first = self._preferred
        return [first, *(url for url in self.hosts if url != first)]

    def _call(self, method: str, body: bytes, parse: Callable[[bytes], T]) -> T:
        deadline_at = time.monotonic() + self.timeout_s
        bad: ChainBadAnswer | None = None
        silent: list[str] = []
        for url in self._ordered_hosts():
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                silent.append(f"{url}: deadline passed before trying")
                continue
            try:
                answer = self._post(url, body, remaining)
                value = parse(answer)
            except _NoAnswer as exc:
                silent.append(f"{url}: {exc}")
                continue
            except ChainBadAnswer as exc:
                _LOGGER.warning("chain host %s: %s", url, exc)
                bad = bad or ChainBadAnswer(method, f"{exc.reason} (from {url})")
                continue
            except ChainError:
                self._prefer(url)
                raise
            self._prefer(url)
            return value
        if bad is not None:
            raise bad
        raise ChainUnreachable(method, f"no answer within {self.timeout_s:g}s: "
                               + "; ".join(silent))

    def _prefer(self, url: str) -> None:
        with self._lock:
            self._preferred = url

    def _post(self, url: str, body: bytes, deadline_s: float) -> bytes:
        with overall_deadline(deadline_s) as watch:
            try:
                resp = self._session.post(
                    url, data=body, headers={"Content-Type": "application/json"},
                    stream=True, allow_redirects=False, verify=self._verify,
                    timeout=(min(CONNECT_TIMEOUT_S, deadline_s), deadline_s))
            except requests.exceptions.RequestException as exc:
                reason = "timed out" if watch.expired else type(exc).__name__
                raise _NoAnswer(reason) from None
            with resp:
                raw = _read_capped(resp)
            if watch.expired:
                raise _NoAnswer(f"answer not complete within {deadline_s:.2g}s")
            return raw


def _read_capped(resp: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := resp.raw.read1(_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ChainBadAnswer("http", f"answer larger than {MAX_ANSWER_BYTES} bytes")
            chunks.append(chunk)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _NoAnswer(f"answer cut short ({type(exc).__name__})") from None
    return b"".join(chunks)
