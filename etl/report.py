"""The run report: a per-stage funnel of one run, as text for people or JSON for tools."""
from __future__ import annotations

from typing import Any

from etl.state.base import RunInfo, shown_status

ACTIONS = ("created", "enriched", "found", "unchanged", "failed", "dry_run")


def funnel(run: RunInfo) -> dict[str, Any]:
    c = run.counts or {}

    def n(key: str) -> int:
        v = c.get(key, 0)
        return int(v) if isinstance(v, (int, float)) else 0

    rejected: dict[str, dict[str, int]] = {"company": {}, "contact": {}, "record": {}}
    for key, value in c.items():
        if key.startswith("rejected_") and ":" in key:
            kind, reason = key[len("rejected_"):].split(":", 1)
            rejected.setdefault(kind, {})[reason] = int(value)
    return {
        "run": run.run_id, "mode": run.mode, "source": run.source, "status": shown_status(run),
        "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": c.get("seconds"),
        "error": c.get("error") or "",
        "extracted": {"records": n("records")},
        "rejected": rejected,
        "merged": {"companies": n("companies_merged_away"), "contacts": n("contacts_merged_away")},
        "egrul": {"distinct_inns": n("egrul_distinct_inns"), "looked_up": n("egrul_lookups"),
                  "cached": n("egrul_cache_hits"), "failed": n("egrul_failed"), "refused": n("egrul_refused")},
        "companies": {a: n(f"companies_{a}") for a in ACTIONS},
        "contacts": {a: n(f"contacts_{a}") for a in ACTIONS},
        "pending": {"companies": n("pending_company"), "contacts": n("pending_contact"),
                    "retried": n("pending_retried")},
        "crm": {"write_requests": n("crm_write_requests"), "write_commands": n("crm_write_commands"),
                "http_requests": n("http_requests"), "lookup_requests": n("crm_lookup_inn") + n("crm_lookup_findbycomm")
                + n("crm_lookup_origin")},
    }


def render_text(run: RunInfo | None) -> str:
    if run is None:
        return "no such run"
    f = funnel(run)
    lines = [f"run {f['run']}: {f['mode']} {f['source']} — {f['status']}"
             + (f" in {f['seconds']:.1f} s" if isinstance(f["seconds"], (int, float)) else "")]
    if f["error"]:
        lines.append(f"  error: {f['error']}")
    e = f["extracted"]
    lines.append(f"  extracted      {e['records']:>9} records")
    for kind in ("company", "contact", "record"):
        for reason, count in sorted(f["rejected"].get(kind, {}).items(), key=lambda kv: -kv[1]):
            lines.append(f"  rejected       {count:>9} {kind} {reason}")
    m = f["merged"]
    lines.append(f"  merged         {m['companies']:>9} duplicate company records, {m['contacts']} contact records")
    g = f["egrul"]
    lines.append(f"  EGRUL          {g['distinct_inns']:>9} distinct INNs: {g['looked_up']} looked up, "
                 f"{g['cached']} from cache, {g['failed']} failed" + (f", {g['refused']} refused" if g["refused"] else ""))
    for what in ("companies", "contacts"):
        a = f[what]
        lines.append(f"  {what:<14} {a['created']:>9} created, {a['enriched']} enriched, {a['found']} matched in CRM, "
                     f"{a['unchanged']} unchanged, {a['failed']} failed" + (f", {a['dry_run']} would be written (dry run)" if a["dry_run"] else ""))
    p = f["pending"]
    lines.append(f"  pending        {p['companies']:>9} companies, {p['contacts']} contacts parked "
                 f"({p['retried']} retried from earlier runs)")
    cr = f["crm"]
    per = cr["write_commands"] / cr["write_requests"] if cr["write_requests"] else 0
    lines.append(f"  CRM            {cr['write_requests']:>9} write requests ({per:.1f} commands each), "
                 f"{cr['lookup_requests']} lookup commands")
    return "\n".join(lines)
