"""The self-assessment's erasure-journal control: fails while the journal cannot be trusted, and for a
quarter after anyone went on without it."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import TEST_ACTOR
from tripguard.audit import service as audit
from tripguard.core.cli_support import cli_session
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.reporting.security_check import assess
from tripguard.vault.journal import HEAD_FILE
from tripguard.vault.keys import build_vault, key_source


def journal_control(settings: Settings, days_later: int = 0) -> tuple[bool, str]:
    with cli_session(settings) as session:
        [evidence] = [e for c, e in assess(session, settings=settings, keys=key_source(settings),
                                           now=utcnow() + timedelta(days=days_later))
                      .results if c.key == "keys.erasure_journal"]
    return evidence.passed, evidence.text()


def test_the_control_follows_the_journal_and_its_overrides(cli_site: Settings) -> None:
    build_vault(cli_site)  # as the service does when it starts: a new key folder gets its journal
    passed, text = journal_control(cli_site)
    assert passed and "holds 0 erasures and verifies" in text

    head = cli_site.key_dir / HEAD_FILE
    kept = head.read_bytes()
    head.unlink()
    passed, text = journal_control(cli_site)
    assert not passed and "is missing" in text and "--accept-journal-loss" in text
    head.write_bytes(kept)

    with cli_session(cli_site) as session:
        audit.record(session, actor=TEST_ACTOR, action="backup.restore.journal_override", target_type="backup",
                     target_id="site.tgbk", details={"reason": "disk lost", "head_key": 3, "journal_count": None})
    passed, text = journal_control(cli_site)
    assert not passed and "backup.restore.journal_override" in text and "disk lost" in text
    assert "erase them again" in text
    assert journal_control(cli_site, days_later=93)[0]  # a quarter later
