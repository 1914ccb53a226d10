from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def report(name: str, value: float | str, unit: str = "", goal: str = "") -> None:
    val = f"{value:,.2f}" if isinstance(value, float) else str(value)
    print(f"  {name:<58} {val:>14} {unit:<10} {('goal: ' + goal) if goal else ''}", flush=True)


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    for name in wanted:
        mod = importlib.import_module(f"tests.bench.{name}")
        print(f"{name[6:]}: {(mod.__doc__ or '').strip().splitlines()[0] if mod.__doc__ else ''}", flush=True)
        t0 = time.perf_counter()
        mod.main(report)
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


raise SystemExit(main(sys.argv[1:]))
