"""`manifest.json`: how a data set was made (seed, scale, now, since) and what is in it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


@dataclass
class Manifest:
    out_dir: str
    seed: int
    scale: float
    now: str                      # YYYY-MM-DD the data is relative to
    since: str                    # shop A's full-load scope starts here (1 January of the previous year)
    counts: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)   # relative path -> bytes, sha256
    mysql_database: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    def write(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        data = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
        return cls(**data)

    @property
    def source_records(self) -> int:
        """Rows and elements the shops hold (shop A rows in and out of scope, shop B partners and
        their contacts, event messages not included)."""
        r = self.counts.get("records", {})
        return sum(r.get(k, 0) for k in ("shop-a/company", "shop-a/contact", "shop-b/company", "shop-b/contact"))

    def summary(self) -> str:
        r = self.counts.get("records", {})
        t = self.counts.get("truth", {})
        ta = self.counts.get("truth_after_events", {})
        ev = self.counts.get("events", {})
        return (f"generated {r.get('shop-a/company', 0)} shop A companies / {r.get('shop-a/contact', 0)} contacts, "
                f"{r.get('shop-b/company', 0)} shop B partners / {r.get('shop-b/contact', 0)} contacts, "
                f"{ev.get('lines', 0)} events, {self.counts.get('registry', {}).get('lines', 0)} registry lines, "
                f"{self.counts.get('seed', {}).get('companies', 0)} seed companies; truth: "
                f"{t.get('companies', 0)} companies, {t.get('contacts', 0)} contacts, {t.get('rejects', 0)} rejects "
                f"(after events: {ta.get('companies', 0)} / {ta.get('contacts', 0)} / {ta.get('rejects', 0)})")
