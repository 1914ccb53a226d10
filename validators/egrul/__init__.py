"""EGRUL registry lookups: the provider interface, the DaData client, concurrent lookups.

    from validators.egrul import DadataProvider, lookup_many
    with DadataProvider.from_settings(settings.egrul) as provider:
        for inn, result in lookup_many(inns, provider):
            ...  # LookupResult (status, enrichment) or LookupFailed (park as pending)
"""
from validators.egrul.dadata import DadataProvider
from validators.egrul.lookup import lookup_many
from validators.egrul.provider import LookupFailed, LookupResult, ProviderRefused, RegistryProvider, Status
from validators.egrul.ratelimit import RateLimiter

__all__ = ["DadataProvider", "LookupFailed", "LookupResult", "ProviderRefused", "RateLimiter",
           "RegistryProvider", "Status", "lookup_many"]
