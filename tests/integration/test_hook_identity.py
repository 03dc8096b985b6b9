"""Which local address and MACs face the agent (psutil; a UDP connect sends nothing)."""

from boot_hooks.identity import local_identity


def test_routed_address_towards_loopback():
    me = local_identity("127.0.0.1", 8090)
    assert me.ip == "127.0.0.1"
    assert me.interface  # lo on Linux


def test_configured_source_address_inside_a_subnet():
    me = local_identity("127.0.0.1", 8090, source_ip="127.0.0.42")
    assert me.ip == "127.0.0.42"
    assert me.interface == local_identity("127.0.0.1", 8090).interface
    assert all(mac == mac.lower() and "-" not in mac for mac in me.macs)


def test_unknown_source_address_still_answers():
    me = local_identity("127.0.0.1", 8090, source_ip="203.0.113.9")
    assert (me.ip, me.interface, me.macs) == ("203.0.113.9", "", ())
