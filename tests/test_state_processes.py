"""The state store under other processes: killed mid-write, and racing on the same identities.

Every test runs on a SQLite file and on a fresh MariaDB database (other hosts sharing a MySQL
store behave as other processes do here: each has its own connection).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from etl.state import open_state

ROOT = Path(__file__).resolve().parents[1]
RACE_ROUNDS = 3


@pytest.fixture(params=["sqlite", "mysql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store goes: a SQLite file, or a fresh MariaDB database."""
    if request.param == "mysql":
        return request.getfixturevalue("mysql_db")
    return str(tmp_path / "state.sqlite")


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


WRITER = """
    import sys
    from etl.dto import Reject
    from etl.state import open_state

    store = open_state(sys.argv[1])
    run = store.start_run("full", "shop-a")
    batch = 0
    while True:
        with store.transaction():
            ids = range(batch * 1000, (batch + 1) * 1000)
            store.record_written([(f"company:{i}", "company", i, "h") for i in ids], run_id=run)
            store.add_rejects(run, [Reject("shop-a", str(i), "contact", "contact_empty", "", {"i": i}) for i in ids])
            store.set_watermark("batch", str(batch))
        print(batch, flush=True)
        batch += 1
"""


def test_a_writer_killed_mid_batch_leaves_a_healthy_store_with_every_commit(state_url: str) -> None:
    proc = spawn(WRITER, state_url)
    committed = -1
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 8:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert committed >= 8, proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL

    with open_state(state_url) as store:
        assert store.integrity_check() == []
        last = int(store.get_watermark("batch"))
        assert last >= committed  # nothing acknowledged was lost
        wanted = [f"company:{i}" for i in range((last + 2) * 1000)]
        present = store.get_entities(wanted)
        # whole batches only: every committed one complete, the one in flight absent
        assert set(present) == {f"company:{i}" for i in range((last + 1) * 1000)}
        assert sum(store.count_rejects().values()) == (last + 1) * 1000
        run = store.last_run()
        assert run.status == "running" and run.finished_at is None  # it never finished: visible as such


RACER = """
    import json, os, random, sys, time
    from pathlib import Path
    from etl.state import open_state

    path, go, me, first = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    identities = [f"company:{7700000000 + first + i}" for i in range(400)]
    random.Random(me).shuffle(identities)
    store = open_state(path)
    while not go.exists():
        time.sleep(0.005)
    created, conflicts = [], {}
    for start in range(0, len(identities), 40):
        batch = identities[start:start + 40]
        created += sorted(store.record_intents([(i, "company", me) for i in batch]))
        keys = [(i.split(":")[1], "email", "info@x.ru", f"contact:{me}") for i in batch]
        conflicts.update({k[0]: v for k, v in store.put_contact_keys(keys).items()})
    print(json.dumps({"created": created, "conflicts": conflicts}))
"""


@pytest.mark.parametrize("race", range(RACE_ROUNDS))
def test_racing_processes_create_each_identity_exactly_once(state_url: str, tmp_path: Path, race: int) -> None:
    go, first = tmp_path / "go", race * 1000  # each round on its own identities
    open_state(state_url).close()  # created and migrated before the race
    racers = [f"w{n}" for n in range(4)]
    procs = [spawn(RACER, state_url, str(go), name, str(first)) for name in racers]
    time.sleep(0.3)  # let them open the store and wait at the line
    go.touch()
    results = {}
    for name, proc in zip(racers, procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results[name] = json.loads(out)

    identities = [f"company:{7700000000 + first + i}" for i in range(400)]
    created = sorted(i for r in results.values() for i in r["created"])
    assert created == sorted(identities)  # each one created by exactly one racer
    with open_state(state_url) as store:
        assert len(store.get_entities(identities)) == 400
        # the contact key of each company went to one racer; every other racer was told who holds it
        holders = store.find_contact_keys([(i.split(":")[1], "email", "info@x.ru") for i in identities])
        assert len(holders) == 400
        for (inn, _, _), holder in holders.items():
            losers = [n for n in racers if f"contact:{n}" != holder]
            assert len(losers) == len(racers) - 1
            assert all(results[n]["conflicts"].get(inn) == holder for n in losers)
            winner = holder.split(":")[1]
            assert inn not in results[winner]["conflicts"]


def test_reopening_while_another_process_writes(state_url: str) -> None:
    """Opening (and migrating) the store must wait for a busy writer, not fail."""
    proc = spawn(WRITER, state_url)
    try:
        assert int(proc.stdout.readline()) == 0, proc.stderr.read()
        for _ in range(5):
            with open_state(state_url) as store:
                store.set_watermark("reader", "x")
                assert int(store.get_watermark("batch")) >= 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
