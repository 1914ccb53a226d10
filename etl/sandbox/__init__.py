"""The sandbox: local Bitrix24 and EGRUL emulators and the data generator (product features, not mocks)."""
