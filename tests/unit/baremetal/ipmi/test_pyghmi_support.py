"""baremetal.ipmi.session refuses a pyghmi whose patched internals are missing (issue 11)."""

from __future__ import annotations

import importlib.metadata

import pyghmi.ipmi.private.session as pyghmi_session
import pytest

from baremetal.errors import PyghmiUnsupported
from baremetal.ipmi import session as ipmi_session


def test_the_installed_pyghmi_is_supported():
    ipmi_session.require_supported_pyghmi()


@pytest.mark.parametrize("internal", ["_io_wait", "_io_recvfrom", "WAITING_SESSIONS"])
def test_a_missing_module_internal_is_a_typed_error_naming_the_fix(monkeypatch, internal):
    monkeypatch.delattr(pyghmi_session, internal)
    with pytest.raises(PyghmiUnsupported) as caught:
        ipmi_session.require_supported_pyghmi()
    version = importlib.metadata.version("pyghmi")
    assert str(caught.value) == (f"pyghmi {version} is not supported (missing: session.{internal});"
                                 " install pyghmi>=1.6.19,<1.7")


def test_a_missing_session_method_is_a_typed_error(monkeypatch):
    monkeypatch.delattr(pyghmi_session.Session, "_timedout")
    with pytest.raises(PyghmiUnsupported, match=r"missing: Session\._timedout"):
        ipmi_session.require_supported_pyghmi()


@pytest.mark.parametrize("version", ["1.6.18", "1.7.0", "2.0"])
def test_another_version_is_refused_even_with_the_internals(monkeypatch, version):
    monkeypatch.setattr(importlib.metadata, "version", lambda _name: version)
    with pytest.raises(PyghmiUnsupported, match=rf"^pyghmi {version} is not supported; "
                                                r"install pyghmi>=1\.6\.19,<1\.7$"):
        ipmi_session.require_supported_pyghmi()
