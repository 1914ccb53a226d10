"""Bitrix24 REST client: calls, batches, fast listing, client-side limits, retries.

    from loaders.bitrix24 import Bitrix24Client
    client = Bitrix24Client.from_settings(settings.bitrix24)
    res = client.batch({"co": ("crm.company.add", {"fields": {...}}),
                        "rq": ("crm.requisite.add", {"fields": {"ENTITY_ID": "$result[co]", ...}})},
                       halt=True)
"""
from loaders.bitrix24.batch import BatchResult
from loaders.bitrix24.client import Bitrix24Client, ClientStats, Response, is_read
from loaders.bitrix24.encoding import build_query, encode_command
from loaders.bitrix24.errors import (BitrixError, OperatingLimited, OutcomeUnknown, PortalRefused,
                                     PortalUnavailable, RateLimited, ServerError)

__all__ = ["Bitrix24Client", "Response", "BatchResult", "ClientStats", "BitrixError", "PortalRefused",
           "PortalUnavailable", "OutcomeUnknown", "RateLimited", "OperatingLimited", "ServerError",
           "build_query", "encode_command", "is_read"]
