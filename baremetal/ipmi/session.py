"""The one place pyghmi is imported: log in to a BMC, exchange raw requests, log out.

A ``Link`` is one logged-in IPMI 2.0 session. It is not thread-safe; ``baremetal.ipmi.client``
serialises calls per BMC and bounds them with deadlines. pyghmi pitfalls handled here
(docs/ipmi.md §3.3):

- credentials go to pyghmi as bytes: with ``str`` a second Command to the same BMC hangs;
- a session-less capability probe runs before every login. It refuses IPMI-1.5-only BMCs
  before any credential is sent (policy, §4.1; pyghmi's 1.5 path also fails with bytes
  credentials and then hangs every later login to that BMC), and it notices a closed UDP
  port at once instead of after pyghmi's 5 s of retries;
- pyghmi's wait for an answer loses wake-ups under load (see ``_install_wakeup_fix``);
- pyghmi's own keepalives are switched off for our sessions (see ``_stop_keepalive``):
  ``baremetal.ipmi.client`` drops idle sessions itself;
- the patches need pyghmi 1.6.19's internals: ``require_supported_pyghmi`` (run at import)
  raises ``PyghmiUnsupported`` for another version or when one of them is missing;
- every pyghmi failure (``IpmiException(None)``, "Session no longer connected", struct
  errors from a SHA-256/SHA-1 mix-up, …) becomes one of our IpmiError leaves.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import socket
import threading
import time
from typing import Any

import pyghmi.ipmi.private.session as pyghmi_session
from pyghmi.ipmi.command import Command

from baremetal.errors import (
    IpmiAuthError,
    IpmiBusy,
    IpmiError,
    IpmiProtocolError,
    IpmiUnreachable,
    IpmiUnsupported,
    PyghmiUnsupported,
)
from baremetal.ipmi.codec import (
    AuthCapabilities,
    BmcAddress,
    auth_cap_probe,
    parse_auth_cap_reply,
)

__all__ = ["Link", "probe_capabilities", "require_supported_pyghmi", "translate_failure"]

_LOGGER = logging.getLogger(__name__)

# Probe retransmission waits: like pyghmi's first timers (0.5-1 s, +1 s per retry).
_PROBE_WAITS = (0.5, 1.0, 1.5)
_NO_ANSWER = (
    "no answer from the BMC (check its address and port, that it has power and network, "
    "and that IPMI over LAN is enabled)"
)
_WRONG_LOGIN = "wrong IPMI user name or password"
_NO_SUITE = "no common cipher suite (the BMC offers neither suite 17 nor 3)"

# pyghmi error text (lower case substring) -> our class and message; first match wins.
_TEXT_RULES: tuple[tuple[str, type[IpmiError], str], ...] = (
    ("incorrect password", IpmiAuthError, _WRONG_LOGIN + " (password refused for user {user})"),
    ("unauthorized name", IpmiAuthError, _WRONG_LOGIN + " (the BMC does not know user {user})"),
    ("username length", IpmiAuthError, _WRONG_LOGIN + " (user name length refused)"),
    ("rakp4 integrity", IpmiAuthError, "the BMC key (Kg) does not match"),
    ("privelege", IpmiAuthError, "user {user} may not log in at Operator/Administrator level"),
    ("privilege", IpmiAuthError, "user {user} may not log in at Operator/Administrator level"),
    ("role", IpmiAuthError, "user {user} may not log in at Operator/Administrator level"),
    ("insufficient resources", IpmiBusy, "the BMC has no free session slot; try again later"),
    ("cipher suite", IpmiUnsupported, _NO_SUITE),
    ("algorithm", IpmiUnsupported, _NO_SUITE),
    ("md5 required", IpmiUnsupported, "the BMC offers only IPMI 1.5; refused by policy"),
    ("no longer connected", IpmiUnreachable, "the BMC stopped answering (IPMI session lost)"),
    ("unable to transmit", IpmiUnreachable, "cannot send to this address (does the name resolve?)"),
    ("timeout", IpmiUnreachable, _NO_ANSWER),
)


# What the patches below touch in pyghmi.ipmi.private.session (1.6.19).
_MODULE_INTERNALS = ("_io_wait", "_io_recvfrom", "_monotonic_time", "ioqueue", "iosockets",
                     "myself", "selectdeadline", "sessionqueue", "WAITING_SESSIONS",
                     "KEEPALIVE_SESSIONS", "Session")
_SESSION_INTERNALS = ("awaitresponse", "_timedout", "keepalive_sessions")
_SUPPORTED = ((1, 6, 19), (1, 7, 0))  # [lowest, first unsupported)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def require_supported_pyghmi() -> None:
    """Raise ``PyghmiUnsupported`` unless pyghmi is >=1.6.19,<1.7 with every patched internal."""
    try:
        version = importlib.metadata.version("pyghmi")
    except importlib.metadata.PackageNotFoundError:
        version = "(unknown version)"
    missing = tuple(f"session.{n}" for n in _MODULE_INTERNALS if not hasattr(pyghmi_session, n))
    session_cls = getattr(pyghmi_session, "Session", None)
    if session_cls is not None:
        missing += tuple(f"Session.{n}" for n in _SESSION_INTERNALS
                         if not hasattr(session_cls, n))
    waiting = getattr(pyghmi_session, "WAITING_SESSIONS", None)
    if waiting is not None and not hasattr(waiting, "_is_owned"):  # an RLock's
        missing += ("WAITING_SESSIONS._is_owned",)
    low, high = _SUPPORTED
    if missing or not low <= _version_tuple(version) < high:
        raise PyghmiUnsupported(version, missing)


require_supported_pyghmi()

_FIX_LOCK = threading.Lock()
_fix_installed = False
_WAITING = threading.local()  # .session: the pyghmi session this thread awaits an answer for


def _install_wakeup_fix() -> None:
    """Close pyghmi 1.6.19's lost-wakeup race in ``session._io_wait`` (once per process).

    A waiter registers with pyghmi's I/O thread only after checking for data. When the I/O
    thread queues an answer in between, nothing wakes the waiter until its retransmit timer
    (0.5-1 s) fires. Measured on loopback: 16 threads x 400 warm reads on 4 BMCs took
    12.5 s (154 calls over 0.3 s, some timing out at 5 s) against 0.2 s with this fix;
    8 parallel logins x 30: 76 of 240 over 0.3 s against none (max 32 ms); serially 1 read
    in 400 took 0.6-1 s (the unexplained outlier of docs/ipmi.md §2.2). The fix registers
    the wait as before, then returns at once if the data is already queued: for a command
    (``awaitresponse``), that session's packet queue; for the event loop (``wait_for_rsp``,
    used by logins), the global session queue. Waits for a busy session (``_cmdwait``)
    are left alone.
    """
    global _fix_installed
    with _FIX_LOCK:
        if _fix_installed:
            return
        _fix_installed = True
        needed = ("_io_wait", "ioqueue", "iosockets", "selectdeadline", "sessionqueue")
        session_cls = getattr(pyghmi_session, "Session", None)
        if session_cls is None or not all(hasattr(pyghmi_session, n) for n in needed):
            _LOGGER.warning("pyghmi internals changed; wake-up fix not installed")
            return
        original_wait = pyghmi_session._io_wait
        original_await = session_cls.awaitresponse

        def awaitresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer = getattr(_WAITING, "session", None)
            _WAITING.session = self
            try:
                return original_await(self, *args, **kwargs)
            finally:
                _WAITING.session = outer

        def io_wait(timeout: float, myaddr: Any = None, evq: Any = None) -> None:
            queue = _queue_to_check(myaddr, evq)
            if queue is None:
                original_wait(timeout, myaddr, evq)
                return
            event = threading.Event()
            deadline = timeout + pyghmi_session._monotonic_time()
            pyghmi_session.ioqueue.append((deadline, event, myaddr))
            if queue:
                return  # the I/O thread queued our data before we registered
            if deadline < pyghmi_session.selectdeadline:
                iosock = pyghmi_session.iosockets[0]
                iosock.sendto(b"\x01", (pyghmi_session.myself, iosock.getsockname()[1]))
            event.wait()

        session_cls.awaitresponse = awaitresponse
        pyghmi_session._io_wait = io_wait
        _fix_session_lock_order()
        _fix_blocking_receive()


def _fix_blocking_receive() -> None:
    """Stop pyghmi's I/O thread from blocking in ``recvfrom`` on a shared socket.

    pyghmi 1.6.19's I/O thread drains every socket with ``setblocking(0)`` then
    ``recvfrom``, while any sending thread calls ``setblocking(1)`` on the same socket
    first. When a send lands between the two, the I/O thread blocks in ``recvfrom`` until
    a packet reaches that one socket, and every answer arriving on the other sockets waits
    with it. Under steady traffic that is a short stall; at the start of a monitor pass it
    froze all 32 workers for good (py-spy: the I/O thread in ``_io_recvfrom``, every
    worker waiting for an answer), every few passes at the 60 s interval. ``MSG_DONTWAIT``
    makes the receive non-blocking whatever mode the socket is in.
    """
    if not callable(getattr(pyghmi_session, "_io_recvfrom", None)):
        _LOGGER.warning("pyghmi internals changed; non-blocking receive not installed")
        return

    def _io_recvfrom(sock: socket.socket, size: int) -> tuple[bytes, Any] | None:
        try:
            return sock.recvfrom(size, socket.MSG_DONTWAIT)
        except OSError:  # EAGAIN: drained; pyghmi ignores every other error here too
            return None

    pyghmi_session._io_recvfrom = _io_recvfrom


def _fix_session_lock_order() -> None:
    """Stop pyghmi's AB-BA deadlock between KEEPALIVE_SESSIONS and WAITING_SESSIONS.

    pyghmi 1.6.19 takes them in both orders: ``send_payload`` holds KEEPALIVE_SESSIONS and
    ``_xmit_packet`` then takes WAITING_SESSIONS, while ``awaitresponse`` and
    ``wait_for_rsp`` hold WAITING_SESSIONS and call ``_timedout``, which retransmits or
    re-logs through ``send_payload`` (KEEPALIVE_SESSIONS). A slow BMC (retransmits) plus
    any concurrent send froze every IPMI call of the process for good (reproduced: one
    ipmi_sim answering after 6 s among 16, 8 threads, within 5 cold passes; every later
    call timed out and ``BmcClient.close()`` hung in logout). ``_timedout`` now runs with
    WAITING_SESSIONS released (and re-taken before it returns), so every nesting is
    KEEPALIVE -> WAITING. The callers only pop from ``waiting_sessions`` before calling
    it and iterate over their own list. (Merging the two locks also ends the deadlock but
    made 100 parallel cold logins 3x slower.)
    """
    session_cls = getattr(pyghmi_session, "Session", None)
    lock = getattr(pyghmi_session, "WAITING_SESSIONS", None)
    if session_cls is None or not hasattr(lock, "_is_owned"):
        _LOGGER.warning("pyghmi internals changed; session lock order not fixed")
        return
    original = session_cls._timedout

    def _timedout(self: Any) -> Any:
        waiting = pyghmi_session.WAITING_SESSIONS
        depth = 0
        while waiting._is_owned():
            waiting.release()
            depth += 1
        try:
            return original(self)
        finally:
            for _ in range(depth):
                waiting.acquire()

    session_cls._timedout = _timedout


def _stop_keepalive(session: Any) -> None:
    """Take a fresh session off pyghmi's keepalive list; ``baremetal.ipmi.client`` drops idle ones.

    pyghmi sends a keepalive for every session idle for ~25-29 s, but only from inside some
    thread's wait for an answer. Between two monitor passes (60 s by default) nothing
    waits, the BMC drops the idle sessions (ipmi_sim after 30 s), and the next pass's
    first wait fires keepalives for all of them at once. Each one goes unanswered and
    keeps its session "in command" for ~2 minutes, and our logout of the idle session
    waited behind it: with 64 BMCs and 32 workers, every read of the pass timed out.
    """
    with pyghmi_session.KEEPALIVE_SESSIONS:
        pyghmi_session.Session.keepalive_sessions.pop(session, None)


def _queue_to_check(myaddr: Any, evq: Any) -> Any:
    """Pick the queue whose content means "do not wait"; None keeps pyghmi's own wait."""
    if evq is not None:
        return None
    if myaddr is None:
        return pyghmi_session.sessionqueue
    session = getattr(_WAITING, "session", None)
    return session.pktqueue if session is not None else None


