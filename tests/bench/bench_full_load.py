"""Full load: pipeline CPU rate vs ijson, writes per request, request rate vs the portal's limit, EGRUL lookups per INN, peak RSS.

Generates both shops at BENCH_SCALE (default 0.17: ~30 000 companies, ~115 000 contacts), then:
1. the pipeline without network (extract + transform + validate + dedup, registry read from the
   file, CRM writes not sent) against ijson alone parsing the same shop B export;
2. the request rate at the emulator's default limit (a real portal's: 2 req/s, burst 50): a full
   load of shop B into an empty CRM, counting the requests the emulator admitted over a sustained
   window (BENCH_WINDOW s) that opens once the burst allowance is spent and 10 s of paced requests
   followed: requests in the window / (window x rate). The load is stopped after the window;
3. real full loads of both shops, each `crm-etl full` in its own process, against the Bitrix24
   emulator (own process, BENCH_RATE req/s, burst 50) and the EGRUL emulator (own process,
   BENCH_EGRUL_LATENCY s per lookup), then a rerun of both. The request-rate share at this higher
   rate is reported for information, with the CPU the load and the emulators used per second of
   wall time (what bounds it on this machine); EGRUL lookups are divided by the distinct INNs the
   cache did not hold (shop B shares INNs with shop A, cached by then);
4. peak RSS of the load processes at this scale and at a quarter of it (must not grow with input):
   a load's own peak plus the peak of its extraction process (records are extracted and
   transformed in a forked child), an upper bound of what the load holds at once.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SCALE = float(os.environ.get("BENCH_SCALE", "0.17"))
RATE = float(os.environ.get("BENCH_RATE", "20"))
BURST = 50
EGRUL_LATENCY = float(os.environ.get("BENCH_EGRUL_LATENCY", "0.05"))
WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))
DEFAULT_RATE, DEFAULT_BURST = 2.0, 50   # the emulator's and the client's defaults (a real portal's)
SETTLE = 10.0                           # s of paced requests after the burst before the window opens
PY = sys.executable

RSS_WRAPPER = (
    "import resource, sys, runpy\n"
    "out = sys.argv.pop(1)\n"
    "try:\n"
    "    sys.argv[0] = 'crm-etl'\n"
    "    from etl.cli import main\n"
    "    main()\n"
    "finally:\n"
    "    use = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]\n"
    "    cpu = sum(u.ru_utime + u.ru_stime for u in use)\n"
    "    open(out, 'w').write(f'{use[0].ru_maxrss + use[1].ru_maxrss} {cpu}')\n"
)


def _cpu_seconds(pid: int) -> float:
    """user + system CPU seconds a live process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _cpu(who: int) -> float:
    import resource

    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


