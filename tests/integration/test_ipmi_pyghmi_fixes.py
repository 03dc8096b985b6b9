"""The pyghmi patches in baremetal.ipmi.session, each checked on pyghmi's own functions."""

from __future__ import annotations

import socket
import threading
import time

import pyghmi.ipmi.private.session as pyghmi_session

from baremetal.ipmi import session as ipmi_session


class _SenderWinsTheRace(socket.socket):
    """A socket on which a sender's ``setblocking(1)`` always lands after the reader's 0."""

    def setblocking(self, flag: bool) -> None:
        super().setblocking(True)


def test_io_thread_receive_never_blocks_on_a_socket_another_thread_set_blocking():
    """pyghmi's senders call setblocking(1) on the sockets its I/O thread drains.

    Unpatched, the I/O thread's receive then waits for a packet on that one socket while
    answers pile up on the others (a monitor pass froze for good, every few passes).
    """
    ipmi_session._install_wakeup_fix()
    with _SenderWinsTheRace(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        outcome: list[object] = []
        reader = threading.Thread(
            target=lambda: outcome.append(pyghmi_session._io_recvfrom(sock, 3000)), daemon=True)
        started = time.monotonic()
        reader.start()
        reader.join(2.0)
        assert not reader.is_alive(), "pyghmi's receive blocked on an empty socket"
        assert outcome == [None]
        assert time.monotonic() - started < 1.0

        sock.sendto(b"\x06\x00\xff\x07", sock.getsockname())
        time.sleep(0.05)
        data, sender = pyghmi_session._io_recvfrom(sock, 3000)
        assert data == b"\x06\x00\xff\x07"
        assert sender == sock.getsockname()
