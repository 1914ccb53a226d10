"""Bitrix24 REST client and the deduplicating loader."""
