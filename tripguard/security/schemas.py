"""Request and response bodies of the security API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tripguard.core.types import CleanStr
from tripguard.security.credentials import MIN_PASSWORD_LENGTH
from tripguard.security.permissions import ApiKeyScope, Permission, Role, StaffRole

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
Username = Field(min_length=3, max_length=64, pattern=USERNAME_PATTERN)


TOTP_CODE = r"^\s*[0-9]{6}\s*$"
TICKET = r"^[A-Za-z0-9_.-]+$"


class SignInRequest(BaseModel):
    username: CleanStr = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, pattern=TOTP_CODE, max_length=16)


class TotpRequest(BaseModel):
    ticket: str = Field(min_length=1, max_length=2048, pattern=TICKET)
    code: str = Field(pattern=TOTP_CODE, max_length=16)


class SignInResult(BaseModel):
    status: Literal["signed_in", "totp_required", "totp_enrolment_required"]
    ticket: str | None = None
    totp_uri: str | None = None
    staff: StaffRead | None = None


class StaffRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    display_name: str
    roles: list[Role]
    totp_enrolled: bool
    locked: bool
    disabled: bool
    created_at: datetime


class StaffCreate(BaseModel):
    username: str = Username
    display_name: CleanStr = Field(min_length=1, max_length=128)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class RolesUpdate(BaseModel):
    roles: list[StaffRole] = Field(max_length=len(StaffRole))


class WhoAmI(BaseModel):
    kind: Literal["staff", "api_key", "subject"]
    id: str
    name: str
    roles: list[Role]
    permissions: list[Permission]


class ApiKeyCreate(BaseModel):
    name: CleanStr = Field(min_length=1, max_length=128)
    scopes: list[ApiKeyScope] = Field(min_length=1, max_length=len(ApiKeyScope))


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    scopes: list[Permission]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="The full key, shown only in this response.")


SignInResult.model_rebuild()
