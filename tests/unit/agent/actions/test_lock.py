"""ServerLocks: one holder per server, within a process and across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.actions.lock import OTHER_PROCESS, ServerLocks, lock_file_for

_TRY_IN_CHILD = """
import sys
from pathlib import Path
from agent.actions.lock import ServerLocks
print(ServerLocks(Path(sys.argv[1])).acquire(sys.argv[2], "bootdev"))
"""


def _child_try(lock_file: Path, uuid: str) -> str:
    done = subprocess.run([sys.executable, "-c", _TRY_IN_CHILD, str(lock_file), uuid],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_one_holder_per_server_in_a_process(tmp_path):
    locks = ServerLocks(lock_file_for(tmp_path / "agent.db"))
    assert locks.acquire("seat-01", "power_on") is None
    assert locks.acquire("seat-01", "bootdev") == "power_on"
    assert locks.acquire("seat-02", "bootdev") is None
    assert locks.held() == {"seat-01": "power_on", "seat-02": "bootdev"}
    locks.release("seat-01")
    assert locks.acquire("seat-01", "power_off") is None


def test_other_processes_see_the_lock_until_it_is_released(tmp_path):
    lock_file = lock_file_for(tmp_path / "agent.db")
    assert lock_file.name == "agent.db-actions.lock"
    locks = ServerLocks.shared(lock_file)
    assert ServerLocks.shared(lock_file) is locks
    assert locks.acquire("seat-01", "power_on") is None
    assert _child_try(lock_file, "seat-01") == OTHER_PROCESS
    assert _child_try(lock_file, "seat-02") == "None"  # other servers are free
    locks.release("seat-01")
    assert _child_try(lock_file, "seat-01") == "None"
    assert locks._fd is None  # nothing held: the file is closed again


def test_an_unusable_lock_file_falls_back_to_this_process(tmp_path):
    locks = ServerLocks(tmp_path / "missing-dir" / "agent.db-actions.lock")
    assert locks.acquire("seat-01", "power_on") is None
    assert locks.acquire("seat-01", "bootdev") == "power_on"
