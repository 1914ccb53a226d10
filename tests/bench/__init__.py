"""`make bench`: speed and memory figures with their goals (never timed assertions in tests).

Each `tests/bench/bench_*.py` module has `main(report)`; `report(name, value, unit, goal)` prints
one aligned line. Run all with `python -m tests.bench`, or some with `python -m tests.bench NAME...`.
"""
