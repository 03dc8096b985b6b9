"""[chain] settings and the agent's rental source: hosts from core.conf, file fallback.

No sockets: the chain itself is exercised in tests/integration/test_agent_chain_rentals.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.errors import ConfigError
from agent.monitor.rental_source import RentalSource, chain_hosts, rental_source
from agent.monitor.rentals import RentalsFile

CORE_CONF = ("version=0.3.7.7\nhttp_port=5002\n"
             "dbc_chain_domain=httpinfo.dbcwallet.io:443\n"
             "dbc_chain_domain=httpinfo2.dbcwallet.io:7788\n")


def _settings(tmp_path: Path, toml: str = "", **env: str):
    (tmp_path / "agent.toml").write_text(
        '[node]\nnode_dat = "node/dat/node.dat"\n' + toml, encoding="utf-8")
    return load_settings(tmp_path / "agent.toml", environ=env)


def test_defaults_chain_off_without_core_conf(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (settings.chain.hosts, settings.chain.core_conf) == ((), None)
    assert (settings.chain.timeout_s, settings.chain.ttl_s) == (3.0, 30.0)
    assert settings.chain.verify_tls is True
    assert chain_hosts(settings)[0] == ()
    assert rental_source(settings) is None  # neither chain nor rentals file


def test_hosts_from_core_conf_beside_node_dat(tmp_path: Path) -> None:
    (tmp_path / "node" / "conf").mkdir(parents=True)
    (tmp_path / "node" / "conf" / "core.conf").write_text(
        CORE_CONF + "chain_additional_field=terminatingRental\n")
    settings = _settings(tmp_path)
    hosts, conf = chain_hosts(settings)
    assert hosts == ("httpinfo.dbcwallet.io:443", "httpinfo2.dbcwallet.io:7788")
    source = rental_source(settings)
    assert source is not None and source.chain is not None
    assert source.chain.client.hosts == ("https://httpinfo.dbcwallet.io:443/",
                                         "https://httpinfo2.dbcwallet.io:7788/")
    assert source.chain.client.methods.machine_info == "terminatingRental_getMachineInfo"
    assert conf.terminating_rental


def test_configured_hosts_win_over_core_conf(tmp_path: Path) -> None:
    (tmp_path / "core.conf").write_text(CORE_CONF)
    settings = _settings(tmp_path, '[chain]\nhosts = ["http://127.0.0.1:9944"]\n'
                                   'core_conf = "core.conf"\ntimeout_s = 1.5\nttl_s = 0\n'
                                   "verify_tls = false\n")
    assert settings.chain.core_conf == tmp_path / "core.conf"
    source = rental_source(settings)
    assert source is not None and source.chain is not None
    assert source.chain.client.hosts == ("http://127.0.0.1:9944/",)
    assert (source.chain.client.timeout_s, source.chain.ttl_s) == (1.5, 0.0)
    assert settings.chain.verify_tls is False


def test_hosts_from_environment_comma_separated(tmp_path: Path) -> None:
    settings = _settings(tmp_path, BM_AGENT_CHAIN_HOSTS="a.example, b.example:7788")
    assert settings.chain.hosts == ("a.example", "b.example:7788")


@pytest.mark.parametrize("toml", [
    '[chain]\nhosts = ["ftp://x"]\n', '[chain]\nhosts = ["a.example:99999"]\n',
    '[chain]\nhosts = "a b"\n', "[chain]\nhosts = [1]\n", "[chain]\ntimeout_s = 0\n",
    "[chain]\nttl_s = -1\n", "[chain]\nhost = []\n",
])
def test_bad_chain_settings_name_the_key(tmp_path: Path, toml: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, toml)
    assert "chain." in str(info.value)


def test_bad_host_in_core_conf_turns_the_chain_off(tmp_path: Path) -> None:
    (tmp_path / "core.conf").write_text("dbc_chain_domain=bad host:x\n")
    (tmp_path / "rentals.json").write_text(json.dumps(
        {"machines": {"n1": {"status": "online"}}}))
    settings = _settings(tmp_path, '[check]\nrentals_file = "rentals.json"\n'
                                   '[chain]\ncore_conf = "core.conf"\n')
    source = rental_source(settings)
    assert source is not None and source.chain is None
    assert source.rented("n1") is False


def test_unreadable_core_conf_is_no_hosts(tmp_path: Path) -> None:
    settings = _settings(tmp_path, '[chain]\ncore_conf = "missing.conf"\n')
    assert chain_hosts(settings)[0] == ()


def test_file_only_source_answers_like_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rentals.json"
    path.write_text(json.dumps({"current_block": 10, "machines": {
        "a": {"status": "rented", "rent_end": 9}, "b": {"status": "rented"}}}))
    source = RentalSource(None, RentalsFile(path))
    assert (source.rented("a"), source.rented("b"), source.rented("c")) == (False, True, None)
    assert source.rented(None) is None and source.rental("a") is None
