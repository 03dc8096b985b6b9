"""Fixtures: a real ``bm-agent serve`` subprocess with a temp config, on a free loopback port.

- ``start_agent(spawn, tmp_path, node_url=..., node_dat=..., ...)`` prepares what ``bm-agent
  init`` would (config, secrets key 0600, store) plus staff users and their bearer tokens,
  starts ``python -m agent serve --config FILE`` and waits for ``/healthz``. Returns an
  ``AgentProc`` (URL, tokens, passwords, the hook token seed, the log, HTTP helpers).
- ``agent_proc`` fixture: a factory ``agent_proc(emulator=None, **options)``; without an
  emulator the agent gets a node.dat of its own and a node URL where nothing listens
  (enough for auth, users, import, events; registration then waits in the outbox).
  ``module_agent_proc`` is the same factory shared by a test module (one start, ~2 s,
  for tests that do not disturb each other); ``module_spawn`` is ``spawn`` for a module.
- ``SourceAddressAdapter``: a requests adapter that binds the client side to 127.0.0.N,
  as a GPU PC's hook does (the relay checks the TCP source address).
- ``start_agent(..., tls=True)``: serve HTTPS with a self-signed pair made like ``bm-agent
  init --tls`` does; ``AgentProc.url`` is then ``https://`` and ``AgentProc.session()``
  checks the certificate's SHA-256 against ``AgentProc.cert_sha256`` (``PinnedAdapter``:
  no CA, no host name, like bm-hook's pin).

Check intervals are short (``interval_s`` default 1 s, IPMI deadline 0.5 s) so verdicts
appear within seconds. Every process is stopped by PID at teardown (``spawn``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from agent.accounts.auth import Authenticator, PasswordHasher
from agent.config import Settings, load_settings
from agent.hook.signing import generate_hook_keypair
from agent.models import Role
from agent.secrets import Sealer, Secret, create_key_file
from agent.store import Store
from baremetal.signing import new_node_keypair
from tests.support.agentconfig import write_agent_config
from tests.support.ports import free_port
from tests.support.procs import Proc, python_module
from tests.support.wait import wait_for

__all__ = ["USERS", "AgentProc", "PinnedAdapter", "SourceAddressAdapter", "agent_proc",
           "module_agent_proc", "module_spawn", "pinned_session", "start_agent"]

READY_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 60.0
# name -> (role, password): test data, also what the secrets test greps for.
USERS = {
    "admin": (Role.ADMIN, "admin-pass-7f3a"),
    "oper": (Role.OPERATOR, "oper-pass-91c2"),
    "view": (Role.VIEWER, "view-pass-5d8e"),
}


class SourceAddressAdapter(HTTPAdapter):
    """Send requests from a chosen local address (a GPU PC's 127.0.0.N)."""

    def __init__(self, source_ip: str, **kwargs: Any) -> None:
        self._source = (source_ip, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


class PinnedAdapter(HTTPAdapter):
    """HTTPS that accepts only the certificate with SHA-256 ``fingerprint`` (optionally bound
    to a source address): urllib3's ``assert_fingerprint``, CA and host name unchecked."""

    def __init__(self, fingerprint: str, source_ip: str | None = None, **kwargs: Any) -> None:
        self._fingerprint = fingerprint
        self._source = (source_ip, 0) if source_ip else None
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        if self._source is not None:
            kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def pinned_session(fingerprint: str, source_ip: str | None = None) -> requests.Session:
    """A requests session for an ``https://`` agent whose certificate has ``fingerprint``."""
    sess = requests.Session()
    sess.trust_env = False
    sess.verify = False  # the pin replaces the CA check (a self-signed cert on an IP)
    sess.mount("https://", PinnedAdapter(fingerprint, source_ip))
    return sess


@dataclass
class AgentProc:
    """A running bm-agent: where it listens, who may call it, what it logged."""

    url: str
    config_path: Path
    settings: Settings
    proc: Proc
    tokens: dict[str, str] = field(repr=False)
    passwords: dict[str, str] = field(repr=False)
    hook_seed: str | None = field(repr=False, default=None)
    hook_public: str | None = None
    cert_sha256: str | None = None

    def log(self) -> str:
        """Return everything the agent wrote so far (stdout and stderr)."""
        return self.proc.log()

    def session(self, user: str | None = "admin", source_ip: str | None = None
                ) -> requests.Session:
        """A requests session with ``user``'s bearer token (None: anonymous)."""
        if self.cert_sha256:
            sess = pinned_session(self.cert_sha256, source_ip)
        else:
            sess = requests.Session()
            sess.trust_env = False
        if user is not None:
            sess.headers["Authorization"] = f"Bearer {self.tokens[user]}"
        if source_ip and not self.cert_sha256:
            sess.mount("http://", SourceAddressAdapter(source_ip))
        return sess

    def get(self, path: str, user: str | None = "admin", **kwargs: Any) -> requests.Response:
        """GET ``path`` as ``user``."""
        with self.session(user) as sess:
            return sess.get(self.url + path, timeout=HTTP_TIMEOUT_S, **kwargs)

    def post(self, path: str, user: str | None = "admin", **kwargs: Any) -> requests.Response:
        """POST to ``path`` as ``user``."""
        with self.session(user) as sess:
            return sess.post(self.url + path, timeout=HTTP_TIMEOUT_S, **kwargs)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0,
                 what: str = "condition") -> Any:
        """Poll ``predicate`` until it returns something truthy; fail with the log."""
        return wait_for(predicate, timeout, every=0.1, what=f"agent: {what}",
                        alive=self.proc.alive, detail=lambda: self.log()[-3000:])

    def server(self, uuid: str) -> dict[str, Any]:
        """Return the API's detail of one server."""
        answer = self.get(f"/api/v1/servers/{uuid}", params={"history": 20})
        assert answer.status_code == 200, answer.text
        return answer.json()


# Set the soft open-files limit, then exec the command (same PID: stopped as usual).
_SOFT_NOFILE_EXEC = (
    "import os, resource, sys; hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), hard)); "
    "os.execv(sys.argv[2], sys.argv[2:])")


def _write_config(tmp: Path, *, node_url: str, node_dat: Path, port: int,
                  hook_public_file: Path | None, overrides: dict[str, Any]) -> Path:
    values: dict[str, Any] = {
        "node.url": node_url, "node.node_dat": str(node_dat), "node.timeout_s": 5.0,
        "store.path": str(tmp / "agent.db"), "secrets.key_file": str(tmp / "secrets.key"),
        "api.listen": f"127.0.0.1:{port}", "check.interval_s": 1.0, "check.jitter_s": 0.1,
        "check.deadline_s": 0.5, "check.pool_size": 8, "check.transition_grace_s": 5.0,
        "actions.verify_deadline_s": 3.0, "actions.verify_interval_s": 0.2,
        "log.level": "INFO",
    }
    if hook_public_file is not None:
        values["hook.token_public_key"] = str(hook_public_file)
    values.update(overrides)
    return write_agent_config(tmp, values)


def _prepare_store(settings: Settings, users: dict[str, tuple[Role, str]]) -> dict[str, str]:
    """Create the key file, the store and the users; return a bearer token per user."""
    create_key_file(settings.secrets.key_file)
    tokens: dict[str, str] = {}
    sealer = Sealer.from_key_file(settings.secrets.key_file)
    with Store.open(settings.store.path, sealer=sealer) as store:
        auth = Authenticator(store, hasher=PasswordHasher())
        for name, (role, password) in users.items():
            user = auth.create_user(name=name, password=Secret(password), role=role,
                                    actor="@system")
            tokens[name] = auth.issue_token(user=user, label="tests").token.reveal()
    return tokens


def start_agent(spawn: Callable[..., Proc], tmp_path: Path, *, node_url: str | None = None,
                node_dat: Path | None = None, hook: bool = True,
                users: dict[str, tuple[Role, str]] | None = None,
                config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                before_start: Callable[[Settings], Any] | None = None,
                tls: bool = False, open_files_soft: int | None = None,
                command: Sequence[str] | None = None) -> AgentProc:
    """Prepare config, key, store and users in ``tmp_path/agent``; run ``bm-agent serve``.

    ``before_start(settings)`` may seed the store (closed again) before the agent starts.
    ``tls``: serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
    ``open_files_soft`` starts it with that soft RLIMIT_NOFILE (systemd's default is 1024);
    ``command`` replaces ``python -m agent serve`` (it gets ``--config FILE`` appended).
    """
    tmp = tmp_path / "agent"
    tmp.mkdir(parents=True, exist_ok=True)
    if node_dat is None:
        pair = new_node_keypair()
        node_dat = tmp / "node.dat"
        node_dat.write_text(f"node_id={pair.node_id}\nnode_private_key={pair.private_key}\n")
    seed = public = public_file = None
    if hook:
        secret_seed, public = generate_hook_keypair()
        seed = secret_seed.reveal()
        public_file = tmp / "hook_token.pub"
        public_file.write_text(public + "\n")
    port = free_port()
    overrides = dict(config or {})
    fingerprint = _make_tls_pair(tmp, overrides) if tls else None
    path = _write_config(tmp, node_url=node_url or f"http://127.0.0.1:{free_port()}",
                         node_dat=node_dat, port=port, hook_public_file=public_file,
                         overrides=overrides)
    settings = load_settings(path, environ={})
    users = USERS if users is None else users
    tokens = _prepare_store(settings, users)
    if before_start is not None:
        before_start(settings)
    args = [*(command or python_module("agent", "serve")), "--config", str(path)]
    if open_files_soft is not None:
        args = [sys.executable, "-c", _SOFT_NOFILE_EXEC, str(open_files_soft), *args]
    proc = spawn(args, name="agent", env={"BM_AGENT_CONFIG": "", **(env or {})})
    scheme = "https" if tls else "http"
    handle = AgentProc(url=f"{scheme}://127.0.0.1:{port}", config_path=path,
                       settings=settings, proc=proc, tokens=tokens,
                       passwords={name: pw for name, (_role, pw) in users.items()},
                       hook_seed=seed, hook_public=public, cert_sha256=fingerprint)
    _wait_ready(handle)
    return handle


def _make_tls_pair(tmp: Path, overrides: dict[str, Any]) -> str:
    """Make the pair ``bm-agent init --tls`` would; name it in the config; return its pin."""
    from agent.tls import make_self_signed

    cert, key = tmp / "agent-tls.crt", tmp / "agent-tls.key"
    overrides.setdefault("api.tls_cert", str(cert))
    overrides.setdefault("api.tls_key", str(key))
    return make_self_signed(cert, key, ["127.0.0.1"]).plain


def _wait_ready(handle: AgentProc) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not handle.proc.alive():
            raise RuntimeError(f"bm-agent exited at start:\n{handle.log()[-4000:]}")
        try:
            with handle.session(None) as sess:
                if sess.get(handle.url + "/healthz", timeout=1.0).status_code == 200:
                    return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    handle.proc.stop()
    raise RuntimeError(f"bm-agent not ready after {READY_TIMEOUT_S} s:\n{handle.log()[-4000:]}")


def _factory(spawn: Callable[..., Proc], make_dir: Callable[[], Path]
             ) -> Callable[..., AgentProc]:
    def _start(emulator: Any = None, **options: Any) -> AgentProc:
        if emulator is not None:
            options.setdefault("node_url", emulator.url)
            options.setdefault("node_dat", emulator.data_dir / "dat" / "node.dat")
        return start_agent(spawn, make_dir(), **options)
    return _start


@pytest.fixture
def agent_proc(spawn: Callable[..., Proc], tmp_path: Path) -> Callable[..., AgentProc]:
    """Factory: ``agent_proc(emulator=None, **start_agent options)``; stopped at teardown."""
    made: list[Path] = []

    def make_dir() -> Path:
        made.append(tmp_path / f"a{len(made)}")
        return made[-1]
    return _factory(spawn, make_dir)


@pytest.fixture(scope="module")
def module_spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Proc]]:
    """Like ``spawn``, for a whole test module: its processes stop after the module."""
    started: list[Proc] = []
    logs = tmp_path_factory.mktemp("procs")

    def _spawn(args: list[str], name: str = "proc", env: dict[str, str] | None = None) -> Proc:
        proc = Proc(args, logs / f"{name}-{len(started)}.log", env=env)
        started.append(proc)
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


@pytest.fixture(scope="module")
def module_agent_proc(module_spawn: Callable[..., Proc],
                      tmp_path_factory: pytest.TempPathFactory) -> Callable[..., AgentProc]:
    """Like ``agent_proc``, for a whole test module (stopped after it, by ``module_spawn``)."""
    return _factory(module_spawn, lambda: tmp_path_factory.mktemp("agent"))
