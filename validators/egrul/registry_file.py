"""A provider that answers from a registry file (the sandbox's JSON-lines format) without network.

DESIGN.md names two providers behind one interface: DaData and the sandbox registry. This is the
second: the same file the EGRUL emulator serves, read in-process. Used where the network would
only add noise (benchmarks of the pipeline's own CPU cost) or for offline trial runs.
"""
from __future__ import annotations

from pathlib import Path

from validators.egrul.provider import LookupResult


class RegistryFileProvider:
    def __init__(self, path: str | Path) -> None:
        from etl.sandbox.egrul import load_registry

        self.registry = load_registry(path)
        self.name = f"file:{Path(path).name}"

    def lookup(self, inn: str) -> LookupResult:
        found = self.registry.find(inn)
        main = next((d for d in found if d.get("branch_type", "MAIN") == "MAIN"), found[0] if found else None)
        return LookupResult.from_data(inn, main)

    def close(self) -> None:
        self.registry.close()

    def __enter__(self) -> "RegistryFileProvider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