def _scrub(text: str, addr: BmcAddress) -> str:
    # Belt and braces: no pyghmi text we know carries the password, but never let one through.
    return text.replace(addr.password, "***") if addr.password else text


def translate_failure(exc: BaseException, addr: BmcAddress, what: str) -> IpmiError:
    """Turn anything pyghmi or the socket layer raised during ``what`` into an IpmiError."""
    if isinstance(exc, IpmiError):
        return exc
    if isinstance(exc, OSError):  # socket.gaierror included
        return IpmiUnreachable(addr.label, f"{what}: network error ({exc.strerror or exc})")
    if type(exc).__name__ == "IpmiException":
        text = str(exc.args[0]) if exc.args and exc.args[0] else ""
        if not text:  # pyghmi raises IpmiException(None) when the BMC never answered
            return IpmiUnreachable(addr.label, f"{what}: {_NO_ANSWER}")
        lowered = text.lower()
        for needle, cls, message in _TEXT_RULES:
            if needle in lowered:
                return cls(addr.label, f"{what}: {message.format(user=repr(addr.username))}")
        return IpmiProtocolError(addr.label, f"{what}: {_scrub(text, addr)}")
    # struct.error, AssertionError, IndexError, TypeError...: pyghmi choked on an answer.
    return IpmiProtocolError(
        addr.label, f"{what}: unexpected answer from the BMC ({type(exc).__name__})"
    )


