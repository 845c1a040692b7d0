"""The vault as a typed dependency (built once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tripguard.vault.service import Vault


async def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


AppVault = Annotated[Vault, Depends(_vault)]
