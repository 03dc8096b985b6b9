"""The last guard against secrets in logs, and device-code masking."""

import logging

from boot_hooks.logs import SecretFilter, mask_device_id


def make_record(msg, *args, exc_info=None):
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


def test_registered_secrets_are_scrubbed_from_messages_and_args():
    flt = SecretFilter()
    flt.add("Sup3rS3cret")
    record = make_record("code %s and %s", "Sup3rS3cret", "public")
    assert flt.filter(record)
    assert record.getMessage() == "code *** and public"


def test_short_strings_are_not_treated_as_secrets():
    flt = SecretFilter()
    flt.add("")
    flt.add("abc")
    record = make_record("abc is fine")
    flt.filter(record)
    assert record.getMessage() == "abc is fine"


def test_tracebacks_are_scrubbed_too():
    flt = SecretFilter()
    flt.add("K3yMaterial99")
    try:
        raise RuntimeError("boom K3yMaterial99")
    except RuntimeError:
        import sys
        record = make_record("failed", exc_info=sys.exc_info())
    flt.filter(record)
    assert "K3yMaterial99" not in record.exc_text
    assert "boom ***" in record.exc_text


def test_mask_device_id():
    assert mask_device_id("123456789") == "...6789"
    assert mask_device_id("1234") == "****"
    assert mask_device_id("") == "(none)"