def probe_capabilities(addr: BmcAddress, end: float) -> AuthCapabilities:
    """Ask the BMC session-lessly which IPMI versions it speaks; give up at ``end``."""
    try:
        family, _kind, _proto, _name, sockaddr = socket.getaddrinfo(
            addr.host, addr.port, type=socket.SOCK_DGRAM
        )[0]
    except OSError as exc:
        raise IpmiUnreachable(addr.label, f"cannot resolve the BMC address ({exc})") from exc
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        # Connected UDP: an ICMP "port unreachable" surfaces as ConnectionRefusedError.
        sock.connect(sockaddr)
        for seq, wait in enumerate(_PROBE_WAITS, start=1):
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            caps = _probe_once(sock, addr, seq, min(wait, remaining))
            if caps is not None:
                return caps
    raise IpmiUnreachable(addr.label, _NO_ANSWER)


def _probe_once(
    sock: socket.socket, addr: BmcAddress, seq: int, wait: float
) -> AuthCapabilities | None:
    stop = time.monotonic() + wait
    try:
        sock.send(auth_cap_probe(seq))
        while (left := stop - time.monotonic()) > 0:
            sock.settimeout(left)
            caps = parse_auth_cap_reply(addr.label, sock.recv(1024), seq)
            if caps is not None:
                return caps
    except ConnectionRefusedError:
        raise IpmiUnreachable(
            addr.label, "nothing listens on this UDP port (ICMP port unreachable)"
        ) from None
    except TimeoutError:
        return None
    return None


