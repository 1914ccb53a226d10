"""`crm-etl emulate egrul`: started as a real process on a free port, asked over HTTP, stopped by signal."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from etl.sandbox.egrul_cli import egrul_command
from etl.secrets import Secret
from tests.conftest import free_port
from tests.test_egrul_emulator import SBER, sample_records, write_registry
from validators.egrul import DadataProvider, ProviderRefused

ROOT = Path(__file__).resolve().parents[1]


def launch(registry: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """`crm-etl emulate egrul` (the same click command) as its own process on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "etl.sandbox.egrul_cli", "--registry", str(registry),
                             "--port", str(port), "--latency", "0", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The KEY=VALUE lines printed at start, up to the settings line."""
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        key, sep, value = line.strip().partition("=")
        if sep:
            found[key] = value
        if line.lstrip().startswith("latency"):
            return found
    raise AssertionError(f"emulator exited early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return write_registry(tmp_path / "registry.jsonl", sample_records(), ["{oops"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_starts_prints_its_token_once_answers_and_stops_on_signal(registry, sig):
    env = {k: v for k, v in os.environ.items() if k != "CRM_ETL_EGRUL_TOKEN"}
    proc, port = launch(registry, env=env)
    try:
        banner = read_banner(proc)
        assert banner["CRM_ETL_EGRUL_URL"] == f"http://127.0.0.1:{port}/suggestions/api/4_1/rs"
        token = banner["CRM_ETL_EGRUL_TOKEN"]
        with DadataProvider(banner["CRM_ETL_EGRUL_URL"], Secret(token), rate=None) as p:
            result = p.lookup(SBER)
        assert (result.status, result.kpp) == ("ACTIVE", "773601001")
    finally:
        code, out, err = stop(proc, sig)
    assert code == 0
    assert "stopped" in out and token not in out  # printed once, at start only
    assert "line 12" in err and "not valid JSON" in err  # the bad registry line, by number


@pytest.mark.timeout(60)
def test_token_from_the_environment_is_used_and_not_printed(registry):
    proc, _ = launch(registry, "--daily-quota", "1",
                     env={**os.environ, "CRM_ETL_EGRUL_TOKEN": "sandbox-key-123456"})
    try:
        banner = read_banner(proc)
        assert "CRM_ETL_EGRUL_TOKEN" not in banner
        with DadataProvider(banner["CRM_ETL_EGRUL_URL"], Secret("sandbox-key-123456"), rate=None) as p:
            assert p.lookup(SBER).status == "ACTIVE"
            with pytest.raises(ProviderRefused, match="limit"):  # --daily-quota 1
                p.lookup(SBER)
    finally:
        code, out, _ = stop(proc)
    assert code == 0 and "sandbox-key-123456" not in out


@pytest.mark.timeout(60)
def test_faults_from_the_command_line(registry):
    proc, port = launch(registry, "--fault-503", "1", "--seed", "1", "--token", "tok-abcdef")
    try:
        read_banner(proc)
        r = requests.post(f"http://127.0.0.1:{port}/suggestions/api/4_1/rs/findById/party",
                          json={"query": SBER}, headers={"Authorization": "Token tok-abcdef"}, timeout=5)
        assert r.status_code == 503
        spec = requests.get(f"http://127.0.0.1:{port}/_sandbox/faults", timeout=5).json()["spec"]
        assert (spec["error_503"], spec["seed"]) == (1.0, 1)
    finally:
        assert stop(proc)[0] == 0


def test_registry_is_required():
    result = CliRunner().invoke(egrul_command, [])
    assert result.exit_code == 2 and "--registry" in result.output


def test_missing_registry_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(egrul_command, ["--registry", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.parametrize("args", [["--fault-500", "0.7", "--fault-503", "0.7"], ["--fault-drop", "2"],
                                  ["--latency", "-1"]])
def test_bad_options_are_usage_errors(registry, args):
    result = CliRunner().invoke(egrul_command, ["--registry", str(registry), *args])
    assert result.exit_code == 2, result.output


def test_port_in_use_is_a_clear_error(registry):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(egrul_command, ["--registry", str(registry), "--port", str(port)])
    assert result.exit_code == 2 and f"127.0.0.1:{port}" in result.output


def test_registered_as_crm_etl_emulate_egrul():
    from etl.cli import main

    result = CliRunner().invoke(main, ["emulate", "egrul", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--registry", "--latency", "--rps", "--token", "--daily-quota", "--fault-503", "--seed"):
        assert option in result.output
