"""A real sushy-emulator (sushy-tools, fake driver) on 127.0.0.1, stopped by its PID.

The fake driver applies a power change 1-11 s after the request ("hardware actions are
not immediate"); ``python -m tests.support.redfish_emulator`` runs the emulator with that
delay set to zero so the tests read the new state at once. Everything else is sushy-tools'
own code over real HTTP.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from tests.support.ports import free_port, wait_tcp
from tests.support.procs import Proc, python_module

__all__ = ["RedfishEmulator", "start_redfish_emulator"]

USER = "admin"
PASSWORD = "s3cret-redfish"
SYSTEM_UUID = "27946b59-9e44-4fa7-8e91-f3527a1ef094"


@dataclass
class RedfishEmulator:
    proc: Proc
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def system_path(self) -> str:
        return f"/redfish/v1/Systems/{SYSTEM_UUID}"

    def stop(self) -> None:
        self.proc.stop()


def start_redfish_emulator(workdir: Path, *,
                           tls: tuple[Path, Path] | None = None) -> RedfishEmulator:
    """Start sushy-emulator with Basic auth (bcrypt htpasswd) and one fake system.

    ``tls``: (certificate, key) files to serve HTTPS with.
    """
    port = free_port()
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (workdir / "htpasswd").write_text(f"{USER}:{digest}\n")
    config = workdir / "emulator.conf"
    config.write_text(
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(workdir / 'htpasswd')!r}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(workdir / 'state')!r}\n"
        "SUSHY_EMULATOR_FAKE_SYSTEMS = [{'uuid': %r, 'name': 'seat-1', "
        "'power_state': 'Off', 'external_notifier': False, 'nics': []}]\n" % SYSTEM_UUID)
    tls_args = ["--ssl-certificate", str(tls[0]), "--ssl-key", str(tls[1])] if tls else []
    proc = Proc(python_module("tests.support.redfish_emulator", "--config", str(config),
                              "--interface", "127.0.0.1", "--port", str(port), *tls_args),
                workdir / "emulator.log")
    try:
        wait_tcp("127.0.0.1", port, timeout=20)
    except TimeoutError:
        proc.stop()
        raise
    return RedfishEmulator(proc, port, tls=tls is not None)


def _main() -> None:
    import random

    from sushy_tools.emulator import main as emulator_main
    from sushy_tools.emulator.resources.systems import fakedriver

    class _NoDelay(random.Random):
        def randint(self, a: int, b: int) -> int:
            return 0

    fakedriver.random = _NoDelay()  # type: ignore[attr-defined]
    sys.exit(emulator_main.main())


if __name__ == "__main__":
    _main()