class Link:
    """One logged-in IPMI 2.0 session to one BMC; callers serialise its use."""

    def __init__(self, addr: BmcAddress, command: Command, suite: int) -> None:
        self.addr = addr
        self.suite = suite
        self.broken = False
        self._command = command

    @classmethod
    def open(cls, addr: BmcAddress, end: float) -> Link:
        """Probe, then log in with bytes credentials; refuse IPMI 1.5 by policy."""
        _install_wakeup_fix()
        caps = probe_capabilities(addr, end)
        if not caps.ipmi20:
            raise IpmiUnsupported(
                addr.label,
                "the BMC offers only IPMI 1.5 (MD5/clear-text logins); refused by policy: "
                "enable IPMI 2.0 (RMCP+) on the BMC",
            )
        try:
            command = Command(
                bmc=addr.host,
                port=addr.port,
                userid=addr.username.encode("utf-8"),
                password=addr.password.encode("utf-8"),
            )
        except Exception as exc:  # pyghmi raises anything; we classify it
            raise translate_failure(exc, addr, "login") from exc
        session = command.ipmi_session
        _stop_keepalive(session)
        suite = 17 if getattr(session, "currhashlib", None) is hashlib.sha256 else 3
        link = cls(addr, command, suite)
        if getattr(session, "ipmiversion", 2.0) != 2.0:
            link.logout()
            raise IpmiUnsupported(addr.label, "the BMC fell back to IPMI 1.5; refused by policy")
        _LOGGER.debug("logged in to %s with cipher suite %d", addr.label, suite)
        return link

    def usable(self) -> bool:
        """Tell whether pyghmi still holds the session as logged in.

        pyghmi shares one session per BMC and credentials across the whole process, so
        another client's logout, or pyghmi's own keepalive failing, can end it under us.
        """
        session = self._command.ipmi_session
        return bool(getattr(session, "logged", 0)) and not getattr(session, "broken", True)

    def exchange(self, what: str, netfn: int, cmd: int, data: bytes) -> tuple[int, bytes]:
        """Send one request; return (completion code, data). Session failures raise."""
        try:
            rsp = self._command.raw_command(netfn=netfn, command=cmd, data=data)
        except Exception as exc:  # pyghmi raises anything; we classify it
            self.broken = True
            raise translate_failure(exc, self.addr, what) from exc
        finally:
            _stop_keepalive(self._command.ipmi_session)  # pyghmi re-adds it on a re-login
        code = rsp.get("code", 0xFFFF)
        if not isinstance(code, int) or not 0 <= code <= 0xFF:
            # 0xFFFF: pyghmi's retries ran out; the session is dead (docs/ipmi.md §3.3.7).
            self.broken = True
            raise IpmiUnreachable(self.addr.label, f"{what}: the BMC stopped answering")
        if rsp.get("netfn") != netfn + 1 or rsp.get("command") != cmd:
            self.broken = True
            raise IpmiProtocolError(self.addr.label, f"{what}: answer to a different request")
        return code, bytes(rsp.get("data", b""))

    def logout(self) -> None:
        """Close the session on the BMC (pyghmi sends Close Session without waiting)."""
        self.broken = True
        session = self._command.ipmi_session
        if not getattr(session, "logged", 0) or getattr(session, "logging", False):
            return  # dead or re-logging: pyghmi's logout would wait for the login to end
        if session._isincommand():
            # pyghmi's logout would first wait for that command (up to minutes on a
            # session the BMC dropped); forget the session locally instead.
            session.logged = 0
        try:
            session.logout()
        except Exception as exc:  # a failed logout only leaks a BMC slot
            _LOGGER.debug("logout from %s failed: %s", self.addr.label, type(exc).__name__)
