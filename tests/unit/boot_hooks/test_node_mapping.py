"""Node version rule and the translation of baremetal errors into exit codes."""

import pytest

from baremetal import errors as bm
from boot_hooks.errors import ExitCode
from boot_hooks.node import _hook_error, is_relay_version, parse_version


@pytest.mark.parametrize(("text", "parts"), [
    ("0.4.1.8", (0, 4, 1, 8)), ("0.4.1.7", (0, 4, 1, 7)), (" 0.4.1.6\n", (0, 4, 1, 6)),
    ("", None), ("v0.4", None), ("0.4.x", None),
])
def test_parse_version(text, parts):
    assert parse_version(text) == parts


@pytest.mark.parametrize(("text", "relay"), [
    ("0.4.1.8", True), ("0.4.1.7", True), ("0.4.2", True), ("1.0", True),
    ("0.4.1.6", False), ("0.4.1.0", False), ("0.3.7.7", False), ("weird", True),
])
def test_relay_starts_at_0417(text, relay):
    assert is_relay_version(text) is relay


def api(cls, status, errcode, message):
    return cls("deeplink", status, errcode, message)


@pytest.mark.parametrize(("exc", "code"), [
    (api(bm.DeepLinkNotConnected, 400, -32600, "deeplink service not connected"),
     ExitCode.DEEPLINK_UNREACHABLE),
    (bm.NodeUnreachable("/api/v1/", "connection refused"), ExitCode.NODE_UNREACHABLE),
    (bm.NodeTimeout("/api/v1/", "timed out"), ExitCode.NODE_UNREACHABLE),
    (bm.DecodeError("/api/v1/", "not JSON"), ExitCode.NODE_UNREACHABLE),
    (api(bm.SignatureRejected, 400, -25, "verify sign failed"), ExitCode.AUTH_REFUSED),
    (api(bm.AuthorityRefused, 200, -3, "check authority failed: x"), ExitCode.AUTH_REFUSED),
    (api(bm.InvalidRequest, 400, -32701, "create node request failed"), ExitCode.CONFIG),
    (api(bm.OperationFailed, 200, -1, "something"), ExitCode.NOT_CONFIRMED),
    (api(bm.NodeRejected, 200, -3, "invalid device"), ExitCode.NOT_CONFIRMED),
])
def test_baremetal_errors_map_to_exit_codes(exc, code):
    assert _hook_error(exc).exit_code == code
