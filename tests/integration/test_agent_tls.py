"""Issue 10 (3), cleartext on the LAN: the real ``bm-agent serve`` over HTTPS with a
certificate made like ``bm-agent init --tls``, the real bm-hook pinning it, Secure cookies,
and ``[api] trusted_proxies`` deciding whose ``X-Forwarded-For`` the hook relay believes.

One emulator and one TLS agent (trusting the proxy 127.0.0.5) with one registered PC at
127.0.0.61 and its simulated DeepLink are shared by the module; a plain-HTTP agent is the
"before" side of the cookie and warning checks.
"""

import hashlib
import secrets
import ssl
import time

import pytest
import requests

from baremetal.emulator.deeplink_client import SimulatedDeepLink
from boot_hooks.errors import ExitCode
from boot_hooks.relay import WHOAMI_PATH, SeatSigner
from tests.integration.test_hook_relay import register
from tests.support.agentproc import pinned_session
from tests.support.emulator import start_emulator
from tests.support.hook_run import run_hook, write_hook_config, write_key
from tests.support.procs import python_module
from tests.support.seats import provision_seat

PC_IP = "127.0.0.61"
UUID = "pc-61"
PROXY_IP = "127.0.0.5"      # listed in [api] trusted_proxies
STRANGER_IP = "127.0.0.6"   # not listed
ATTACKER_IP = "127.0.0.66"
WRONG_PIN = "00" * 32


@pytest.fixture(scope="module")
def cafe(module_agent_proc, module_spawn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tlscafe")
    emu = start_emulator(module_spawn, tmp)
    agent = module_agent_proc(emulator=emu, tls=True,
                              config={"api.trusted_proxies": [PROXY_IP]})
    node_ids = register(agent, (UUID, PC_IP))
    seat_seed = provision_seat(agent, UUID, PC_IP)
    link = SimulatedDeepLink((emu.deeplink_host, emu.deeplink_port), device_id="616161616",
                             password="FirstBoot61", source_ip=PC_IP, reconnect=True)
    link.start()
    assert link.wait_until(lambda d: d.connected, 5)
    yield {"agent": agent, "node_id": node_ids[UUID], "dl": link, "seat": seat_seed}
    link.stop()


def hook_config(tmp_path, agent, *, pin=None, url=None, name="hook", seat=None):
    table = {"url": url or agent.url,
             "token_key_file": write_key(tmp_path / f"{name}.token", agent.hook_seed),
             "source_ip": PC_IP}
    if seat is not None:
        table["seat_key_file"] = write_key(tmp_path / f"{name}.seat", seat)
    if pin is not None:
        table["cert_sha256"] = pin
    return write_hook_config(tmp_path / f"{name}.toml", {
        "agent": table,
        "deadlines": {"node_s": 5, "deeplink_s": 10, "confirm_s": 8, "call_s": 2},
        "state": {"file": str(tmp_path / f"{name}.last-code")},
    })


def hook_requests_seen(agent):
    """How many hook relay requests the agent has answered (its own /metrics)."""
    text = agent.get("/metrics").text
    assert "bm_agent_http_requests_total" in text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("bm_agent_http_requests_total{") and "/hook/" in line)


def colons(plain):
    return ":".join(plain[i:i + 2] for i in range(0, 64, 2)).upper()


# --- HTTPS itself ------------------------------------------------------------------------


def test_the_agent_serves_https_with_the_pinned_certificate(cafe):
    agent = cafe["agent"]
    assert agent.url.startswith("https://")
    assert f"https://127.0.0.1:{agent.settings.api.port}/" in agent.log()
    assert "WITHOUT TLS" not in agent.log()
    with pinned_session(agent.cert_sha256) as sess:
        assert sess.get(agent.url + "/healthz", timeout=10).status_code == 200
    with pinned_session(WRONG_PIN) as sess, pytest.raises(requests.exceptions.SSLError):
        sess.get(agent.url + "/healthz", timeout=10)
    # A client that checks the CA chain refuses a self-signed certificate; cleartext
    # HTTP on the HTTPS port gets no answer.
    with requests.Session() as sess:
        sess.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            sess.get(agent.url + "/healthz", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):
            sess.get(agent.url.replace("https://", "http://") + "/healthz", timeout=10)


def test_the_served_certificate_is_the_one_bm_agent_tls_fingerprint_prints(cafe, spawn):
    agent = cafe["agent"]
    proc = spawn(python_module("agent", "--json", "--config", str(agent.config_path), "tls",
                               "fingerprint"), name="fingerprint", env={"BM_AGENT_CONFIG": ""})
    assert proc.popen.wait(timeout=60) == 0, proc.log()
    assert f'"sha256_hex": "{agent.cert_sha256}"' in proc.log()
    pem = ssl.get_server_certificate(("127.0.0.1", agent.settings.api.port))
    served = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    assert served == agent.cert_sha256