def cpu_pipeline(data: Path) -> tuple[float, float, int, dict]:
    """records/s of the pipeline without network, and ijson's items/s on the same shop B files
    (wall clock, as the goal is set); and the CPU seconds each took: with two free cores the
    busier of the pipeline's two processes bounds its rate, whatever else the machine runs."""
    import resource

    import ijson

    from etl.config import load_settings
    from etl.pipeline import Pipeline
    from etl.state import open_state
    from extractors.jsonfile import JsonFileSource
    from loaders.crm_loader import CrmLoader
    from transformers.base import load_transformer
    from transformers.cleaning import names_conflict, normalize_name
    from validators.egrul.registry_file import RegistryFileProvider
    from validators.gate import EgrulGate

    files = sorted(str(p) for p in (data / "shop_b").glob("export_*.json"))
    t0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    items = 0
    for f in files:
        with open(f, "rb") as fh:
            for _ in ijson.items(fh, "item", use_float=True):
                items += 1
    ijson_rate = items / (time.perf_counter() - t0)
    cpu = {"ijson": _cpu(resource.RUSAGE_SELF) - c0}

    settings = load_settings(None, env={})
    shop = settings.shop("shop-b")
    with tempfile.TemporaryDirectory() as tmp, open_state(Path(tmp) / "s.sqlite") as state, \
            RegistryFileProvider(data / "egrul_registry.jsonl") as provider:
        run_id = state.start_run("bench", "shop-b")
        counts: Counter = Counter()
        loader = CrmLoader(None, state, run_id, counts=counts, dry_run=True, senders=1,  # type: ignore[arg-type]
                           normalize=normalize_name, conflict=names_conflict)
        loader.crm_has_companies = loader.crm_has_contacts = False
        loader.presets = {"#CRM_REQUISITE_PRESET_DEF_RU_COMPANY#": 1, "#CRM_REQUISITE_PRESET_DEF_RU_INDIVIDUAL#": 2}
        gate = EgrulGate(provider, state, cache_days=settings.egrul.cache_days, concurrency=1)
        pipeline = Pipeline(source="shop-b", state=state, gate=gate, loader=loader, run_id=run_id, counts=counts,
                            normalize=normalize_name, conflict=names_conflict)
        t0, own, child = time.perf_counter(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        pipeline.run(load_transformer(shop).transform(JsonFileSource(files, item_path="item").records()))
        elapsed = time.perf_counter() - t0
        cpu["pipeline"] = _cpu(resource.RUSAGE_SELF) - own
        cpu["extraction"] = _cpu(resource.RUSAGE_CHILDREN) - child  # reaped when the run ends
        gate.close()
    # source records: partners plus their nested contacts (what the pipeline handles one by one)
    return counts["records"] / elapsed, ijson_rate * counts["records"] / max(items, 1), counts["records"], cpu


class Services:
    """Both emulators in processes of their own; `limits=None`: the emulator's and the client's
    default request-rate limit, else (rate, burst) for both."""

    def __init__(self, work: Path, data: Path, limits: tuple[float, int] | None = (RATE, BURST)) -> None:
        self.code = secrets.token_hex(8)
        self.token = secrets.token_hex(8)
        bport, eport = _port(), _port()
        self.bitrix_url = f"http://127.0.0.1:{bport}"
        limit_args = ["--rate", str(limits[0]), "--burst", str(limits[1])] if limits else []
        self.procs = [
            subprocess.Popen([PY, "-m", "etl", "emulate", "bitrix24", "--port", str(bport), "--code", self.code,
                              "--db", str(work / "crm.sqlite"), *limit_args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([PY, "-m", "etl", "emulate", "egrul", "--port", str(eport), "--token", self.token,
                              "--registry", str(data / "egrul_registry.jsonl"), "--latency", str(EGRUL_LATENCY),
                              "--rps", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        _wait_http(self.bitrix_url + "/_sandbox/health")
        _wait_http(f"http://127.0.0.1:{eport}/_sandbox/health")
        config = work / "bench.toml"
        client_limits = f"rate = {limits[0]}\nburst = {limits[1]}\n" if limits else ""
        config.write_text(f"[bitrix24]\n{client_limits}[egrul]\nconcurrency = 16\nrate = 1000\n")
        self.env = {**os.environ, "CRM_ETL_CONFIG": str(config),
                    "CRM_ETL_BITRIX24_WEBHOOK": f"{self.bitrix_url}/rest/1/{self.code}/",
                    "CRM_ETL_EGRUL_URL": f"http://127.0.0.1:{eport}/suggestions/api/4_1/rs",
                    "CRM_ETL_EGRUL_TOKEN": self.token,
                    "CRM_ETL_SHOP_A_DSN": f"sqlite:///{data / 'shop_a.sqlite'}",
                    "CRM_ETL_STATE": str(work / "state.sqlite")}

    def stats(self) -> dict:
        import requests

        return requests.get(self.bitrix_url + "/_sandbox/stats", timeout=10).json()

    def admitted(self) -> int:
        """HTTP requests the portal's bucket let through so far."""
        s = self.stats()
        return s["http_requests"] - s["rejected"]["QUERY_LIMIT_EXCEEDED"]

    def cpu(self) -> float:
        return sum(_cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)


def _exports(data: Path) -> list[str]:
    return [a for p in sorted((data / "shop_b").glob("export_*.json")) for a in ("--file", str(p))]


class Sampler:
    """The portal's admitted-request count, read every second while a load runs (the emulator
    counts its tables for each read: more often would slow it down)."""

    def __init__(self, services: Services) -> None:
        import threading

        self.services = services
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.services.admitted()))
            self._stop.wait(1.0)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), self.services.admitted()))

    def phases(self, rate: float) -> dict:
        """Where a load's wall time went: before its first request, the sustained part (from the
        burst spent to the last request: its request share), and after its last request."""
        (t0, a0), (t_end, a_end) = self.samples[0], self.samples[-1]
        first = next((t for t, a in self.samples if a > a0), t_end)
        burst = next(((t, a) for t, a in self.samples if a - a0 >= BURST), None)
        last = next((t for t, a in reversed(self.samples) if a < a_end), t0)
        last = next((t for t, a in self.samples if t > last), t_end)  # the sample that saw it
        out = {"before_first": first - t0, "after_last": t_end - last, "sustained_s": 0.0, "sustained_share": 0.0}
        if burst is not None and last > burst[0]:
            out["sustained_s"] = last - burst[0]
            out["sustained_share"] = (a_end - burst[1]) / (out["sustained_s"] * rate)
        return out


def load(services: Services, work: Path, data: Path, since: str) -> tuple[float, int, float, dict]:
    """Both full loads in their own processes; returns (seconds, peak RSS KB of the two, each with
    its extraction process, CPU seconds of the loads with their extraction processes, shop -> where
    its wall time went)."""
    peak, cpu, phases = 0, 0.0, {}
    t0 = time.monotonic()
    for args in (["full", "shop-a", "--since", since], ["full", "shop-b", *_exports(data)]):
        rss = work / "rss"
        with Sampler(services) as sampler:
            subprocess.run([PY, "-c", RSS_WRAPPER, str(rss), *args, "--no-progress", "--log-level", "WARNING"],
                           env=services.env, check=False, stdout=subprocess.DEVNULL)
        phases[args[1]] = sampler.phases(RATE)
        kb, seconds = rss.read_text().split()
        peak, cpu = max(peak, int(kb)), cpu + float(seconds)
    return time.monotonic() - t0, peak, cpu, phases


def sustained_share(work: Path, data: Path) -> dict:
    """Requests admitted by the emulator at its default limit over WINDOW seconds once the burst
    allowance is spent, as a share of what the limit allows in that time."""
    services = Services(work, data, limits=None)
    proc = None
    try:
        proc = subprocess.Popen([PY, "-m", "etl", "full", "shop-b", *_exports(data), "--no-progress",
                                 "--log-level", "WARNING"], env=services.env, stdout=subprocess.DEVNULL)
        start = None
        finished = False
        while not (finished := proc.poll() is not None):
            time.sleep(0.25)
            admitted, now = services.admitted(), time.monotonic()
            if start is None and admitted >= DEFAULT_BURST + SETTLE * DEFAULT_RATE:
                # the burst is spent and the client has been paced for SETTLE s since: a client that
                # keeps up holds the bucket full from here on (nothing saved up to send in the window)
                start = (now, admitted)
            elif start is not None and now - start[0] >= WINDOW:
                break
        if start is None:
            raise RuntimeError("the load ended before it spent the burst allowance: use a larger BENCH_SCALE")
        window, requests_ = now - start[0], admitted - start[1]
        refused = services.stats()["rejected"]["QUERY_LIMIT_EXCEEDED"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()  # its state and CRM are thrown away
            proc.wait(timeout=30)
        services.stop()
    return {"window": window, "requests": requests_, "share": requests_ / (window * DEFAULT_RATE),
            "refused": refused, "finished": finished}


def network_run(work: Path, data: Path, since: str) -> dict:
    from etl.state import open_state

    services = Services(work, data)
    try:
        s0 = services.stats()
        emulator_cpu = services.cpu()
        seconds, rss, load_cpu, phases = load(services, work, data, since)
        emulator_cpu = services.cpu() - emulator_cpu
        s1 = services.stats()
        with open_state(work / "state.sqlite") as state:
            runs = state.list_runs(limit=2)
        c = Counter()
        for r in runs:
            c.update({k: v for k, v in r.counts.items() if isinstance(v, (int, float))})
        re_seconds, _, _, _ = load(services, work, data, since)
        s2 = services.stats()
        with open_state(work / "state.sqlite") as state:
            rerun = Counter()
            for r in state.list_runs(limit=2):
                rerun.update({k: v for k, v in r.counts.items() if isinstance(v, (int, float))})
    finally:
        services.stop()
    requests_ = s1["http_requests"] - s0["http_requests"]
    return {"seconds": seconds, "rss_kb": rss, "requests": requests_, "counts": c,
            "rerun_counts": rerun, "rerun_writes": rerun["crm_write_commands"], "rerun_seconds": re_seconds,
            "load_seconds": c["seconds"], "load_cpu": load_cpu, "emulator_cpu": emulator_cpu, "phases": phases}


def main(report) -> None:
    from etl.sandbox.generator import generate

    work = Path(tempfile.mkdtemp(prefix="bench-full-"))
    try:
        data = work / "data"
        t0 = time.perf_counter()
        m = generate(data, seed=1, scale=SCALE)
        r = m.counts["records"]
        companies = r.get("shop-a/company", 0) + r.get("shop-b/company", 0)
        contacts = r.get("shop-a/contact", 0) + r.get("shop-b/contact", 0)
        report("data set: companies / contacts (both shops)", f"{companies} / {contacts}", "",
               ">= 20 000 / 100 000")
        report("generation time", time.perf_counter() - t0, "s")

        rate, ijson_rate, n, cpu = cpu_pipeline(data)
        report("pipeline without network (shop B), records/s", rate, "rec/s")
        report("ijson alone on the same files, records/s", ijson_rate, "rec/s")
        report("pipeline / ijson", rate / ijson_rate, "ratio", ">= 0.167 (1/6)")
        report("  CPU s: pipeline's process / its extraction process / ijson",
               f"{cpu['pipeline']:.2f} / {cpu['extraction']:.2f} / {cpu['ijson']:.2f}")
        report("  pipeline / ijson by CPU time (two free cores: the busier process bounds it)",
               cpu["ijson"] / max(cpu["pipeline"], cpu["extraction"], 1e-9), "ratio")

        (work / "share").mkdir()
        share = sustained_share(work / "share", data)
        report(f"requests admitted in {share['window']:.0f} s after the burst, at {DEFAULT_RATE:g} req/s",
               share["requests"], "req")
        report(f"achieved request rate / emulator's default limit ({DEFAULT_RATE:g} req/s)", share["share"],
               "ratio", ">= 0.95")
        if share["finished"]:
            report("  (the load ended before the window did: window shortened)", share["window"], "s")
        report("requests the emulator refused (QUERY_LIMIT_EXCEEDED)", share["refused"], "req", "0")

        (work / "big").mkdir()
        res = network_run(work / "big", data, m.since)
        c = res["counts"]
        report(f"full load (both shops) at {RATE:g} req/s, wall time", res["seconds"], "s")
        report("writes per API write request", c["crm_write_commands"] / max(c["crm_write_requests"], 1),
               "cmd/req", ">= 45")
        report("all HTTP requests to the portal", res["requests"], "req")
        achieved = max(res["requests"] - BURST, 0) / max(res["load_seconds"], 1e-9)
        report(f"achieved request rate / limit at {RATE:g} req/s (information)", achieved / RATE, "ratio")
        report("  CPU of the loads (with extraction), per wall second", res["load_cpu"] / res["seconds"], "cores")
        report("  CPU of both emulators, per wall second", res["emulator_cpu"] / res["seconds"], "cores")
        per_request = res["emulator_cpu"] / max(res["requests"], 1)
        report("  emulators' CPU per portal request (50 commands)", per_request * 1000, "ms")
        report("  requests/s the emulators could answer on one free core", 1 / max(per_request, 1e-9), "req/s")
        report("  cores of this machine", float(os.cpu_count() or 0), "cores")
        for shop, ph in res["phases"].items():
            report(f"  {shop}: s before the first request / sustained / after the last",
                   f"{ph['before_first']:.1f} / {ph['sustained_s']:.1f} / {ph['after_last']:.1f}")
            report(f"  {shop}: request share over the sustained part", ph["sustained_share"], "ratio")
        report("EGRUL lookups per distinct INN not yet cached, first run",
               c["egrul_lookups"] / max(c["egrul_uncached_inns"], 1), "", "1.0")
        report("  distinct INNs / of them not yet cached / lookups",
               f"{c['egrul_distinct_inns']} / {c['egrul_uncached_inns']} / {c['egrul_lookups']}")
        rr = res["rerun_counts"]
        report("EGRUL lookups per distinct INN, rerun", rr["egrul_lookups"] / max(rr["egrul_distinct_inns"], 1),
               "", "0")
        report("CRM write commands on the rerun", res["rerun_writes"], "cmd", "0")
        report("peak RSS of a load (process + its extraction process)", res["rss_kb"] / 1024, "MB", "< 300")

        small = work / "small"
        small_data = small / "data"
        small.mkdir()
        generate(small_data, seed=1, scale=SCALE / 4)
        (small / "run").mkdir()
        res_small = network_run(small / "run", small_data, m.since)
        report("peak RSS at 1/4 of the data", res_small["rss_kb"] / 1024, "MB")
        report("peak RSS growth for 4x the data", res["rss_kb"] / res_small["rss_kb"], "ratio", "~1 (flat)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

