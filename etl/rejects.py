"""Reject reason codes: the vocabulary shared by transformers, validators, loader, report and generator.

A code is stable (people filter on it); the human detail goes next to it in `Reject.detail`.
"""
from __future__ import annotations

# Structure of the source record
BAD_RECORD = "bad_record"            # not an object, wrong types, cannot be mapped at all
# Source-side status (the shop itself says: do not load)
SOURCE_INACTIVE = "source_inactive"  # shop A is_active=0, shop B STATUS other than E0002
SOURCE_DELETED = "source_deleted"    # shop A is_deleted=1, shop B XDELE="X"
# Identifiers (offline checks)
NO_INN = "no_inn"
INN_FORMAT = "inn_format"            # not 10/12 digits after removing separators, letters, ...
INN_CHECKSUM = "inn_checksum"
# Registry (EGRUL)
EGRUL_NOT_FOUND = "egrul_not_found"
INACTIVE_PREFIX = "inactive:"        # inactive:LIQUIDATED, inactive:LIQUIDATING, inactive:BANKRUPT, ...
# Contacts
COMPANY_REJECTED = "company_rejected"  # the contact's company was rejected (detail: the company's reason)
COMPANY_MISSING = "company_missing"    # the contact points at a company the source does not have
CONTACT_EMPTY = "contact_empty"        # no name, no phone, no e-mail: nothing to identify a person by
# Loading
CRM_ERROR = "crm_error"              # the portal refused the write (detail: the portal's message)

INACTIVE_STATUSES = ("LIQUIDATING", "LIQUIDATED", "BANKRUPT", "REORGANIZING")


def inactive(status: str) -> str:
    return INACTIVE_PREFIX + status.upper()
