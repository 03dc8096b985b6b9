"""Typed errors for everything that talks to DBC nodes and BMCs.

The tree::

    BaremetalError
    ├── SigningError                  a key, signature or address is malformed
    ├── InvalidInput                  caller input fails client-side checks; nothing was sent
    ├── TransportError                no usable HTTP answer from the node
    │   ├── NodeUnreachable           connection refused / reset / DNS
    │   └── NodeTimeout               no answer within the call's deadline
    ├── DecodeError                   the node answered, but not valid JSON of the expected shape
    ├── ApiError                      the node answered with errcode != 0
    │   ├── InvalidRequest            HTTP 400, errcode -25 / -32600 / -32701 (client-side checks)
    │   │   ├── SignatureRejected     "verify sign failed", "invalid wallet sign" (also the
    │   │   │                         node-side HTTP 200 / errcode -3 "verify sign failed")
    │   │   └── WrongNodeRole         "only client node support", "only bare metal node support"
    │   ├── UnknownEndpoint           HTTP 404, errcode -32601
    │   ├── RelayTimeout              HTTP 500, errcode -1, "<op> timeout" (30 s P2P timer)
    │   ├── RelayFailure              HTTP 500, other client-side failures after a reply arrived
    │   ├── NodeRejected              HTTP 200, errcode -3 (node-side refusal)
    │   │   └── AuthorityRefused      "check authority failed: <reason>"
    │   ├── OperationFailed           HTTP 200, errcode 1 or -1 (manager/DB failures)
    │   └── DeepLinkNotConnected      "deeplink service not connected", whatever errcode carries it
    ├── IpmiError                     a BMC could not be read or driven
    │   ├── IpmiUnreachable           no answer from the BMC (dead, wrong address, firewalled)
    │   ├── IpmiTimeout               the call outran its deadline
    │   ├── IpmiAuthError             wrong user name or password, or insufficient privilege
    │   ├── IpmiBusy                  the BMC says busy / out of sessions (worth a retry later)
    │   ├── IpmiUnsupported           the BMC does not implement the command or parameter
    │   └── IpmiProtocolError         a malformed or unexpected answer
    ├── PowerPathError                a Redfish BMC or an HTTP plug could not be read or driven
    │   ├── NotAvailableOnThisPath    the seat's power path cannot do this (e.g. reset on a plug)
    │   ├── PathUnreachable           no answer (dead, wrong address, firewalled)
    │   ├── PathTimeout               the call outran its deadline
    │   ├── PathAuthFailed            wrong user name, password or token
    │   └── PathProtocolError         a malformed or unexpected answer
    ├── PyghmiUnsupported             pyghmi is not >=1.6.19,<1.7 (ipmi/session.py patches it)
    └── LanFrameError                 a DeepLink LAN frame could not be built or read
        ├── FrameTooLarge             a header announces, or a body needs, more than 512 bytes
        └── FrameDecodeError          a frame body is not a JSON object

Errors never carry secrets: messages are built from endpoint names, errcodes and the
node's own text, which the node already masks.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthorityRefused",
    "BaremetalError",
    "DecodeError",
    "DeepLinkNotConnected",
    "FrameDecodeError",
    "FrameTooLarge",
    "InvalidInput",
    "InvalidRequest",
    "IpmiAuthError",
    "IpmiBusy",
    "IpmiError",
    "IpmiProtocolError",
    "IpmiTimeout",
    "IpmiUnreachable",
    "IpmiUnsupported",
    "LanFrameError",
    "NodeRejected",
    "NodeTimeout",
    "NodeUnreachable",
    "NotAvailableOnThisPath",
    "OperationFailed",
    "PathAuthFailed",
    "PathProtocolError",
    "PathTimeout",
    "PathUnreachable",
    "PowerPathError",
    "PyghmiUnsupported",
    "RelayFailure",
    "RelayTimeout",
    "SignatureRejected",
    "SigningError",
    "TransportError",
    "UnknownEndpoint",
    "UnsafeShellWord",
    "WrongNodeRole",
    "api_error_from_reply",
]

DEEPLINK_NOT_CONNECTED = "deeplink service not connected"
_SIGNATURE_TEXTS = ("verify sign failed", "invalid wallet sign")
_ROLE_TEXTS = ("only client node support", "only bare metal node support")
_AUTHORITY_PREFIX = "check authority failed"


class BaremetalError(Exception):
    """Root of every error raised by the ``baremetal`` package."""


class SigningError(BaremetalError):
    """A key, signature or wallet address is malformed."""


class InvalidInput(BaremetalError, ValueError):
    """The caller's input breaks a rule the node enforces; the request was not sent."""


class UnsafeShellWord(InvalidInput):
    """A value the node puts unquoted on its ``sh -c`` line is not one plain shell word.

    ``field`` names the culprit; the value itself is never part of the message (it may
    be a password).
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field} is not safe on the DBC node's shell command line: {rule}")


class TransportError(BaremetalError):
    """The node gave no usable HTTP answer."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"{endpoint}: {reason}")


class NodeUnreachable(TransportError):
    """The node refused or dropped the connection."""


class NodeTimeout(TransportError):
    """The node did not answer within the call's deadline."""


