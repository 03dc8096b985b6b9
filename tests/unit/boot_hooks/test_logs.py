"""The last guard against secrets in logs, and device-code masking."""

import logging

import pytest

from boot_hooks.logs import (
    RECENT_LINES,
    ROTATE_BYTES,
    SecretFilter,
    attach_rotating_log,
    mask_device_id,
    recent_log_lines,
    setup_logging,
)


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


SECRET = "Sup3rS3cretKey"


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def test_the_last_lines_are_kept_in_memory_and_scrubbed(restore_root_logging):
    secret_filter = setup_logging(False)
    log = logging.getLogger("boot_hooks.test")
    for n in range(RECENT_LINES + 50):
        log.info("line %d", n)
    log.info("key %s", SECRET)  # logged before the secret is known...
    secret_filter.add(SECRET)  # ...scrubbed on read all the same
    lines = recent_log_lines()
    assert len(lines) == RECENT_LINES
    assert lines[0].endswith("line 51") and lines[-1].endswith("key ***")
    assert " bm-hook INFO " in lines[-1]
    assert not any(SECRET in line for line in lines)


def test_the_rotating_log_is_filtered_and_bounded(tmp_path, restore_root_logging):
    secret_filter = setup_logging(False)
    secret_filter.add(SECRET)
    path = tmp_path / "bm-hook.log"
    assert attach_rotating_log(str(path), secret_filter)
    log = logging.getLogger("boot_hooks.test")
    log.info("the key is %s", SECRET)
    big = "x" * 1000
    for _ in range(4000):  # ~4 MB: three rotations
        log.info(big)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bm-hook.log", "bm-hook.log.1", "bm-hook.log.2", "bm-hook.log.3"]
    assert all(p.stat().st_size <= ROTATE_BYTES for p in tmp_path.iterdir())
    assert not any(SECRET in p.read_text() for p in tmp_path.iterdir())


def test_every_handler_carries_the_secret_filter(tmp_path, restore_root_logging):
    secret_filter = setup_logging(True, str(tmp_path / "run.log"))
    attach_rotating_log(str(tmp_path / "bm-hook.log"), secret_filter)
    handlers = logging.getLogger().handlers
    assert len(handlers) == 4
    assert all(secret_filter in handler.filters for handler in handlers)


def test_an_unwritable_rotating_log_is_a_warning(tmp_path, restore_root_logging):
    secret_filter = setup_logging(False)
    (tmp_path / "file").write_text("x")
    assert not attach_rotating_log(str(tmp_path / "file" / "bm-hook.log"), secret_filter)
    assert any("cannot write the log file" in line for line in recent_log_lines())
