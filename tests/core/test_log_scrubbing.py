"""A 500 logs the route's template and the error's type: never a share token, never a statement's values."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tripguard.core.db import make_engine


def test_a_500_on_a_share_link_logs_no_token(app, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                             caplog: pytest.LogCaptureFixture) -> None:
    from tripguard.safety import shares

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(shares, "view", broken)
    token = "SECRET-share-token-0123456789"
    logging.getLogger("tripguard").addHandler(caplog.handler)  # ours does not propagate to the root
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get(f"/s/{token}/position").status_code == 500
    finally:
        logging.getLogger("tripguard").removeHandler(caplog.handler)
    logged = [(r.getMessage(), getattr(r, "path", "")) for r in caplog.records]
    assert logged and all(token not in message and token not in str(path) for message, path in logged)
    assert any(path == "/s/{token}/position" for _, path in logged)


def test_statement_values_stay_out_of_error_text(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection, pytest.raises(Exception) as failure:
            connection.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "13800001234-SECRET"})
        assert "13800001234-SECRET" not in str(failure.value)
    finally:
        engine.dispose()
