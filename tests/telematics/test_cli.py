"""`tripguard worker monitor` runs on the process the shell composes: telematics asks the one registered site
builder (the app factory, registered by `tripguard.cli`) and never imports the shell."""

from __future__ import annotations

import pytest

from tripguard import cli as shell_cli
from tripguard.telematics import cli


def test_the_shell_registers_the_one_site_builder() -> None:
    assert cli._site_builders == [shell_cli._monitor_site]
    cli.register_site(shell_cli._monitor_site)  # registering again changes nothing
    assert cli._site_builders == [shell_cli._monitor_site]


def test_a_worker_without_a_registered_site_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_site_builders", [])
    with pytest.raises(RuntimeError, match="one registered site builder"):
        cli._site(None)  # type: ignore[arg-type]
