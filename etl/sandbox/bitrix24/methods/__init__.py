"""The CRM methods the emulator answers; importing this package fills `REGISTRY` (name -> handler)."""
from etl.sandbox.bitrix24.methods import contact_company, duplicates, entities, requisites  # noqa: F401
from etl.sandbox.bitrix24.methods.base import REGISTRY, Call, Handler, Reply

__all__ = ["REGISTRY", "Call", "Handler", "Reply"]
