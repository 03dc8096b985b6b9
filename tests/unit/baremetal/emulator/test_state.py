"""Emulator state: server store, rentals file, node JSON spellings.

Reference: docs/protocol.md §2.5, §3.2-3.4, §5.
"""

from __future__ import annotations

import json
import os

import pytest

from baremetal import signing
from baremetal.emulator import nodejson
from baremetal.emulator.rentals import RentalBook, multisig_account
from baremetal.emulator.replies import local_result, node_error
from baremetal.emulator.store import BareMetalInfo, BareMetalStore, load_or_create_identity


def _info(uuid: str, **extra) -> BareMetalInfo:
    fields = {"uuid": uuid, "ip": "10.0.0.2", "ipmi_hostname": "10.0.1.2",
              "ipmi_username": "admin", "ipmi_password": "pw"}
    fields.update(extra)
    return BareMetalInfo(**fields)


def test_store_add_modify_delete_and_reload(tmp_path):
    store = BareMetalStore(tmp_path)
    errcode, message, ids = store.add({"u1": _info("u1", ipmi_port=623), "u2": _info("u2")})
    assert (errcode, message) == (0, "ok")
    record = store.get(ids["u1"])
    assert record is not None and record.ipmi_port == "623"
    assert signing.node_id_from_private_key(record.node_private_key) == ids["u1"]
    assert store.modify(ids["u1"], BareMetalInfo(uuid="u2")) == (
        1, "bare metal node uuid u2 already existed")
    assert store.modify(ids["u1"], BareMetalInfo(os="linux", ipmi_port=624)) == (0, "")
    assert store.delete([ids["u2"], "zz"]) == (1, "1 were successfully deleted, 1 failed")
    assert store.delete(["zz"]) == (-1, "bare metal node id zz not existed")
    again = BareMetalStore(tmp_path)
    (only,) = again.snapshot().values()
    assert (only.os, only.ipmi_port) == ("linux", "624")
    assert ids["u2"] not in again.announced_ids()  # a restart forgets deleted ids
    assert ids["u2"] in store.announced_ids()  # but the running node still announces it
    assert oct(os.stat(tmp_path / "db" / "bare_metal.json").st_mode & 0o777) == "0o600"


def test_identity_is_created_once_and_checked(tmp_path):
    first = load_or_create_identity(tmp_path)
    assert load_or_create_identity(tmp_path) == first
    dat = tmp_path / "dat" / "node.dat"
    dat.write_text(f"node_id={'00' * 32}\nnode_private_key={first.private_key}\n")
    with pytest.raises(SystemExit):
        load_or_create_identity(tmp_path)


def test_rentals_reload_on_change_and_keep_last_good(tmp_path):
    path = tmp_path / "rentals.json"
    path.write_text(json.dumps({"current_block": 7, "machines": {"m": {"status": "online"}}}))
    book = RentalBook(path)
    assert book.machine("m").status == "online" and book.current_block() == 7
    assert book.machine("other").status == "unknown"
    path.write_text(json.dumps({"machines": {"m": {"status": "rented", "renter": "5abc",
                                                   "rent_end": 9}}}) + " " * 3)
    assert (book.machine("m").status, book.machine("m").rent_end) == ("rented", 9)
    path.write_text("{broken")
    assert book.machine("m").status == "rented"


def test_multisig_account_is_order_independent():
    wallets = [signing.public_key_to_ss58(bytes([i]) * 32) for i in (1, 2, 3)]
    account = multisig_account(wallets, 2)
    assert account == multisig_account(list(reversed(wallets)), 2)
    assert account != multisig_account(wallets, 3)
    assert len(signing.ss58_to_public_key(account)) == 32


def test_node_json_spellings():
    assert node_error(-3, "Not supported") == '{"errcode":-3, "message":"Not supported"}'
    assert local_result(0, "").body == b'{"errcode": 0,"message": ""}\r\n'
    assert nodejson.mask("secret") == "******"
    assert nodejson.deeplink_info("d", 'p"') == (
        '{"errcode":0, "message":{"device_id":"d","device_password":"p""}}')