# --- the hook's pin ----------------------------------------------------------------------


def test_hook_with_the_right_pin_rotates_over_https(cafe, spawn, tmp_path):
    agent, dl = cafe["agent"], cafe["dl"]
    before, seen = dl.password, hook_requests_seen(agent)
    run = run_hook(spawn, hook_config(tmp_path, agent, pin=colons(agent.cert_sha256),
                                     seat=cafe["seat"]))
    assert run.returncode == ExitCode.OK, run.log + agent.log()[-3000:]
    assert dl.password != before
    assert hook_requests_seen(agent) == seen + 2  # whoami and deeplink, counted
    assert "clear text" not in run.log


def test_hook_with_a_wrong_pin_is_refused_and_sends_nothing(cafe, spawn, tmp_path):
    """A man in the middle (here: the pin of another certificate) gets no signed request."""
    agent, dl = cafe["agent"], cafe["dl"]
    before, seen = dl.password, hook_requests_seen(agent)
    run = run_hook(spawn, hook_config(tmp_path, agent, pin=WRONG_PIN, seat=cafe["seat"]))
    assert run.returncode == ExitCode.TLS_PIN_MISMATCH == 8, run.log
    assert "nothing was sent" in run.log and agent.cert_sha256 in run.log
    assert "TLS_PIN_MISMATCH" in run.log
    assert run.log.count("presented a certificate") == 1  # not retried
    assert hook_requests_seen(agent) == seen  # the agent saw no request
    assert dl.password == before


def test_hook_refuses_https_without_a_pin(cafe, spawn, tmp_path):
    run = run_hook(spawn, hook_config(tmp_path, cafe["agent"]))
    assert run.returncode == ExitCode.CONFIG, run.log
    assert "cert_sha256" in run.log


def test_hook_over_http_works_with_a_warning(module_agent_proc, spawn, tmp_path):
    plain = module_agent_proc()
    run = run_hook(spawn, hook_config(tmp_path, plain))
    # No server is registered at the PC's IP on this agent: refused, but it was asked.
    assert run.returncode == ExitCode.AUTH_REFUSED, run.log
    assert "forbidden_source" in run.log
    assert "clear text" in run.log


# --- cookies -----------------------------------------------------------------------------


def login_cookie_headers(agent):
    with agent.session(None) as sess:
        answer = sess.post(agent.url + "/api/v1/auth/login", timeout=30,
                           json={"name": "admin", "password": agent.passwords["admin"]})
        assert answer.status_code == 200, answer.text
    with agent.session(None) as sess:
        form = sess.get(agent.url + "/ui/login", timeout=30, allow_redirects=False)
        assert form.status_code == 200, form.text
    return answer.headers["set-cookie"], form.headers.get("set-cookie", "")


def test_cookies_are_secure_with_tls(cafe):
    session_cookie, form_cookie = login_cookie_headers(cafe["agent"])
    assert "bm_session=" in session_cookie and "Secure" in session_cookie
    assert "Secure" in form_cookie


def test_cookies_are_not_secure_over_plain_http(module_agent_proc):
    session_cookie, form_cookie = login_cookie_headers(module_agent_proc())
    assert "bm_session=" in session_cookie and "Secure" not in session_cookie
    assert form_cookie and "Secure" not in form_cookie


# --- trusted proxies ---------------------------------------------------------------------


def whoami_via(cafe, source_ip, forwarded_for):
    agent = cafe["agent"]
    target = f"{WHOAMI_PATH}?ip={PC_IP}&mac="
    headers = SeatSigner(cafe["seat"]).headers("GET", target, b"", int(time.time()),
                                                   secrets.token_hex(16))
    headers["X-Forwarded-For"] = forwarded_for
    with agent.session(None, source_ip=source_ip) as sess:
        return sess.get(agent.url + target, headers=headers, timeout=30)


def test_a_trusted_proxy_forwarding_for_the_seat_is_the_seat(cafe):
    answer = whoami_via(cafe, PROXY_IP, PC_IP)
    assert answer.status_code == 200, answer.text
    assert answer.json()["node_id"] == cafe["node_id"]


def test_the_same_headers_from_an_untrusted_peer_are_refused(cafe):
    answer = whoami_via(cafe, STRANGER_IP, PC_IP)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden_source"
    assert PC_IP not in answer.json()["error"]["message"]


def test_a_forged_hop_through_a_trusted_proxy_names_the_attacker(cafe):
    """``X-Forwarded-For: <seat ip>, <attacker>``: the left part is the client's claim."""
    answer = whoami_via(cafe, PROXY_IP, f"{PC_IP}, {ATTACKER_IP}")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden_source"
    assert ATTACKER_IP in answer.json()["error"]["message"]
