"""JSON as the node's rapidjson sees it: same errors, same offsets, same writer.

- ``parse`` follows ``rapidjson/reader.h`` with default flags: the text stops at the
  first NUL (the node parses ``body.c_str()``), no comments, no trailing commas, no
  NaN, no UTF-8 validation; duplicate keys keep the FIRST value (``FindMember``).
  Errors carry the English message of ``error/en.h`` and the byte offset.
- Integers stay ``int`` and anything with ``.``/``e`` becomes ``float``; ``is_uint``
  tells whether rapidjson would say ``IsUint()``.
- ``pretty`` reproduces ``PrettyWriter`` (4-space indent, ``"key": value``), which
  the node uses for its own error replies (``http_server.cpp:152-175``).

Strings are decoded with ``surrogateescape`` so that invalid UTF-8 round-trips to the
same bytes when the emulator writes it back out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JsonParseError", "is_uint", "parse", "pretty", "quote"]

_WS = b" \t\n\r"
_ESCAPES = {
    ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b",
    ord("f"): "\f", ord("n"): "\n", ord("r"): "\r", ord("t"): "\t",
}
_HEX = b"0123456789abcdefABCDEF"

EMPTY = "The document is empty."
NOT_SINGULAR = "The document root must not be followed by other values."
VALUE_INVALID = "Invalid value."
MISS_NAME = "Missing a name for object member."
MISS_COLON = "Missing a colon after a name of object member."
MISS_COMMA_CURLY = "Missing a comma or '}' after an object member."
MISS_COMMA_SQUARE = "Missing a comma or ']' after an array element."
BAD_HEX = "Incorrect hex digit after \\u escape in string."
BAD_SURROGATE = "The surrogate pair in string is invalid."
BAD_ESCAPE = "Invalid escape character in string."
MISS_QUOTE = "Missing a closing quotation mark in string."
BAD_ENCODING = "Invalid encoding in string."
TOO_BIG = "Number too big to be stored in double."
MISS_FRACTION = "Miss fraction part in number."
MISS_EXPONENT = "Miss exponent in number."
UNSPECIFIC = "Unspecific syntax error."


class JsonParseError(Exception):
    """rapidjson refused the text: ``message`` and byte ``offset`` as it reports them."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message}({offset})")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else 0

    def skip_ws(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _WS:
            self.pos += 1

    def consume(self, ch: str) -> bool:
        if self.peek() == ord(ch):
            self.pos += 1
            return True
        return False

    def fail(self, message: str, offset: int | None = None) -> JsonParseError:
        return JsonParseError(message, self.pos if offset is None else offset)

    def value(self) -> Any:
        ch = self.peek()
        if ch == ord("n"):
            return self.literal("ull", None)
        if ch == ord("t"):
            return self.literal("rue", True)
        if ch == ord("f"):
            return self.literal("alse", False)
        if ch == ord('"'):
            return self.string()
        if ch == ord("{"):
            return self.obj()
        if ch == ord("["):
            return self.array()
        return self.number()

    def literal(self, rest: str, result: Any) -> Any:
        self.pos += 1
        for ch in rest:
            if not self.consume(ch):
                raise self.fail(VALUE_INVALID)
        return result

    def obj(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        self.skip_ws()
        if self.consume("}"):
            return result
        while True:
            if self.peek() != ord('"'):
                raise self.fail(MISS_NAME)
            key = self.string()
            self.skip_ws()
            if not self.consume(":"):
                raise self.fail(MISS_COLON)
            self.skip_ws()
            item = self.value()
            result.setdefault(key, item)  # FindMember returns the first duplicate
            self.skip_ws()
            if self.consume(","):
                self.skip_ws()
            elif self.consume("}"):
                return result
            else:
                raise self.fail(MISS_COMMA_CURLY)

    def array(self) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        self.skip_ws()
        if self.consume("]"):
            return result
        while True:
            result.append(self.value())
            self.skip_ws()
            if self.consume(","):
                self.skip_ws()
            elif self.consume("]"):
                return result
            else:
                raise self.fail(MISS_COMMA_SQUARE)

    def string(self) -> str:
        self.pos += 1
        out = bytearray()
        while True:
            ch = self.peek()
            if ch == ord("\\"):
                self.escape(out)
            elif ch == ord('"'):
                self.pos += 1
                return out.decode("utf-8", errors="surrogateescape")
            elif ch < 0x20:
                raise self.fail(MISS_QUOTE if ch == 0 else BAD_ENCODING)
            else:
                out.append(ch)
                self.pos += 1

    def escape(self, out: bytearray) -> None:
        start = self.pos
        self.pos += 1
        ch = self.peek()
        if ch in _ESCAPES:
            self.pos += 1
            out += _ESCAPES[ch].encode()
            return
        if ch != ord("u"):
            raise self.fail(BAD_ESCAPE, start)
        self.pos += 1
        code = self.hex4(start)
        if 0xD800 <= code <= 0xDBFF:
            if not (self.consume("\\") and self.consume("u")):
                raise self.fail(BAD_SURROGATE, start)
            low = self.hex4(start)
            if not 0xDC00 <= low <= 0xDFFF:
                raise self.fail(BAD_SURROGATE, start)
            code = (((code - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
        # rapidjson encodes a lone low surrogate as 3 raw bytes; so do we.
        out += chr(code).encode("utf-8", errors="surrogatepass")

    def hex4(self, start: int) -> int:
        digits = self.data[self.pos:self.pos + 4]
        for i in range(4):
            if i >= len(digits) or digits[i] not in _HEX:
                self.pos += i
                raise self.fail(BAD_HEX, start)
        self.pos += 4
        return int(digits, 16)

    def number(self) -> int | float:
        start = self.pos
        minus = self.consume("-")
        if not ord("0") <= self.peek() <= ord("9"):
            raise self.fail(VALUE_INVALID)
        if not self.consume("0"):
            self.digits()
        is_float = False
        if self.consume("."):
            if not ord("0") <= self.peek() <= ord("9"):
                raise self.fail(MISS_FRACTION)
            self.digits()
            is_float = True
        if self.consume("e") or self.consume("E"):
            if not self.consume("+"):
                self.consume("-")
            if not ord("0") <= self.peek() <= ord("9"):
                raise self.fail(MISS_EXPONENT)
            self.digits()
            is_float = True
        text = self.data[start:self.pos].decode("ascii")
        return self.finish_number(text, start, minus, is_float)

    def finish_number(self, text: str, start: int, minus: bool, is_float: bool) -> int | float:
        value = int(text) if not is_float else 0
        if not is_float and -(2**63) <= value < 2**64:
            return value
        as_float = float(text)
        if as_float in (float("inf"), float("-inf")):
            raise self.fail(TOO_BIG, start)
        return as_float

    def digits(self) -> None:
        while ord("0") <= self.peek() <= ord("9"):
            self.pos += 1


def parse(data: bytes) -> Any:
    """Parse ``data`` as rapidjson's ``Document::Parse(c_str)`` would, or raise."""
    nul = data.find(b"\0")
    reader = _Reader(data if nul < 0 else data[:nul])
    reader.skip_ws()
    if reader.peek() == 0:
        raise reader.fail(EMPTY)
    try:
        result = reader.value()
    except RecursionError:
        # The node would overflow its own stack here; we refuse instead.
        raise reader.fail(UNSPECIFIC) from None
    reader.skip_ws()
    if reader.peek() != 0:
        raise reader.fail(NOT_SINGULAR)
    return result


def is_uint(value: Any) -> bool:
    """Tell whether rapidjson's ``IsUint()`` holds for a parsed value."""
    return type(value) is int and 0 <= value <= 0xFFFFFFFF


def quote(text: str) -> str:
    """Return ``text`` as a JSON string literal the way rapidjson's Writer escapes it."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20:
            out.append(_control_escape(code))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _control_escape(code: int) -> str:
    named = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
    return named.get(code, f"\\u00{code:02X}")


def pretty(value: Any, indent: int = 0) -> str:
    """Serialize like rapidjson's PrettyWriter (4 spaces, ``"key": value``)."""
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{quote(k)}: {pretty(v, indent + 4)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [pad + pretty(v, indent + 4) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote(value)
    return str(value)
