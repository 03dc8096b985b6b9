"""bm-hook --check: one verdict per item, the fix with every PROBLEM, never a key, exit 0/2."""

import hashlib
import io
import os

import nacl.signing
import pytest

from baremetal.signing import node_id_from_private_key
from boot_hooks.check import collect_findings, run_check
from boot_hooks.errors import ExitCode

TOKEN = hashlib.sha256(b"check test cafe token").hexdigest()
SEAT = hashlib.sha256(b"check test seat key").hexdigest()
SERVER = hashlib.sha256(b"check test server key").hexdigest()
PIN = "bc60c7c34b2dc66661e511f470dbf6dc6eb99ff48bb4b2d838847047754b5feb"


def fingerprint(seed):
    public = bytes(nacl.signing.SigningKey(bytes.fromhex(seed)).verify_key)
    return hashlib.sha256(public).hexdigest()[:16]


def key(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def agent_env(tmp_path, token_text=f"hook_token={TOKEN}\n", **extra):
    return {"BM_HOOK_AGENT_URL": "https://192.168.1.159:8700",
            "BM_HOOK_AGENT_CERT_SHA256": PIN,
            "BM_HOOK_AGENT_TOKEN_KEY_FILE": key(tmp_path / "hook-token.key", token_text),
            "BM_HOOK_STATE_DIR": str(tmp_path / "state"), **extra}


def direct_env(tmp_path, text=f"node_private_key={SERVER}\n", mode=0o600, **extra):
    return {"BM_HOOK_NODE_URL": "http://192.168.1.159:5002",
            "BM_HOOK_SERVER_KEY_FILE": key(tmp_path / "server.key", text, mode),
            "BM_HOOK_STATE_DIR": str(tmp_path / "state"), **extra}


def check(env, for_image=False):
    out = io.StringIO()
    code = run_check(None, env, for_image=for_image, out=out)
    return code, out.getvalue()


def lines(text, verdict):
    return [line for line in text.splitlines() if line.startswith(verdict + " ")]


def test_a_good_agent_setup_is_ok_and_shows_what_it_will_use(tmp_path):
    code, out = check(agent_env(tmp_path))
    assert code == ExitCode.OK, out
    assert "OK       mode: agent" in out
    assert f"agent: https://192.168.1.159:8700 (certificate pin sha256 {PIN})" in out
    assert f"hook token, fingerprint {fingerprint(TOKEN)}" in out
    assert "permissions: only its owner may read it" in out
    assert "seat.key: not made yet" in out
    assert f"[state] dir {tmp_path / 'state'}: absent; bm-hook makes it" in out
    assert out.rstrip().endswith("result: OK")
    assert not lines(out, "PROBLEM") and not lines(out, "WARNING")
    assert TOKEN not in out
    assert not (tmp_path / "state").exists()  # --check makes nothing


def test_the_seat_key_fingerprint_is_the_dashboards(tmp_path):
    (tmp_path / "state").mkdir(mode=0o700)
    key(tmp_path / "state" / "seat.key", f"seat_key={SEAT}\n")
    code, out = check(agent_env(tmp_path))
    assert code == ExitCode.OK, out
    assert f"seat key, fingerprint {fingerprint(SEAT)}" in out
    assert f"[state] dir {tmp_path / 'state'}: usable" in out
    assert SEAT not in out


def test_a_good_direct_setup_shows_the_node_id(tmp_path):
    code, out = check(direct_env(tmp_path))
    assert code == ExitCode.OK, out
    assert "node: http://192.168.1.159:5002" in out
    assert f"server key of node_id {node_id_from_private_key(SERVER)}" in out
    assert SERVER not in out


def test_a_missing_key_file_is_a_problem_with_the_fix(tmp_path):
    env = agent_env(tmp_path)
    os.unlink(env["BM_HOOK_AGENT_TOKEN_KEY_FILE"])
    code, out = check(env)
    assert code == ExitCode.CONFIG
    [problem] = lines(out, "PROBLEM")
    assert "hook-token.key: missing; copy the key file there" in problem
    assert "result: 1 problem(s)" in out


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_loose_mode_is_a_problem_with_the_fix(tmp_path, mode):
    code, out = check(direct_env(tmp_path, mode=mode))
    assert code == ExitCode.CONFIG
    [problem] = lines(out, "PROBLEM")
    assert problem.endswith("server.key is readable by others; chmod 600 it")
    assert SERVER not in out


def test_garbage_is_a_problem_and_is_not_echoed(tmp_path):
    garbage = "not a key at all 0123456789abcdef"
    code, out = check(agent_env(tmp_path, token_text=garbage))
    assert code == ExitCode.CONFIG
    [problem] = lines(out, "PROBLEM")
    assert "holds no 64-hex-character key (expected one line 'hook_token=<64 hex>')" in problem
    assert garbage not in out


def test_a_server_key_given_as_the_token_is_named(tmp_path):
    code, out = check(agent_env(tmp_path, token_text=f"node_id=ab\nnode_private_key={SERVER}\n"))
    assert code == ExitCode.CONFIG
    [problem] = lines(out, "PROBLEM")
    assert "holds a 'node_private_key=' line where 'hook_token=<64 hex>' is expected" in problem
    assert "a server's node key" in problem
    assert SERVER not in out


def test_a_token_given_as_the_server_key_is_named(tmp_path):
    code, out = check(direct_env(tmp_path, text=f"hook_token={TOKEN}\n"))
    assert code == ExitCode.CONFIG
    assert "holds a 'hook_token=' line where 'node_private_key=<64 hex>'" in out
    assert TOKEN not in out


def test_a_bare_token_line_works_but_is_warned_about(tmp_path):
    # The agent's public key file (hook_token.pub) copied by mistake looks just like this.
    public = bytes(nacl.signing.SigningKey(bytes.fromhex(TOKEN)).verify_key).hex()
    code, out = check(agent_env(tmp_path, token_text=public + "\n"))
    assert code == ExitCode.OK, out
    [warning] = lines(out, "WARNING")
    assert "a bare 64-hex line, not 'hook_token=<64 hex>'" in warning
    assert "not the agent's public key (hook_token.pub)" in warning


def test_a_server_key_of_another_node_is_a_problem(tmp_path):
    other = node_id_from_private_key(TOKEN)
    code, out = check(direct_env(tmp_path, BM_HOOK_SERVER_NODE_ID=other))
    assert code == ExitCode.CONFIG
    assert f"not to [server] node_id {other}; the node will refuse it" in out


def test_a_bad_config_is_one_problem(tmp_path):
    code, out = check({"BM_HOOK_NODE_URL": "ftp://x", "BM_HOOK_SERVER_KEY_FILE": "/k"})
    assert code == ExitCode.CONFIG
    assert out.splitlines()[0].startswith("PROBLEM  config (none: environment only): [node] url")


def test_agent_mode_without_any_place_for_the_seat_key(tmp_path):
    env = agent_env(tmp_path)
    del env["BM_HOOK_STATE_DIR"]
    code, out = check(env)
    assert code == ExitCode.CONFIG
    assert "agent mode needs a per-machine place for this PC's seat key" in out


def test_direct_mode_without_a_state_dir_is_a_warning(tmp_path):
    env = direct_env(tmp_path)
    del env["BM_HOOK_STATE_DIR"]
    code, out = check(env)
    assert code == ExitCode.OK
    [warning] = lines(out, "WARNING")
    assert "no [state] dir: last code and log kept in memory" in warning


def test_a_state_dir_on_a_missing_disk(tmp_path):
    env = agent_env(tmp_path, BM_HOOK_STATE_DIR=str(tmp_path / "E" / "bm-hook"))
    code, out = check(env)
    assert code == ExitCode.CONFIG
    assert "neither it nor its parent exists" in out and "cannot keep the seat key" in out
    code, out = check(direct_env(tmp_path, BM_HOOK_STATE_DIR=str(tmp_path / "E" / "bm-hook")))
    assert code == ExitCode.OK and "neither it nor its parent exists" in out


def test_a_state_dir_others_may_enter_is_a_warning(tmp_path):
    (tmp_path / "state").mkdir(mode=0o755)
    os.chmod(tmp_path / "state", 0o755)
    code, out = check(direct_env(tmp_path))
    assert code == ExitCode.OK
    assert "mode 0755, others may look inside; chmod 700 it" in out


def test_for_image_refuses_per_machine_state(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    for name in ("seat.key", "last-code", "status.json", "server.key", "bm-hook.log"):
        key(state / name, f"seat_key={SEAT}\n" if name == "seat.key" else "x")
    code, out = check(agent_env(tmp_path), for_image=True)
    assert code == ExitCode.CONFIG
    image = [line for line in lines(out, "PROBLEM") if "image:" in line]
    assert [line.split("image: ")[1].split(" /")[0] for line in image] == [
        "seat key", "server key", "last code", "status"]
    assert "delete it before sealing the image" in image[0]
    assert any("bm-hook.log is this machine's log" in line for line in lines(out, "WARNING"))


def test_for_image_passes_on_a_clean_dir(tmp_path):
    (tmp_path / "state").mkdir(mode=0o700)
    code, out = check(agent_env(tmp_path), for_image=True)
    assert code == ExitCode.OK, out
    assert f"image: no per-machine state in {tmp_path / 'state'}" in out


def test_every_finding_is_one_line(tmp_path):
    for finding in collect_findings(None, agent_env(tmp_path), for_image=True):
        assert "\n" not in finding.text and finding.verdict in ("OK", "WARNING", "PROBLEM")
