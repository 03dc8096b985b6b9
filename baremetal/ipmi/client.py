"""Read and drive BMCs over IPMI 2.0: chassis power and raw boot flags, with deadlines.

``BmcClient`` is the whole public surface; one per process, shared by threads.

- One cached session (``ipmi_session.Link``, pyghmi underneath) per BMC, thrown away on any
  session error, after ``idle_relogin_s`` without use (BMCs drop idle sessions after
  30-60 s; ipmi_sim after 30 s), and when the caller's deadline passes.
- A per-BMC lock: one request in flight per BMC (docs/ipmi.md §1.2: concurrent commands on
  one session were 8x slower, and some BMCs corrupt replies).
- A deadline on every call. pyghmi blocks ~5 s on a dead login and ~28 s on a dead session,
  so each call runs in a worker thread and the caller stops waiting at its deadline
  (``IpmiTimeout``). The stuck worker keeps the BMC's lock until pyghmi gives up, so later
  calls to that BMC time out at *their* deadlines, never later; other BMCs are unaffected.
  Workers are at most ``max_workers`` daemon threads (daemon: a stuck pyghmi call never
  delays process exit): when every worker is stuck, calls fail with ``IpmiTimeout`` at
  their deadline instead of creating threads. A worker stuck longer than
  ``stuck_after_s`` no longer blocks its BMC: the BMC gets a fresh lock and session slot.
- Every call reports ``(addr, op, seconds, error_kind or None)`` to ``on_call`` for metrics.

Boot devices use DBC's names (``none pxe disk cdrom bios``, docs/protocol.md §3.7).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from baremetal.errors import IpmiError, IpmiTimeout
from baremetal.ipmi.codec import (
    CMD_CHASSIS_CONTROL,
    CMD_GET_BOOT_OPTIONS,
    CMD_GET_CHASSIS_STATUS,
    CMD_SET_BOOT_OPTIONS,
    DBC_BOOT_DEVICES,
    GET_BOOT_FLAGS_REQUEST,
    NETFN_CHASSIS,
    POWER_ACTIONS,
    TIMER_DISABLE_REQUEST,
    BmcAddress,
    BootFlags,
    PowerState,
    boot_flags_request,
    chassis_control_request,
    completion_error,
    error_kind,
    parse_boot_flags,
    parse_chassis_status,
)
from baremetal.ipmi.session import Link

__all__ = [
    "DBC_BOOT_DEVICES",
    "POWER_ACTIONS",
    "BmcAddress",
    "BmcClient",
    "BootFlags",
    "CallHook",
    "PowerState",
    "error_kind",
]

_LOGGER = logging.getLogger(__name__)

#: ``on_call(addr, op, seconds, error_kind)``; error_kind is None on success.
CallHook = Callable[[BmcAddress, str, float, str | None], None]
LinkFactory = Callable[[BmcAddress, float], Link]
_T = TypeVar("_T")


class _DaemonPool:
    """At most ``size`` daemon threads running submitted functions; callers bound the load."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._tasks: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]
                                       | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        """Run ``fn`` on an idle worker, starting one if none is idle and room is left."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        with self._lock:
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._serve, name="ipmi-worker", daemon=True).start()
        self._tasks.put((future, fn))
        return future

    def shutdown(self) -> None:
        """Let every worker exit once it is idle."""
        with self._lock:
            count = self._threads
        for _ in range(count):
            self._tasks.put(None)

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            task = self._tasks.get()
            with self._lock:
                self._idle -= 1
                if task is None:
                    self._threads -= 1
                    return
            future, fn = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the waiting caller
                    future.set_exception(exc)


@dataclass(eq=False)
class _Slot:
    """Per-BMC state: the lock serialising calls and the cached session."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    link: Link | None = None
    last_used: float = 0.0
    busy_since: float | None = None
    retired: bool = False  # forgotten or replaced: log out when the in-flight call ends


