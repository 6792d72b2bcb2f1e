import logging

from core.privacy import install_log_masking


def test_every_log_record_is_masked_whoever_handles_it(caplog):
    install_log_masking()
    install_log_masking()  # idempotent
    caplog.set_level("INFO")
    logging.getLogger("anything").info("called %s for %s", "+819012345678", "hanako@example.jp")
    [record] = caplog.records
    assert record.getMessage() == "called +81******5678 for h*****@example.jp"
