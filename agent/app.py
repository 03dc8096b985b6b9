"""The agent's composition root, and the read use-cases its presentations share.

``Agent.build(settings)`` opens the store (secrets sealed with ``[secrets] key_file``),
reads the manager key from the node's ``dat/node.dat``, and wires one of each: the BMC
client (its calls feed the metrics), the node client (+ the client-node client when
``[node] client_url`` is set), ``Registry`` (+ its worker), ``Monitor``, ``Actions``,
``Metrics``, the ``Authenticator`` and the boot-hook relay (when ``[hook]
token_public_key`` is set). The CLI uses the same object without starting anything.

``start_background()`` starts the monitor loop, the registry worker and housekeeping
(boots seen by the monitor for DeepLink staleness, sampled hook events flushed, expired
sessions and tokens pruned, old events, nonces and readings pruned: ``agent.retention``);
``stop()`` stops them and closes every connection; both are idempotent.

Read use-cases: ``list_servers`` (one SQL query: the API list and the dashboard grid),
``server_detail``, ``health``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from agent.accounts.auth import Authenticator
from agent.actions.service import Actions
from agent.config import Settings, read_node_dat
from agent.errors import AgentError, NotFound
from agent.hook.relay import HookRelay
from agent.hook.seats import Seats
from agent.metrics import Metrics
from agent.models import (
    ACTOR_SYSTEM,
    ApiToken,
    DeepLinkStatus,
    EventKind,
    EventPage,
    OutboxState,
    ReadingRecord,
    RegistrationState,
    Server,
    ServerIntent,
    ServerStatus,
    User,
    Verdict,
)
from agent.monitor.deeplink_status import BootWatcher, DeepLinkView, deeplink_views
from agent.monitor.loop import Monitor
from agent.monitor.rental_source import RentalView, rental_view
from agent.registry.service import Registry
from agent.registry.worker import RegistryWorker
from agent.retention import prune_old_records
from agent.secrets import Sealer
from agent.store import SCHEMA_VERSION, Store
from baremetal.dbc.client import Client
from baremetal.ipmi.client import BmcClient

__all__ = ["Agent", "ServerDetail"]

_LOGGER = logging.getLogger(__name__)

DRIFT_EVERY_S = 900.0
_EXTRA_BMC_WORKERS = 16  # staff actions beside a full monitor pool
_BOOT_POLL_MAX_S = 5.0
_PRUNE_EVERY_S = 600.0
_STOP_WAIT_S = 10.0


@dataclass(frozen=True)
class ServerDetail:
    """One server: its row, what staff asked of it, its reading history, its DeepLink."""

    status: ServerStatus
    intent: ServerIntent
    history: list[ReadingRecord]
    deeplink: DeepLinkView


class Agent:
    """Every long-lived collaborator of bm-agent, built once from Settings."""

    def __init__(self, *, settings: Settings, store: Store, metrics: Metrics, bmc: BmcClient,
                 node: Client, client_node: Client | None, registry: Registry,
                 registry_worker: RegistryWorker | None, monitor: Monitor, actions: Actions,
                 auth: Authenticator, hook_relay: HookRelay | None) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.bmc = bmc
        self.node = node
        self.client_node = client_node
        self.registry = registry
        self.registry_worker = registry_worker
        self.monitor = monitor
        self.actions = actions
        self.auth = auth
        self.hook_relay = hook_relay
        self.boot_watcher = BootWatcher(store)
        self.seats = Seats(store)
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._closed = False

    @classmethod
    def build(cls, settings: Settings) -> Agent:
        """Open the store and wire every collaborator (nothing starts yet)."""
        sealer = Sealer.from_key_file(settings.secrets.key_file)
        manager = read_node_dat(settings.node.node_dat)
        store = Store.open(settings.store.path, sealer=sealer,
                           busy_timeout_s=settings.store.busy_timeout_s)
        try:
            return cls._wire(settings, store, manager.private_key.reveal())
        except BaseException:
            store.close()
            raise

    @classmethod
    def _wire(cls, settings: Settings, store: Store, manager_key: str) -> Agent:
        metrics = Metrics()
        bmc = BmcClient(max_workers=settings.check.pool_size + _EXTRA_BMC_WORKERS,
                        on_call=metrics.observe_ipmi)
        node = Client(settings.node.url, timeout_s=settings.node.timeout_s)
        client_node = None
        if settings.node.client_url:
            client_node = Client(settings.node.client_url,
                                 timeout_s=settings.node.client_timeout_s)
        registry = Registry(store=store, node=node, manager_key=manager_key)
        return cls(
            settings=settings, store=store, metrics=metrics, bmc=bmc, node=node,
            client_node=client_node, registry=registry,
            registry_worker=RegistryWorker(registry, drift_every_s=DRIFT_EVERY_S),
            monitor=Monitor(store=store, bmc=bmc, settings=settings, client_node=client_node,
                            metrics=metrics),
            actions=Actions(store=store, bmc=bmc, settings=settings, metrics=metrics),
            auth=Authenticator.from_settings(store, settings.auth,
                                             observe=metrics.observe_password_attempt),
            hook_relay=HookRelay.from_settings(settings.hook, store=store, node=node))

    # -- lifecycle ----------------------------------------------------------------------

    def start_background(self) -> None:
        """Start the monitor loop, the registry worker and housekeeping (idempotent)."""
        if self._housekeeper is not None:
            return
        self._stop.clear()
        self.monitor.start()
        if self.registry_worker is not None:
            self.registry_worker.start()
        self._housekeeper = threading.Thread(target=self._housekeep, name="housekeeping",
                                             daemon=True)
        self._housekeeper.start()
        self._system_event("agent_start", {"servers": self.store.servers.count()})

    def stop(self) -> None:
        """Stop background work and close every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join(_STOP_WAIT_S)
            self._system_event("agent_stop", {})
        if self.registry_worker is not None:
            self.registry_worker.stop()
        self.monitor.stop(_STOP_WAIT_S)
        self.bmc.close()
        self.node.close()
        if self.client_node is not None:
            self.client_node.close()
        self.store.close()

    def _housekeep(self) -> None:
        every = min(_BOOT_POLL_MAX_S, self.settings.check.interval_s / 2)
        last_prune = float("-inf")  # retention runs at the first tick, then every 10 min
        while not self._stop.wait(every):
            try:
                self.boot_watcher.poll()
                if self.hook_relay is not None:
                    self.hook_relay.event_sampler.flush_due()
                if time.monotonic() - last_prune >= _PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    self.store.sessions.prune_expired()
                    self.store.tokens.prune_expired()
                    pruned = prune_old_records(self.store, self.settings)
                    _LOGGER.debug("housekeeping pruned %s", pruned)
            except AgentError as exc:
                _LOGGER.warning("housekeeping: %s", exc.message())
            except Exception:
                _LOGGER.exception("housekeeping failed; continuing")

    def _system_event(self, action: str, detail: dict[str, Any]) -> None:
        try:
            self.store.events.append(actor=ACTOR_SYSTEM, kind=EventKind.SYSTEM, action=action,
                                     result="ok", detail=detail)
        except AgentError as exc:
            _LOGGER.warning("cannot record %s: %s", action, exc.message())

    # -- read use-cases -----------------------------------------------------------------

    def list_servers(self, *, verdict: Verdict | None = None,
                     state: RegistrationState | None = None,
                     labels: dict[str, str] | None = None) -> list[ServerStatus]:
        """Return servers with verdict and newest reading, filtered (one SQL query)."""
        return self.store.status.find(verdict=verdict, state=state, labels=labels)

    def server_detail(self, uuid: str, *, history: int = 100) -> ServerDetail:
        """Return one server's row, intent, newest ``history`` readings and DeepLink status."""
        server = self.store.servers.get_by_uuid(uuid=uuid)
        readings = self.store.checks.history(server_id=server.id, limit=history) \
            if history > 0 else []
        return ServerDetail(status=self.store.status.get(server_id=server.id),
                            intent=self.store.intents.get(server_id=server.id),
                            history=readings,
                            deeplink=deeplink_views(self.store, uuid=server.uuid)[0])

    def health(self) -> dict[str, Any]:
        """Return liveness facts: store reachable, last pass, outbox backlog (no secrets)."""
        last = self.monitor.last_pass
        return {
            "status": "ok",
            "schema": SCHEMA_VERSION,
            "servers": self.store.servers.count(),
            "last_pass": None if last is None else {
                "started_at": last.started_at, "duration_s": last.duration_s,
                "servers": len(last.results), "overran": last.overran},
            "outbox": {str(k): v for k, v in self.store.outbox.counts().items()},
            "hook_relay": self.hook_relay is not None,
        }

    # Reads for presentation: agent.api, agent.web and agent.cli never import agent.store.

    def server_statuses(self) -> list[ServerStatus]:
        """Return every server's status row (registration, newest reading, verdict)."""
        return self.store.status.find()

    def rental_view(self, node_id: str | None) -> RentalView:
        """Return what staff are shown of a server's rental (the chain's last answer)."""
        return rental_view(self.monitor.rentals, node_id)

    def rented_now(self, uuids: Collection[str]) -> list[dict[str, str | None]]:
        """Return ``{"uuid", "until"}`` of each of these servers DBC considers rented.

        Asks the chain (TTL-cached, one deadline); a chain that cannot answer gives its
        last answer, else the rentals file; unknown is not rented.
        """
        source = self.monitor.rentals
        if source is None:
            return []
        found = []
        for uuid in uuids:
            try:
                node_id = self.store.servers.get_by_uuid(uuid=uuid).node_id
            except NotFound:  # the action answers for it (one result per server)
                continue
            if source.rented(node_id) is True:
                found.append({"uuid": uuid, "until": self.rental_view(node_id).until_iso()})
        return found

    def deeplink_statuses(self) -> tuple[set[str], list[DeepLinkStatus]]:
        """Return the device ids more than one server reports, and every DeepLink status."""
        duplicated = set(self.store.deeplink.duplicate_device_ids())
        return duplicated, self.store.deeplink.all()

    def events_page(self, *, before_id: int | None = None, limit: int = 50,
                    server_uuid: str | None = None, kinds: Collection[EventKind] | None = None,
                    action: str | None = None, since_ts: float | None = None,
                    until_ts: float | None = None, seat: str | None = None,
                    actor: str | None = None) -> EventPage:
        """Return up to ``limit`` events older than ``before_id``, newest first, filtered."""
        return self.store.events.page(before_id=before_id, limit=limit, server_uuid=server_uuid,
                                      kinds=kinds, action=action, since_ts=since_ts,
                                      until_ts=until_ts, seat=seat, actor=actor)

    def server(self, uuid: str) -> Server:
        """Return one inventory row (``ServerNotFound`` if there is none)."""
        return self.store.servers.get_by_uuid(uuid=uuid)

    def server_status(self, server_id: int) -> ServerStatus:
        """Return one server's status row (registration, newest reading, verdict)."""
        return self.store.status.get(server_id=server_id)

    def deeplink_views(self, *, uuid: str | None = None) -> list[DeepLinkView]:
        """Return the DeepLink status of every server, or of the one with ``uuid``."""
        return deeplink_views(self.store, uuid=uuid)

    def outbox_summary(self) -> tuple[dict[OutboxState, int], float | None]:
        """Return the registry outbox's item count per state and when the next item is due."""
        return self.store.outbox.counts(), self.store.outbox.next_due_at()

    def user(self, name: str) -> User:
        """Return one staff user (``NotFound`` if there is none)."""
        return self.store.users.get(name=name)

    def tokens_of(self, user_id: int) -> list[ApiToken]:
        """Return a user's API tokens (their metadata: the tokens themselves are not kept)."""
        return self.store.tokens.for_user(user_id=user_id)
