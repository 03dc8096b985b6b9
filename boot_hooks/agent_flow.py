"""Agent mode: no server key on the PC; bm-agent signs and calls the node for us.

Steps: seat key (``[agent] seat_key_file``; made on first boot) -> who am I (``whoami``,
by our source IP, with our MACs as hints) -> node version (from ``[node] url`` if set, else
the agent's hint, else assume >= 0.4.1.7) -> DeepLink SDK (optional) -> fresh code ->
legacy nodes: set it in DeepLink first -> ``POST /api/v1/hook/deeplink`` (retried while the
agent answers 502/503) -> the agent's ``confirmed``. The wire contract is pinned in
tests/contract/hook_relay.json.

A seat key the agent does not know yet (403 ``seat_not_enrolled``) is enrolled with the
café token; until staff approve it the run ends with exit 7 (``AwaitingApproval``), and the
next run (a reboot, or the service's restart) goes on once it is approved.
"""

from __future__ import annotations

import logging
import time

from baremetal.dbc.client import Client
from boot_hooks.codes import make_code
from boot_hooks.config import HookConfig
from boot_hooks.direct_flow import Outcome, Remember, local_deeplink, set_locally
from boot_hooks.errors import AuthRefused, AwaitingApproval
from boot_hooks.identity import local_identity
from boot_hooks.keys import load_or_create_seat_key, read_seed_file
from boot_hooks.logs import mask_device_id
from boot_hooks.node import is_relay_version, probe_version
from boot_hooks.relay import (
    AgentBusy,
    AgentClient,
    AgentNodeDown,
    AgentNotConnectedYet,
    AgentUnreachable,
    Confirmation,
    SeatNotEnrolled,
    SeatSigner,
    TokenSigner,
    WhoAmI,
)
from boot_hooks.retry import Deadline, retry_until
from boot_hooks.state import HookState

__all__ = ["run_agent"]

_LOGGER = logging.getLogger(__name__)
_RETRYABLE = (AgentUnreachable, AgentNodeDown, AgentBusy, AgentNotConnectedYet)


def run_agent(config: HookConfig, remember_secret: Remember, state: HookState) -> Outcome:
    """Rotate and publish through bm-agent (agent mode)."""
    started = time.monotonic()
    seed = read_seed_file(config.token_key_file, "[agent] token_key_file", "hook_token")
    remember_secret(seed.hex)
    seat_path = state.seat_key_path(config)
    seat_seed, created = load_or_create_seat_key(seat_path)
    remember_secret(seat_seed.hex)
    seat = SeatSigner(seat_seed.hex)
    _LOGGER.info("step seat: %s key %s in %s", "new" if created else "this PC's",
                 seat.fingerprint, seat_path)
    agent = AgentClient(config.agent_url, TokenSigner(seed.hex), source_ip=config.source_ip,
                        seat=seat, cert_sha256=config.agent_cert_sha256)
    who = _whoami_enrolled(agent, config, seat)
    version = _node_version(config, who)
    relay = is_relay_version(version) if version else True
    _LOGGER.info("step node: version %s (%s)", version or "unknown, assuming >= 0.4.1.7",
                 "LAN relay" if relay else "legacy store")

    sdk, local = local_deeplink(config, remember_secret)
    try:
        avoid = [local.password] if local else []
        code = make_code(config.code_length, avoid=avoid, store=state.codes)
        remember_secret(code)
        _LOGGER.info("step code: new %d-character code made", len(code))
        device_id = local.device_id if local else ""
        if not relay:
            device_id = set_locally(sdk, code, config) or device_id
    finally:
        if sdk is not None:
            sdk.close()
    confirmation = _publish(agent, config, who.node_id, code, device_id)
    state.remember_code(code)
    _LOGGER.info("step confirm: agent confirmed device %s at %s",
                 mask_device_id(device_id), confirmation.rotated_at)
    elapsed = time.monotonic() - started
    return Outcome("agent", who.node_id, version, device_id, elapsed)


def _whoami_enrolled(agent: AgentClient, config: HookConfig, seat: SeatSigner) -> WhoAmI:
    """Ask whoami with the seat key; enroll it first if the agent does not know it."""
    try:
        return _whoami(agent, config)
    except SeatNotEnrolled:
        _LOGGER.info("step seat: the agent does not know key %s; enrolling it",
                     seat.fingerprint)
    deadline = Deadline(config.deadlines.node_s)
    state = retry_until(deadline, lambda: agent.enroll(deadline.cap(config.deadlines.call_s)),
                        _RETRYABLE, on_retry=_log_retry)
    if state != "approved":
        raise AwaitingApproval(
            f"this PC waits for staff approval in the dashboard: seat key {seat.fingerprint}"
            " is enrolled and pending (Seats page, or `bm-agent seats approve <server>`);"
            " the next run publishes once it is approved")
    return _whoami(agent, config)


def _whoami(agent: AgentClient, config: HookConfig) -> WhoAmI:
    me = local_identity(agent.host, agent.port, config.source_ip)
    _LOGGER.info("step identity: asking the agent %s:%d as %s (%s, MAC %s)", agent.host,
                 agent.port, me.ip or "?", me.interface or "?", ",".join(me.macs) or "?")
    deadline = Deadline(config.deadlines.node_s)
    who = retry_until(
        deadline,
        lambda: agent.whoami(me, deadline.cap(config.deadlines.call_s)),
        _RETRYABLE,
        on_retry=_log_retry,
    )
    if config.node_id and config.node_id != who.node_id:
        raise AuthRefused(
            f"agent says this PC is {who.node_id}, config says {config.node_id}"
        )
    _LOGGER.info("step identity: node_id %s", who.node_id)
    return who


def _node_version(config: HookConfig, who: WhoAmI) -> str:
    if not config.node_url:
        return who.node_version
    _LOGGER.info("step node: waiting up to %.0f s for %s", config.deadlines.node_s, config.node_url)
    client = Client(config.node_url, timeout_s=config.deadlines.call_s)
    return probe_version(client, Deadline(config.deadlines.node_s), config.deadlines.call_s)


def _publish(
    agent: AgentClient, config: HookConfig, node_id: str, code: str, device_id: str
) -> Confirmation:
    # The agent waits for the node's read-back itself, so one request may take up to
    # its confirm deadline; ours is confirm_s + call_s per request.
    timeout_s = config.deadlines.confirm_s + config.deadlines.call_s
    _LOGGER.info("step publish: POST %s for device %s", config.agent_url, mask_device_id(device_id))
    return retry_until(
        Deadline(config.deadlines.deeplink_s),
        lambda: agent.publish(node_id, code, device_id, timeout_s),
        _RETRYABLE,
        on_retry=_log_retry,
    )


def _log_retry(exc: BaseException, tries: int) -> None:
    if tries == 1 or tries % 10 == 0:
        _LOGGER.info("still waiting (try %d): %s", tries, exc)