class BmcClient:
    """Thread-safe IPMI client: power and boot flags, one serialised session per BMC."""

    def __init__(
        self,
        *,
        max_workers: int = 32,
        on_call: CallHook | None = None,
        idle_relogin_s: float = 20.0,
        stuck_after_s: float = 120.0,
        link_factory: LinkFactory = Link.open,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._permits = threading.BoundedSemaphore(max_workers)
        self._pool = _DaemonPool(max_workers)
        self._on_call = on_call
        self._idle_relogin_s = idle_relogin_s
        self._stuck_after_s = stuck_after_s
        self._open_link = link_factory
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._slots_lock = threading.Lock()
        self._closed = False

    # --- public operations -------------------------------------------------------------

    def read_power(self, addr: BmcAddress, deadline_s: float) -> PowerState:
        """Read chassis power with raw Get Chassis Status (no OEM probing)."""

        def op(link: Link) -> PowerState:
            data = _checked(link, "power read", CMD_GET_CHASSIS_STATUS, b"")
            return parse_chassis_status(addr.label, data)

        return self._call(addr, "read_power", deadline_s, op)

    def set_power(self, addr: BmcAddress, action: str, deadline_s: float) -> None:
        """Send Chassis Control: ``on``, ``off``, ``soft`` (ACPI shutdown) or ``reset``."""
        request = chassis_control_request(action)

        def op(link: Link) -> None:
            _checked(link, f"power {action}", CMD_CHASSIS_CONTROL, request)

        self._call(addr, f"set_power_{action}", deadline_s, op)

    def read_boot(self, addr: BmcAddress, deadline_s: float) -> BootFlags:
        """Read raw boot flags (Get System Boot Options, parameter 5)."""

        def op(link: Link) -> BootFlags:
            data = _checked(link, "boot flags read", CMD_GET_BOOT_OPTIONS, GET_BOOT_FLAGS_REQUEST)
            return parse_boot_flags(addr.label, data)

        return self._call(addr, "read_boot", deadline_s, op)

    def set_boot(
        self,
        addr: BmcAddress,
        device: str,
        *,
        persistent: bool = False,
        uefi: bool = False,
        deadline_s: float,
    ) -> bool:
        """Set the boot device (DBC name); return whether the 60 s valid-bit timer is off.

        The timer-disable parameter (3) goes first, as Ironic and pyghmi send it. A BMC that
        rejects it (OpenBMC does) still gets the device set; False tells the caller that a
        one-time override may expire 60 s after being set.
        """
        request = boot_flags_request(device, persistent=persistent, uefi=uefi)

        def op(link: Link) -> bool:
            code, _ = link.exchange(
                "boot timer disable", NETFN_CHASSIS, CMD_SET_BOOT_OPTIONS, TIMER_DISABLE_REQUEST
            )
            if code:
                _LOGGER.info(
                    "BMC %s refused to disable the 60 s boot-flag timer (code 0x%02X)",
                    addr.label, code,
                )
            _checked(link, f"boot device {device}", CMD_SET_BOOT_OPTIONS, request)
            return code == 0

        return self._call(addr, f"set_boot_{device}", deadline_s, op)

    def forget(self, addr: BmcAddress) -> None:
        """Log out of ``addr`` and drop its cached session (e.g. when it is de-registered)."""
        with self._slots_lock:
            slot = self._slots.pop((addr.host, addr.port), None)
        if slot is not None:
            self._retire(slot)

    def close(self) -> None:
        """Log out of every BMC and stop the workers; the client is unusable afterwards."""
        with self._slots_lock:
            self._closed = True
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._retire(slot)
        self._pool.shutdown()

    def cipher_suite(self, addr: BmcAddress) -> int | None:
        """Cipher suite (17 or 3) of the cached session to ``addr``, None if none is cached."""
        with self._slots_lock:
            slot = self._slots.get((addr.host, addr.port))
        link = slot.link if slot is not None else None
        return link.suite if link is not None else None

    # --- machinery ---------------------------------------------------------------------

    def _call(
        self, addr: BmcAddress, op: str, deadline_s: float, fn: Callable[[Link], _T]
    ) -> _T:
        started = time.monotonic()
        kind: str | None = None
        try:
            return self._run(addr, op, started + deadline_s, deadline_s, fn)
        except IpmiError as exc:
            kind = error_kind(exc)
            raise
        finally:
            self._report(addr, op, time.monotonic() - started, kind)

    def _run(
        self, addr: BmcAddress, op: str, end: float, deadline_s: float, fn: Callable[[Link], _T]
    ) -> _T:
        slot = self._slot(addr)
        if not slot.lock.acquire(timeout=_left(end)):
            self._replace_if_stuck(addr, slot)
            raise IpmiTimeout(
                addr.label,
                f"{op}: no answer within {deadline_s:.1f} s "
                "(an earlier call to this BMC is still waiting for it)",
            )
        # From here the worker owns the BMC lock and a permit; it releases both when done.
        if not self._permits.acquire(timeout=_left(end)):
            slot.lock.release()
            raise IpmiTimeout(
                addr.label, f"{op}: all {self._max_workers} IPMI workers are busy"
            )
        slot.busy_since = time.monotonic()
        future = self._pool.submit(lambda: self._work(addr, slot, end, fn))
        try:
            return future.result(timeout=_left(end))
        except concurrent.futures.TimeoutError:
            raise IpmiTimeout(
                addr.label, f"{op}: no answer within {deadline_s:.1f} s"
            ) from None

    def _work(self, addr: BmcAddress, slot: _Slot, end: float, fn: Callable[[Link], _T]) -> _T:
        try:
            link = self._link(addr, slot, end)
            try:
                return fn(link)
            finally:
                slot.last_used = time.monotonic()
                if link.broken or slot.retired or time.monotonic() > end:
                    # Session errors, and calls that outran their deadline, cost the session.
                    slot.link = None
                    link.logout()
        finally:
            self._release(slot)

    def _link(self, addr: BmcAddress, slot: _Slot, end: float) -> Link:
        link = slot.link
        if link is not None and (
            link.addr != addr
            or time.monotonic() - slot.last_used > self._idle_relogin_s
            or not link.usable()
        ):
            slot.link = None
            link.logout()
            link = None
        if link is None:
            link = self._open_link(addr, end)
            slot.link = link
        return link

    def _release(self, slot: _Slot) -> None:
        slot.busy_since = None
        slot.lock.release()
        self._permits.release()

    def _slot(self, addr: BmcAddress) -> _Slot:
        key = (addr.host, addr.port)
        with self._slots_lock:
            if self._closed:
                raise RuntimeError("BmcClient is closed")
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            return slot

    def _replace_if_stuck(self, addr: BmcAddress, slot: _Slot) -> None:
        since = slot.busy_since
        if since is None or time.monotonic() - since < self._stuck_after_s:
            return
        with self._slots_lock:
            if self._slots.get((addr.host, addr.port)) is slot:
                del self._slots[(addr.host, addr.port)]
        slot.retired = True
        _LOGGER.error(
            "IPMI call to %s stuck for %.0f s; abandoning it (its worker stays busy)",
            addr.label, time.monotonic() - since,
        )

    def _retire(self, slot: _Slot) -> None:
        slot.retired = True
        if slot.lock.acquire(blocking=False):
            try:
                link, slot.link = slot.link, None
                if link is not None:
                    link.logout()
            finally:
                slot.lock.release()
        # else: the in-flight call sees ``retired`` and logs out when it ends.

    def _report(self, addr: BmcAddress, op: str, seconds: float, kind: str | None) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(addr, op, seconds, kind)
        except Exception:  # a metrics hook must never break an IPMI call
            _LOGGER.exception("on_call hook failed for %s %s", addr.label, op)


def _left(end: float) -> float:
    return max(0.0, end - time.monotonic())


def _checked(link: Link, what: str, cmd: int, data: bytes) -> bytes:
    code, answer = link.exchange(what, NETFN_CHASSIS, cmd, data)
    if code:
        raise completion_error(link.addr.label, what, code)
    return answer
