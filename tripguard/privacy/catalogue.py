"""The data catalogue: every personal field declared once, with its category and allowed purposes.

Categories follow the fideslang taxonomy's names. A field is declared with `personal_column()`;
the catalogue is read back from the ORM metadata, so it cannot drift from the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import LargeBinary, MetaData, String
from sqlalchemy.orm import mapped_column

from tripguard.core.i18n import N_
from tripguard.security.permissions import Purpose
from tripguard.vault import masking
from tripguard.vault.service import BLIND_INDEX_INFO


class Category(StrEnum):
    NAME = "user.name"
    PHONE = "user.contact.phone_number"
    EMAIL = "user.contact.email"
    ADDRESS = "user.contact.address"
    GOVERNMENT_ID = "user.government_id"
    BANK_ACCOUNT = "user.financial.bank_account"
    NOTE = "user.content.free_text"
    LOCATION = "user.location"  # trajectories, pickup and drop-off: sensitive under PIPL Art. 28
    # What a background check found (criminal record, driving points, credit) and the papers sent to
    # dispute it: sensitive under PIPL Art. 28, read for screening only.
    BACKGROUND = "user.criminal_history"
    # A face (a photo matched to identify the person): biometric, sensitive under PIPL Art. 28.
    FACE = "user.biometric.face"
    # A credit evaluation (征信): financial, sensitive under PIPL Art. 28.
    CREDIT = "user.financial.credit"


# Sensitive personal information (PIPL Art. 28; GB/T 35273 Annex B): processed only with a separate
# consent (Art. 29) after a notice that names it (Art. 30).
SENSITIVE = frozenset({Category.GOVERNMENT_ID, Category.BANK_ACCOUNT, Category.LOCATION, Category.BACKGROUND,
                       Category.FACE, Category.CREDIT})


@dataclass(frozen=True)
class CategoryRule:
    mask: Callable[[str], str]
    purposes: frozenset[Purpose]
    description: str
    example: str  # fictional, to show the mask in the catalogue


_EVERY_PURPOSE = frozenset(Purpose)
RULES: dict[Category, CategoryRule] = {
    Category.NAME: CategoryRule(masking.mask_name, _EVERY_PURPOSE, N_("a person's name"), "王小明"),
    Category.PHONE: CategoryRule(masking.mask_phone, _EVERY_PURPOSE - {Purpose.SCREENING},
                                 N_("a phone number to reach the person"), "13800001234"),
    Category.EMAIL: CategoryRule(masking.mask_email, frozenset({Purpose.SUPPORT, Purpose.SUBJECT_REQUEST,
                                                                Purpose.BREACH_RESPONSE}),
                                 N_("an e-mail address"), "zhangsan@example.com"),
    Category.ADDRESS: CategoryRule(masking.mask_address, frozenset({Purpose.DELIVERY, Purpose.EMERGENCY,
                                                                    Purpose.INVESTIGATION,
                                                                    Purpose.SUBJECT_REQUEST}),
                                   N_("a postal or delivery address"), "北京市朝阳区建国路88号5号楼1201室"),
    Category.GOVERNMENT_ID: CategoryRule(masking.mask_id_number, frozenset({Purpose.SCREENING,
                                                                           Purpose.INVESTIGATION,
                                                                           Purpose.SUBJECT_REQUEST}),
                                         N_("a resident ID or passport number"), "11010519491231002X"),
    Category.BANK_ACCOUNT: CategoryRule(masking.mask_bank_card, frozenset({Purpose.SUBJECT_REQUEST}),
                                        N_("a bank card or account number"), "6222021234567890"),
    Category.NOTE: CategoryRule(masking.mask_free_text, _EVERY_PURPOSE, N_("free text a person wrote"),
                                "请联系 13800001234"),
    Category.LOCATION: CategoryRule(masking.mask_location, frozenset({Purpose.EMERGENCY, Purpose.INVESTIGATION,
                                                                     Purpose.SUBJECT_REQUEST}),
                                    N_("where a person was: a trip's route, positions, pickup and drop-off"),
                                    "-8.610472,41.140321"),
    Category.BACKGROUND: CategoryRule(masking.mask_withheld, frozenset({Purpose.SCREENING, Purpose.SUBJECT_REQUEST,
                                                                       Purpose.LEGAL_CLAIMS}),
                                      N_("what a background check found, and the papers sent to dispute it"),
                                      '{"records": ["fraud"]}'),
    Category.FACE: CategoryRule(masking.mask_withheld, frozenset({Purpose.SCREENING, Purpose.SUBJECT_REQUEST}),
                                N_("a face: the photo taken at screening, matched at shift start"), "(a photo)"),
    Category.CREDIT: CategoryRule(masking.mask_withheld, frozenset({Purpose.SCREENING, Purpose.SUBJECT_REQUEST,
                                                                   Purpose.LEGAL_CLAIMS}),
                                  N_("a credit evaluation asked for screening"), '{"credit_score": 700}'),
}


class Key(StrEnum):
    """Whose vault key seals a field, so who can ask for it and who is registered by its first write."""

    PERSON = "person"  # the person's own: `subject_column` names them; they are a data subject from this write
    TRIP = "trip"  # the trip's: the export of its driver and passenger lists the trip (positions are evidence)
    CASE = "case"  # a case's: `person_column` names the person it is about, whose export opens it
    SYSTEM = "system"  # a system key no person owns (a monitor's working state)
    ANY = "any"  # per row, a person's key or a trip's or case's (free text): exported when it names a person


@dataclass(frozen=True)
class PersonalField:
    table: str
    column: str
    category: Category
    subject_column: str  # the column naming the vault key that seals it: the person's id, or a trip's or case's
    # When that key is not the person's own (an SOS position sealed under its case's key): the column naming the
    # person the value is about, so their export still finds it.
    person_column: str | None = None
    key: Key = Key.PERSON
    # The kind of person the key column names (customer, merchant, courier, staff), when the table says it:
    # a first write registers them as that kind. None: the domain registers them with their kind itself.
    person: str | None = None
    # Someone else's data the person gave (their emergency contact's phone): in their export, but never
    # used to reach them.
    third_party: bool = False

    @property
    def exported(self) -> bool:
        """Opened in the export of the person `about` names (an access request, PIPL Art. 45)."""
        return self.key in (Key.PERSON, Key.ANY) or self.person_column is not None

    @property
    def rule(self) -> CategoryRule:
        return RULES[self.category]

    @property
    def about(self) -> str:
        """The column naming the person this value is about."""
        return self.person_column or self.subject_column


PERSONAL_INFO_KEY = "tripguard.personal"


def personal_column(category: Category, *, subject_column: str = "id", person_column: str | None = None,
                    key: Key = Key.PERSON, person: str | None = None, third_party: bool = False) -> Any:
    """A sealed column: bytes the vault wrote. The vault is the only way a value gets in or out.

    `key` says whose key seals it (a person's, unless said otherwise); `person` the kind of person a
    first write registers; `third_party` that the value is about someone the person named.
    How long values are kept is decided by the retention rules (`privacy.retention`), per kind of data.
    """
    spec: dict[str, object] = {"category": category, "subject_column": subject_column, "key": key}
    if person_column is not None:
        spec["person_column"] = person_column
    if person is not None:
        spec["person"] = person
    if third_party:
        spec["third_party"] = True
    return mapped_column(LargeBinary, nullable=True, info={PERSONAL_INFO_KEY: spec})


def blind_index_column(*, kind: str, source: str) -> Any:
    """A blind index of the sealed column `source` (the keyring's index key over its value normalised
    for `kind`, see `privacy.indexes`), for equality search. Anyone holding the keyring can test a
    guess against it, so a data backup leaves it out and a restore rebuilds it from the fields that
    still open: an erased person gets none back."""
    return mapped_column(String(64), index=True, info={BLIND_INDEX_INFO: {"kind": kind, "source": source}})


def catalogue(metadata: MetaData) -> list[PersonalField]:
    fields = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            spec = column.info.get(PERSONAL_INFO_KEY)
            if spec:
                fields.append(PersonalField(table=table.name, column=column.name, **spec))
    return fields
