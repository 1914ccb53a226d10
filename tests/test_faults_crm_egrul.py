"""Faults of the CRM and of the registry during full loads: each test runs both shops' loads
through the fault (seeded), lets the job recover or reruns it, then compares the CRM with the
generator's ground truth: no duplicate, nothing missing, every reject the truth's, nothing parked.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from etl.sandbox.egrul import start_egrul
from etl.state import open_state
from tests.fault_support import FaultBox
from validators.egrul.breaker import OutageBreaker
from validators.egrul.dadata import DadataProvider
from validators.egrul.provider import LookupFailed

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


def test_crm_503_500_slow_dropped_and_lost_answers_are_retried_or_reconciled(tmp_path, mysql_db):
    """A share of every kind of transient failure. A write whose outcome is unknown (500, dropped
    connection, answer lost after the portal did the work, answer later than the client's timeout)
    is looked up by ORIGIN_ID once it cannot be running any more: found -> completed, not created
    again; not found -> sent again."""
    # the portal answers slowly after 0.4 s, the client gives up after 0.3 s, the portal would cut a
    # request at 0.5 s
    box = FaultBox(tmp_path, mysql_db, seed=5, bitrix24={"timeout": 0.3, "request_time_limit": 0.5})
    try:
        # with this seed every kind has come up by the 24th request (the loads send ~100)
        box.crm_faults(error_503=0.05, error_500=0.025, drop=0.025, lost=0.05, slow=0.025, slow_seconds=0.4,
                       seed=15)
        runs = Counter()
        for shop in ("shop-a", "shop-b"):
            result = box.invoke(shop)
            assert result.exit_code == 0, result.output
            runs.update({k: v for k, v in box.last_run().items() if isinstance(v, int)})
        injected = box.stats()["faults"]
        assert all(injected[k] > 0 for k in ("500", "503", "slow", "drop", "lost")), injected
        assert runs["http_retries_rate_limit"] > 0 and runs["crm_outcome_unknown"] > 0
        assert runs["crm_reconciled_found"] > 0      # writes that had run although no answer came
        box.check_exact()
    finally:
        box.stop()


def test_crm_operating_time_limit_episode_is_waited_out(tmp_path, mysql_db):
    """Requisite writes run out of operating time (429 OPERATION_TIME_LIMIT inside batches): the
    companies of those batches are written, their requisites wait for the window the portal names
    and follow, with the `$result` references resolved. (The emulator's window is 3 s, not 10 min.)"""
    box = FaultBox(tmp_path, mysql_db, seed=6)
    try:
        box.crm_config(limits=True, operating_window=3, operating_limit=1,
                       operating_costs={"crm.requisite.add": 0.15})
        limited = lambda: box.stats()["rejected"]["OPERATION_TIME_LIMIT"]  # noqa: E731
        done = threading.Event()

        def end_episode() -> None:  # requisites cost their usual again; the window still has to pass
            box.wait_for(lambda: limited() > 0 or done.is_set(), "OPERATION_TIME_LIMIT answers")
            box.crm_config(operating_costs={})

        ender = threading.Thread(target=end_episode)
        ender.start()
        try:
            results = [box.invoke(shop) for shop in ("shop-a", "shop-b")]
        finally:
            done.set()
            ender.join()
        assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
        assert limited() > 0
        with open_state(box.env["CRM_ETL_STATE"]) as state:
            first = state.list_runs()[-1].counts
        assert first["http_http_429"] > 0 and first["http_operating_wait_s"] > 0, first
        box.check_exact()
    finally:
        box.stop()


def test_crm_webhook_invalid_mid_run_fails_clearly_then_the_new_webhook_finishes(tmp_path, mysql_db):
    """The webhook is revoked in the middle of shop B's load: exit 3 with a message that says what
    to fix (and not the code), no company left without its requisite; the rerun with the new
    webhook finishes the job exactly."""
    box = FaultBox(tmp_path, mysql_db, seed=8)
    try:
        assert box.invoke("shop-a").exit_code == 0
        start = box.writes()

        def revoke() -> None:
            box.wait_for(lambda: box.writes() >= start + 300, "shop B's first writes")
            box.crm_config(invalidate_code=True)

        revoker = threading.Thread(target=revoke)
        revoker.start()
        old_code = box.env["CRM_ETL_BITRIX24_WEBHOOK"].rstrip("/").rsplit("/", 1)[1]
        result = box.invoke("shop-b")
        revoker.join()
        assert result.exit_code == 3, result.output
        assert "INVALID_CREDENTIALS" in result.output and "CRM_ETL_BITRIX24_WEBHOOK" in result.output
        assert old_code not in result.output
        assert box.last_run()["status"] == "failed"
        box.crm_config(code="newcode0123456789")
        box.env["CRM_ETL_BITRIX24_WEBHOOK"] = box.bitrix.webhook_url
        assert box.companies_without_requisite() == []
        written = box.writes()
        assert written > start + 300
        assert box.invoke("shop-b").exit_code == 0
        box.check_exact()
    finally:
        box.stop()


def _egrul_answered(box: FaultBox) -> int:
    return box.egrul_stats()["lookups"]


def test_egrul_down_for_a_whole_run_parks_everything_and_the_next_run_loads_it(tmp_path, mysql_db):
    """The registry refuses every connection during shop A's run: its companies and contacts are
    parked (none reaches the CRM unverified), the run says so with exit 3 after a handful of
    lookups, not one full retry schedule per INN; the next run loads them all."""
    box = FaultBox(tmp_path, mysql_db, seed=9, egrul={"backoff": 0.05})
    try:
        port = int(box.egrul.url.rsplit(":", 1)[1])
        seeded = box.writes()
        box.egrul.stop()                                  # connections refused
        result = box.invoke("shop-a")
        assert result.exit_code == 3, result.output
        assert "EGRUL unavailable" in result.output and "parked as pending" in result.output
        run = box.last_run()
        assert run["egrul_not_asked_down"] > 0 and run["egrul_failed"] == run["egrul_lookups"]
        assert run.get("companies_created", 0) == 0 and box.writes() == seeded  # nothing unverified
        parked = box.pending()
        assert {p.kind for p in parked} == {"company", "contact"}
        box.egrul = start_egrul(box.dir / "data" / "egrul_registry.jsonl", port=port, latency=0.01,
                                rps=None, tokens=[box.env["CRM_ETL_EGRUL_TOKEN"]])
        assert box.invoke("shop-a").exit_code == 0
        assert box.last_run()["pending_retried"] == len(parked)
        assert box.invoke("shop-b").exit_code == 0
        box.check_exact()
    finally:
        box.stop()


def test_egrul_429_storm_is_ridden_out(tmp_path, mysql_db):
    """During shop A's run the registry allows 25 lookups/s while the client sends 8 at a time as
    fast as it can: the 429s (Retry-After 0.1 s) are waited out and retried; what still fails after
    its retries is parked, and the next runs load it."""
    box = FaultBox(tmp_path, mysql_db, seed=10, egrul={"backoff": 0.05})
    try:
        box.egrul_config(rps=25, retry_after=0.1)
        assert box.invoke("shop-a").exit_code == 0
        storm = box.last_run()
        assert box.egrul_stats()["rate_limited"] > 0
        assert storm["egrul_lookups"] == storm["egrul_distinct_inns"] > 0   # one lookup per INN
        box.egrul_config(rps=None)
        assert box.invoke("shop-b").exit_code == 0
        for _ in range(3):               # leftovers of the storm, if any, are retried first
            for shop in {p.source for p in box.pending()}:
                assert box.invoke(shop).exit_code == 0
        box.check_exact()
    finally:
        box.stop()


def test_egrul_quota_exhausted_mid_run_parks_the_rest_until_it_resets(tmp_path, mysql_db):
    """The daily quota runs out after 30 lookups: 403, the run stops looking up (exit 3, the message
    says to rerun after the reset), the rest is parked; after the reset the rerun loads it."""
    box = FaultBox(tmp_path, mysql_db, seed=12)
    try:
        box.egrul_config(daily_quota=30)
        result = box.invoke("shop-a")
        assert result.exit_code == 3, result.output
        assert "EGRUL refused" in result.output and "quota" in result.output, result.output
        assert box.egrul_stats()["quota_exhausted"] > 0
        run = box.last_run()
        assert run["egrul_refused"] > 0 and run["pending_company"] > 0
        assert box.invoke("shop-b").exit_code == 3       # still exhausted: parked, not lost
        box.egrul_config(reset_quota=True, daily_quota=None)
        assert box.invoke("shop-a").exit_code == 0
        assert box.invoke("shop-b").exit_code == 0
        box.check_exact()
    finally:
        box.stop()


def test_egrul_breaker_stops_asking_a_dead_registry_and_a_probe_resumes(egrul):
    """Three lookups in a row fail: the next ones fail at once without a request; once the
    registry answers again, the first probe closes the breaker."""
    faults = egrul.url + "/_sandbox/faults"
    requests.post(faults, json={"error_503": 1.0, "seed": 1}, timeout=5).raise_for_status()
    asked = lambda: requests.get(egrul.url + "/_sandbox/stats", timeout=5).json()["requests"]  # noqa: E731
    provider = OutageBreaker(DadataProvider(egrul.base_url, egrul.token, rate=None, max_retries=1, backoff=0.01),
                             failures=3, probe_every=0.2)
    try:
        for inn in ("7707083893", "7736207543", "7702070139"):
            with pytest.raises(LookupFailed):
                provider.lookup(inn)
        assert provider.outage is not None
        before = asked()
        with pytest.raises(LookupFailed, match="registry is down"):
            provider.lookup("7728168971")
        assert asked() == before and provider.not_asked == 1
        requests.post(faults, json={}, timeout=5).raise_for_status()
        deadline = time.monotonic() + 30

        def answered() -> bool:
            try:
                return provider.lookup("7728168971").inn == "7728168971"
            except LookupFailed:
                assert time.monotonic() < deadline, "the breaker never let a probe through"
                time.sleep(0.05)
                return False

        while not answered():
            pass
        assert provider.outage is None
    finally:
        provider.close()
