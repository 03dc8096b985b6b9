"""The power-backend interface: capabilities are data, path errors are typed."""

import pytest

from baremetal.errors import (
    BaremetalError,
    NotAvailableOnThisPath,
    PathAuthFailed,
    PathProtocolError,
    PathTimeout,
    PathUnreachable,
    PowerPathError,
)
from baremetal.power.backend import Capabilities, Operation, PowerPath


def test_capabilities_say_what_a_path_can_do():
    plug = Capabilities(PowerPath.HTTP, frozenset({Operation.STATUS, Operation.ON, Operation.OFF}))
    assert plug.can(Operation.OFF)
    assert not plug.can(Operation.RESET) and not plug.can(Operation.BOOT_SET)


@pytest.mark.parametrize("cls", [NotAvailableOnThisPath, PathUnreachable, PathTimeout,
                                 PathAuthFailed, PathProtocolError])
def test_path_errors_are_typed_and_name_their_target(cls):
    error = cls("redfish https://10.0.0.5", "no answer in 5 s")
    assert isinstance(error, PowerPathError) and isinstance(error, BaremetalError)
    assert str(error) == "redfish https://10.0.0.5: no answer in 5 s"
    assert (error.target, error.reason) == ("redfish https://10.0.0.5", "no answer in 5 s")
