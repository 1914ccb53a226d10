"""Field catalogues of the emulated CRM entities (as `crm.*.fields` describes them).

Each entity lists its fields in the portal's order with the type and flags. The type drives how
a written value is stored (ints, floats, Y/N, ISO datetimes, strings) and how a filter value is
compared. Values are always read back as strings (legacy CRM style) or null.
"""
from __future__ import annotations

from dataclasses import dataclass, field

INT_TYPES = frozenset({"integer", "user", "crm_company", "crm_contact", "crm_lead", "crm_entity"})
DATE_TYPES = frozenset({"datetime", "date"})
MULTIFIELD_TYPES = ("PHONE", "EMAIL", "WEB", "IM", "LINK")


@dataclass(frozen=True)
class FieldDef:
    type: str = "string"
    title: str = ""
    required: bool = False
    read_only: bool = False
    immutable: bool = False
    multiple: bool = False
    status_type: str | None = None

    @property
    def is_multifield(self) -> bool:
        return self.type == "crm_multifield"

    @property
    def is_scalar(self) -> bool:
        """Returned by `select *` (not multiple, not a multifield)."""
        return not self.multiple and not self.is_multifield

    def describe(self, name: str) -> dict:
        out = {"type": self.type, "isRequired": self.required, "isReadOnly": self.read_only,
               "isImmutable": self.immutable, "isMultiple": self.multiple or self.is_multifield,
               "isDynamic": False, "title": self.title or name}
        if self.status_type:
            out["statusType"] = self.status_type
        return out


def _f(type_: str = "string", title: str = "", **kw) -> FieldDef:
    return FieldDef(type_, title, **kw)


RO = {"read_only": True}

_ADDRESS = {
    "ADDRESS": _f(title="Address"), "ADDRESS_2": _f(title="Address (line 2)"),
    "ADDRESS_CITY": _f(title="City"), "ADDRESS_POSTAL_CODE": _f(title="Zip"),
    "ADDRESS_REGION": _f(title="Region"), "ADDRESS_PROVINCE": _f(title="State / Province"),
    "ADDRESS_COUNTRY": _f(title="Country"), "ADDRESS_COUNTRY_CODE": _f(title="Country Code"),
}
_ORIGIN = {
    "ORIGINATOR_ID": _f(title="External source"), "ORIGIN_ID": _f(title="Item ID in data source"),
    "ORIGIN_VERSION": _f(title="Original version"),
}
_UTM = {name: _f(title=name) for name in ("UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM")}
_MULTI = {
    "PHONE": _f("crm_multifield", "Phone"), "EMAIL": _f("crm_multifield", "E-mail"),
    "WEB": _f("crm_multifield", "Website"), "IM": _f("crm_multifield", "Messenger"),
    "LINK": _f("crm_multifield", "Link"),
}
_AUDIT = {
    "CREATED_BY_ID": _f("user", "Created by", **RO), "MODIFY_BY_ID": _f("user", "Modified by", **RO),
    "DATE_CREATE": _f("datetime", "Created on", **RO), "DATE_MODIFY": _f("datetime", "Modified on", **RO),
}

COMPANY_FIELDS: dict[str, FieldDef] = {
    "ID": _f("integer", "ID", **RO),
    "TITLE": _f(title="Company Name", required=True),
    "COMPANY_TYPE": _f("crm_status", "Company type", status_type="COMPANY_TYPE"),
    "LOGO": _f("file", "Logo"),
    **_ADDRESS,
    "ADDRESS_LEGAL": _f(title="Legal address"),
    "REG_ADDRESS": _f(title="Legal address"), "REG_ADDRESS_2": _f(title="Legal address (line 2)"),
    "REG_ADDRESS_CITY": _f(title="Legal address city"), "REG_ADDRESS_POSTAL_CODE": _f(title="Legal address zip"),
    "REG_ADDRESS_REGION": _f(title="Legal address region"),
    "REG_ADDRESS_PROVINCE": _f(title="Legal address state / province"),
    "REG_ADDRESS_COUNTRY": _f(title="Legal address country"),
    "REG_ADDRESS_COUNTRY_CODE": _f(title="Legal address country code"),
    "BANKING_DETAILS": _f(title="Payment details"),
    "INDUSTRY": _f("crm_status", "Industry", status_type="INDUSTRY"),
    "EMPLOYEES": _f("crm_status", "Employees", status_type="EMPLOYEES_LIST"),
    "CURRENCY_ID": _f("crm_currency", "Currency"),
    "REVENUE": _f("double", "Annual income"),
    "OPENED": _f("char", "Available to everyone"),
    "COMMENTS": _f(title="Comment"),
    "HAS_PHONE": _f("char", "Has phone", **RO), "HAS_EMAIL": _f("char", "Has email", **RO),
    "HAS_IMOL": _f("char", "Has Open Channel", **RO),
    "IS_MY_COMPANY": _f("char", "My Company"),
    "ASSIGNED_BY_ID": _f("user", "Responsible person"),
    **_AUDIT,
    "CONTACT_ID": _f("crm_contact", "Contact", multiple=True),
    "LEAD_ID": _f("crm_lead", "Lead", **RO),
    **_ORIGIN,
    **_UTM,
    "LAST_ACTIVITY_TIME": _f("datetime", "Last activity", **RO),
    **_MULTI,
}