class DecodeError(BaremetalError):
    """The node answered with a body that is not the JSON we expect."""

    def __init__(self, endpoint: str, reason: str, http_status: int | None = None) -> None:
        self.endpoint = endpoint
        self.reason = reason
        self.http_status = http_status
        super().__init__(f"{endpoint}: malformed answer from node ({reason})")


class ApiError(BaremetalError):
    """The node answered with a non-zero errcode."""

    def __init__(self, endpoint: str, http_status: int, errcode: int, message: str) -> None:
        self.endpoint = endpoint
        self.http_status = http_status
        self.errcode = errcode
        self.message = message
        super().__init__(f"{endpoint}: HTTP {http_status}, errcode {errcode}: {message}")


class InvalidRequest(ApiError):
    """The node refused the request before acting on it (HTTP 400)."""


class SignatureRejected(InvalidRequest):
    """The node did not accept the wallet/nonce/sign triple."""


class WrongNodeRole(InvalidRequest):
    """The endpoint is not served by this kind of node (e.g. power on a bare-metal node)."""


class UnknownEndpoint(ApiError):
    """The node does not know the URI (HTTP 404)."""


class RelayTimeout(ApiError):
    """The client node's 30 s P2P timer expired (HTTP 500)."""


class RelayFailure(ApiError):
    """The client node failed to decrypt or parse the relayed answer (HTTP 500)."""


class NodeRejected(ApiError):
    """The node-side handler refused the request (errcode -3)."""


class AuthorityRefused(NodeRejected):
    """The rental check failed: the caller is not the renter, or the machine is not rented."""


class OperationFailed(ApiError):
    """The node accepted the request but the operation failed (errcode 1 or -1)."""


class DeepLinkNotConnected(ApiError):
    """No DeepLink LAN session exists from the server's registered IP."""


class IpmiError(BaremetalError):
    """A BMC could not be read or driven."""

    def __init__(self, bmc: str, reason: str) -> None:
        self.bmc = bmc
        self.reason = reason
        super().__init__(f"BMC {bmc}: {reason}")


class IpmiUnreachable(IpmiError):
    """The BMC does not answer at all."""


class IpmiTimeout(IpmiError):
    """The IPMI call outran its deadline."""


class IpmiAuthError(IpmiError):
    """The BMC refused the user name, password or privilege level."""


class IpmiBusy(IpmiError):
    """The BMC is busy or out of sessions; a later retry may work."""


class IpmiUnsupported(IpmiError):
    """The BMC does not implement the command or parameter."""


class IpmiProtocolError(IpmiError):
    """The BMC's answer is malformed or unexpected."""


class PowerPathError(BaremetalError):
    """A seat's non-IPMI power path (Redfish, HTTP plug) could not be read or driven."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}")


class NotAvailableOnThisPath(PowerPathError):
    """The seat's power path cannot do this operation (capabilities say which can)."""


class PathUnreachable(PowerPathError):
    """The Redfish service or the plug does not answer at all."""


class PathTimeout(PowerPathError):
    """The call outran its deadline."""


class PathAuthFailed(PowerPathError):
    """The Redfish service or the plug refused the credentials."""


class PathProtocolError(PowerPathError):
    """The answer is malformed or unexpected."""


class PyghmiUnsupported(BaremetalError):
    """The installed pyghmi is not the one whose internals ``baremetal.ipmi.session`` patches."""

    SUPPORTED = ">=1.6.19,<1.7"

    def __init__(self, version: str, missing: tuple[str, ...] = ()) -> None:
        self.version = version
        self.missing = missing
        detail = f" (missing: {', '.join(missing)})" if missing else ""
        super().__init__(f"pyghmi {version} is not supported{detail}; "
                         f"install pyghmi{self.SUPPORTED}")


class LanFrameError(BaremetalError):
    """A DeepLink LAN frame could not be built or read."""


class FrameTooLarge(LanFrameError):
    """A frame header announces, or a body needs, more than the 512-byte maximum."""

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"frame body of {length} bytes exceeds the {limit}-byte limit")


class FrameDecodeError(LanFrameError):
    """A frame body is not a JSON object; the reason never quotes the body (secrets)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"undecodable frame body: {reason}")


def api_error_from_reply(endpoint: str, http_status: int, errcode: int, message: str) -> ApiError:
    """Build the most specific ApiError for a non-zero errcode reply."""
    cls = _classify(http_status, errcode, message)
    return cls(endpoint, http_status, errcode, message)


def _classify(http_status: int, errcode: int, message: str) -> type[ApiError]:
    if message == DEEPLINK_NOT_CONNECTED:
        return DeepLinkNotConnected
    if http_status == 404:
        return UnknownEndpoint
    if http_status >= 500:
        return RelayTimeout if message.endswith(" timeout") else RelayFailure
    if http_status == 400:
        if message in _SIGNATURE_TEXTS:
            return SignatureRejected
        if message in _ROLE_TEXTS:
            return WrongNodeRole
        return InvalidRequest
    if errcode == -3:
        # add/delete/modify relayed to the manager answer 200/-3 "verify sign failed"
        # (node_request_service.cpp:7392-7400): still a rejected signature.
        if message in _SIGNATURE_TEXTS:
            return SignatureRejected
        if message.startswith(_AUTHORITY_PREFIX):
            return AuthorityRefused
        return NodeRejected
    return OperationFailed
