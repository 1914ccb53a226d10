"""Faults of the process and of its state store during full loads: SIGKILL at seeded moments, two
loads writing one SQLite state file at once, the file locked by another process. Each ends with
the CRM compared with the generator's ground truth (no duplicate, nothing missing, every reject
the truth's, nothing left parked).
"""
from __future__ import annotations

import random
import signal
import sqlite3
from collections import Counter

import pytest

from etl.state import open_state
from tests.fault_support import FaultBox

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

KILL_SEED = 20261122
# CRM write commands of each shop's clean load of this data (seed 11, scale 0.002)
WRITES = {"shop-a": 349, "shop-b": 1484}


def kill_points(seed: int) -> list[tuple[str, str, int]]:
    """(shop, trigger, n), in order: kill the load when
    - `lookups`: the registry has answered n more lookups (the run is in its registry checks);
    - `http_requests`: the portal has received n more requests (counted on arrival: the run is
      reading what the CRM holds, its first request still being answered);
    - `writes`: the portal has executed n write commands of this shop's load in all (counted as
      each command of a batch runs: the kill lands in the middle of a batch, whose answer the
      process never reads). Seeded over the whole load, increasing: each rerun gets further."""
    rng = random.Random(seed)
    points = []
    for shop, writes in (("shop-a", 3), ("shop-b", 5)):
        points.append((shop, "lookups", rng.randint(1, 60)))
        points.append((shop, "http_requests", rng.randint(1, 3)))
        points += [(shop, "writes", n) for n in sorted(rng.sample(range(20, int(WRITES[shop] * 0.9)), writes))]
    return points


def test_sigkill_at_seeded_points_then_rerun_reaches_the_exact_truth(tmp_path, mysql_db):
    """kill -9 at twelve seeded points of both shops' loads (registry lookups, CRM reads, batches
    half-executed); every run resumes the last one's work. After the final clean runs the CRM is
    exactly the truth: intents recorded before each write let the reruns find by ORIGIN_ID what
    the killed processes created without hearing back."""
    box = FaultBox(tmp_path, mysql_db, seed=11)
    try:
        kills = Counter()
        shop_start: dict[str, int] = {}
        for shop, trigger, n in kill_points(KILL_SEED):
            # what the last killed run left in flight lands first (it must not count for this one)
            box.wait_for(lambda: box.stats()["in_flight"] == 0, "the killed run's requests")
            shop_start.setdefault(shop, box.writes())
            if trigger == "writes":  # (a rerun may redo some: it must write at least one itself)
                read, target = box.writes, max(shop_start[shop] + n, box.writes() + 1)
            else:
                read = (lambda: box.egrul_stats()["lookups"]) if trigger == "lookups" else \
                    (lambda: box.stats()["http_requests"])
                target = read() + n
            proc = box.spawn(shop, stderr=None)
            try:
                box.wait_for(lambda: proc.poll() is not None or read() >= target, f"{shop}: {trigger} {n}")
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills[trigger] += 1
                proc.wait(timeout=30)
        assert sum(kills.values()) >= 10 and kills["writes"] >= 6 and kills["lookups"] >= 1, kills
        with open_state(box.env["CRM_ETL_STATE"]) as state:
            assert sum(r.status == "running" for r in state.list_runs(limit=50)) == sum(kills.values())
        for shop in ("shop-a", "shop-b"):
            result = box.invoke(shop)     # the rerun finishes the job
            assert result.exit_code == 0, result.output
        box.check_exact()
    finally:
        box.stop()


def test_two_loads_writing_one_sqlite_state_file_at_once(tmp_path, mysql_db):
    """Each shop's full load is started twice at the same moment on one state file: the database
    lets one of them claim each company and person, the other waits for it and links to it."""
    box = FaultBox(tmp_path, mysql_db, seed=13)
    try:
        waited = 0
        for shop in ("shop-a", "shop-b"):
            procs = [box.spawn(shop) for _ in range(2)]
            errors = [p.communicate(timeout=120)[1] for p in procs]
            assert [p.returncode for p in procs] == [0, 0], errors
            with open_state(box.env["CRM_ETL_STATE"]) as state:
                runs = state.list_runs(limit=2)
            assert {r.source for r in runs} == {shop} and {r.status for r in runs} == {"ok"}
            waited += sum(r.counts.get("crm_waited_for_other_worker", 0) for r in runs)
        assert waited > 0, "the two loads never met: the test did not test anything"
        box.check_exact()
    finally:
        box.stop()


def test_state_file_locked_by_another_process_fails_clearly_then_the_rerun_finishes(tmp_path, mysql_db):
    """Another process takes an exclusive lock on the state file in the middle of shop B's load and
    keeps it: the load waits its lock_timeout, then stops with exit 3 and a message naming the file
    and the fix; nothing is lost: the rerun (lock released) finishes the job exactly."""
    box = FaultBox(tmp_path, mysql_db, seed=14)
    path = tmp_path / "state.sqlite"
    box.env["CRM_ETL_STATE"] = f"sqlite:///{path}?lock_timeout=1.5"
    try:
        assert box.invoke("shop-a").exit_code == 0
        start = box.writes()
        proc = box.spawn("shop-b")
        holder = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            box.wait_for(lambda: proc.poll() is not None or box.writes() >= start + 100, "shop B's writes")
            holder.execute("BEGIN EXCLUSIVE")     # waits for the load's transaction, then holds
            _, err = proc.communicate(timeout=60)
        finally:
            holder.execute("ROLLBACK") if holder.in_transaction else None
            holder.close()
        assert proc.returncode == 3, err
        assert str(path) in err and "locked" in err and "lock_timeout = 1.5 s" in err, err
        assert "Traceback" not in err
        assert box.writes() < start + 1400       # it stopped mid-load
        result = box.invoke("shop-b")
        assert result.exit_code == 0, result.output
        box.check_exact()
    finally:
        box.stop()