CONTACT_FIELDS: dict[str, FieldDef] = {
    "ID": _f("integer", "ID", **RO),
    "HONORIFIC": _f("crm_status", "Salutation", status_type="HONORIFIC"),
    "NAME": _f(title="First name"),
    "SECOND_NAME": _f(title="Second name"),
    "LAST_NAME": _f(title="Last name"),
    "PHOTO": _f("file", "Photo"),
    "BIRTHDATE": _f("date", "Date of birth"),
    "TYPE_ID": _f("crm_status", "Contact type", status_type="CONTACT_TYPE"),
    "SOURCE_ID": _f("crm_status", "Source", status_type="SOURCE"),
    "SOURCE_DESCRIPTION": _f(title="Source information"),
    "POST": _f(title="Position"),
    **_ADDRESS,
    "COMMENTS": _f(title="Comment"),
    "OPENED": _f("char", "Available to everyone"),
    "EXPORT": _f("char", "Included in export"),
    "HAS_PHONE": _f("char", "Has phone", **RO), "HAS_EMAIL": _f("char", "Has email", **RO),
    "HAS_IMOL": _f("char", "Has Open Channel", **RO),
    "ASSIGNED_BY_ID": _f("user", "Responsible person"),
    **_AUDIT,
    "COMPANY_ID": _f("crm_company", "Company"),
    "COMPANY_IDS": _f("crm_company", "Companies", multiple=True),
    "LEAD_ID": _f("crm_lead", "Lead", **RO),
    **_ORIGIN,
    "FACE_ID": _f("integer", "Face ID"),
    **_UTM,
    "LAST_ACTIVITY_TIME": _f("datetime", "Last activity", **RO),
    **_MULTI,
}

_RQ_STRINGS = (
    "RQ_NAME", "RQ_FIRST_NAME", "RQ_LAST_NAME", "RQ_SECOND_NAME", "RQ_COMPANY_ID", "RQ_COMPANY_NAME",
    "RQ_COMPANY_FULL_NAME", "RQ_COMPANY_REG_DATE", "RQ_DIRECTOR", "RQ_ACCOUNTANT", "RQ_CEO_NAME",
    "RQ_CEO_WORK_POS", "RQ_CONTACT", "RQ_EMAIL", "RQ_PHONE", "RQ_FAX", "RQ_IDENT_TYPE", "RQ_IDENT_DOC",
    "RQ_IDENT_DOC_SER", "RQ_IDENT_DOC_NUM", "RQ_IDENT_DOC_PERS_NUM", "RQ_IDENT_DOC_DATE",
    "RQ_IDENT_DOC_ISSUED_BY", "RQ_IDENT_DOC_DEP_CODE", "RQ_INN", "RQ_KPP", "RQ_USRLE", "RQ_IFNS", "RQ_OGRN",
    "RQ_OGRNIP", "RQ_OKPO", "RQ_OKTMO", "RQ_OKVED", "RQ_EDRPOU", "RQ_DRFO", "RQ_KBE", "RQ_IIN", "RQ_BIN",
    "RQ_ST_CERT_SER", "RQ_ST_CERT_NUM", "RQ_ST_CERT_DATE", "RQ_VAT_PAYER", "RQ_VAT_ID", "RQ_VAT_CERT_SER",
    "RQ_VAT_CERT_NUM", "RQ_VAT_CERT_DATE", "RQ_RESIDENCE_COUNTRY", "RQ_BASE_DOC", "RQ_REGON", "RQ_KRS",
    "RQ_PESEL", "RQ_LEGAL_FORM", "RQ_SIRET", "RQ_SIREN", "RQ_CAPITAL", "RQ_RCS", "RQ_CNPJ", "RQ_STATE_REG",
    "RQ_MNPL_REG", "RQ_CPF",
)

REQUISITE_FIELDS: dict[str, FieldDef] = {
    "ID": _f("integer", "ID", **RO),
    "ENTITY_TYPE_ID": _f("integer", "Parent entity type", required=True, immutable=True),
    "ENTITY_ID": _f("integer", "Parent entity", required=True, immutable=True),
    "PRESET_ID": _f("integer", "Template", required=True),
    **_AUDIT,
    "NAME": _f(title="Name", required=True),
    "CODE": _f(title="Symbolic code"), "XML_ID": _f(title="External key"),
    "ORIGINATOR_ID": _f(title="External source"),
    "ACTIVE": _f("char", "Active"), "ADDRESS_ONLY": _f("char", "Address only"),
    "SORT": _f("integer", "Sort"),
    **{name: _f(title=name) for name in _RQ_STRINGS},
}

BANKDETAIL_FIELDS: dict[str, FieldDef] = {
    "ID": _f("integer", "ID", **RO),
    "ENTITY_ID": _f("integer", "Requisite", required=True, immutable=True),
    "COUNTRY_ID": _f("integer", "Country"),
    **_AUDIT,
    "NAME": _f(title="Name", required=True),
    "CODE": _f(title="Symbolic code"), "XML_ID": _f(title="External key"),
    "ACTIVE": _f("char", "Active"), "SORT": _f("integer", "Sort"),
    **{name: _f(title=name) for name in (
        "RQ_BANK_NAME", "RQ_BANK_CODE", "RQ_BANK_ADDR", "RQ_BANK_ROUTE_NUM", "RQ_BIK", "RQ_MFO", "RQ_ACC_NAME",
        "RQ_ACC_NUM", "RQ_ACC_TYPE", "RQ_IIK", "RQ_ACC_CURRENCY", "RQ_COR_ACC_NUM", "RQ_IBAN", "RQ_SWIFT",
        "RQ_BIC", "RQ_CODEB", "RQ_CODEG", "RQ_RIB", "RQ_AGENCY_NAME")},
    "COMMENTS": _f(title="Comment"),
    "ORIGINATOR_ID": _f(title="External source"),
}

PRESET_FIELDS: dict[str, FieldDef] = {
    "ID": _f("integer", "ID", **RO),
    "ENTITY_TYPE_ID": _f("integer", "Entity type", required=True),
    "COUNTRY_ID": _f("integer", "Country", required=True),
    "NAME": _f(title="Name", required=True),
    "XML_ID": _f(title="External key"),
    "ACTIVE": _f("char", "Active"), "SORT": _f("integer", "Sort"),
    **_AUDIT,
}

ADDRESS_FIELDS: dict[str, FieldDef] = {
    "TYPE_ID": _f("integer", "Address type", required=True, immutable=True),
    "ENTITY_TYPE_ID": _f("integer", "Parent entity type", required=True, immutable=True),
    "ENTITY_ID": _f("integer", "Parent entity", required=True, immutable=True),
    "ADDRESS_1": _f(title="Street, building"), "ADDRESS_2": _f(title="Suite / Apartment"),
    "CITY": _f(title="City"), "POSTAL_CODE": _f(title="Zip"), "REGION": _f(title="Region"),
    "PROVINCE": _f(title="State / Province"), "COUNTRY": _f(title="Country"),
    "COUNTRY_CODE": _f(title="Country code"), "LOC_ADDR_ID": _f("integer", "Location address ID"),
    "ANCHOR_TYPE_ID": _f("integer", "Anchor entity type", **RO), "ANCHOR_ID": _f("integer", "Anchor entity", **RO),
}

# The three fixed Russian templates (reference §6.7): ID, XML_ID, name.
RU_PRESETS = (
    (1, "#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#", "Организация"),
    (2, "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#", "ИП"),
    (3, "#CRM_REQUISITE_PRESET_DEF_RU_PERSON#", "Физ. лицо"),
)

MULTIFIELD_DEFAULT_TYPE = {"PHONE": "WORK", "EMAIL": "WORK", "WEB": "WORK", "IM": "OTHER", "LINK": "USER"}


@dataclass(frozen=True)
class EntityKind:
    """One storage table and its field catalogue."""

    name: str                     # table name and stats key
    fields: dict[str, FieldDef]
    user_fields: bool = True      # accepts UF_CRM_* fields
    has_id: bool = True           # shows an ID (addresses do not)
    importable: frozenset[str] = field(default_factory=frozenset)  # RO fields settable with params[IMPORT]=Y


COMPANY = EntityKind("company", COMPANY_FIELDS,
                     importable=frozenset({"DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "MODIFY_BY_ID"}))
CONTACT = EntityKind("contact", CONTACT_FIELDS,
                     importable=frozenset({"DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "MODIFY_BY_ID"}))
REQUISITE = EntityKind("requisite", REQUISITE_FIELDS)
BANKDETAIL = EntityKind("bankdetail", BANKDETAIL_FIELDS, user_fields=False)
PRESET = EntityKind("preset", PRESET_FIELDS, user_fields=False)
ADDRESS = EntityKind("address", ADDRESS_FIELDS, user_fields=False, has_id=False)
