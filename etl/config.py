"""Settings: a TOML file (`--config` or CRM_ETL_CONFIG), overridden by environment variables.

Secrets and endpoints belong in the environment (DESIGN.md, "Interfaces"); every secret is held
as `etl.secrets.Secret` so it cannot be printed by accident. A bad file is a `ConfigError`
naming the file and the key, which the CLI turns into exit code 2.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from etl.secrets import Secret, register

_SECRET_KAFKA_KEY = re.compile(r"password|secret|token|credential|\.key$|jaas", re.I)

ENV_CONFIG = "CRM_ETL_CONFIG"
ENV = {
    "webhook": "CRM_ETL_BITRIX24_WEBHOOK",
    "egrul_url": "CRM_ETL_EGRUL_URL",
    "egrul_token": "CRM_ETL_EGRUL_TOKEN",
    "shop_a_dsn": "CRM_ETL_SHOP_A_DSN",
    "kafka_bootstrap": "CRM_ETL_KAFKA_BOOTSTRAP",
    "shop_b_topic": "CRM_ETL_SHOP_B_TOPIC",
    "state": "CRM_ETL_STATE",
}
DADATA_URL = "https://suggestions.dadata.ru/suggestions/api/4_1/rs"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file/key and the fix."""


@dataclass(frozen=True)
class Bitrix24Settings:
    webhook: Secret = field(default_factory=lambda: Secret(""))
    rate: float = 2.0          # leaky-bucket drain, requests per second (5 on Enterprise)
    burst: int = 50            # bucket size (250 on Enterprise)
    batch_size: int = 50       # commands per `batch` call (the portal's maximum)
    timeout: float = 60.0      # seconds per HTTP request (the cloud cuts a request at 60 s)
    # seconds after which the portal itself cuts a request: a write whose answer was lost is looked
    # up (by ORIGIN_ID) only once it can no longer be running there
    request_time_limit: float = 60.0
    operating_limit: float = 480.0  # seconds of method time per 10 minutes
    concurrency: int = 4       # batches in flight (a real portal takes seconds per batch of 50 writes)


@dataclass(frozen=True)
class EgrulSettings:
    url: str = DADATA_URL
    token: Secret = field(default_factory=lambda: Secret(""))
    rate: float = 20.0         # requests per second (DaData allows ~30 per IP)
    concurrency: int = 8
    timeout: float = 10.0
    retries: int = 3           # tries after the first, for timeouts, 429 and 5xx
    backoff: float = 1.0       # seconds before the first retry (doubling, plus jitter)
    # days a cached answer stays fresh, per status (terminal states longer, uncertain ones shorter)
    cache_days: Mapping[str, float] = field(default_factory=lambda: {
        "ACTIVE": 14, "LIQUIDATED": 90, "LIQUIDATING": 3, "BANKRUPT": 3,
        "REORGANIZING": 3, "NOT_FOUND": 3,
    })


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = ""
    group: str = "crm-etl-shop-b"
    extra: Mapping[str, Any] = field(default_factory=dict)  # passed through to librdkafka


@dataclass(frozen=True)
class ShopSettings:
    """One `[shops.NAME]` section. `transformer` is the module that knows the shop's format."""

    name: str
    transformer: str
    extractor: str = ""
    dsn: Secret = field(default_factory=lambda: Secret(""))
    topic: str = ""
    item_path: str = "item"
    since: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # anything else in the section


@dataclass(frozen=True)
class Settings:
    state: str = "crm-etl-state.sqlite"
    bitrix24: Bitrix24Settings = field(default_factory=Bitrix24Settings)
    egrul: EgrulSettings = field(default_factory=EgrulSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    shops: Mapping[str, ShopSettings] = field(default_factory=dict)
    source_file: str = ""

    def shop(self, name: str) -> ShopSettings:
        try:
            return self.shops[name]
        except KeyError:
            known = ", ".join(sorted(self.shops)) or "none"
            raise ConfigError(
                f"unknown shop {name!r}: configured shops are {known}; add a [shops.{name}] section"
            ) from None


DEFAULT_SHOPS: dict[str, dict[str, Any]] = {
    "shop-a": {"transformer": "transformers.shop_a", "extractor": "mysql"},
    "shop-b": {"transformer": "transformers.shop_b", "extractor": "jsonfile",
               "topic": "sap.bp.changes", "item_path": "item"},
}


def load_settings(path: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG) or None
    raw: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist (from --config or {ENV_CONFIG})") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    return _build(raw, env, str(path or ""))


def _section(raw: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    return dict(value)


def _num(d: dict[str, Any], key: str, default: float, where: str, minimum: float = 0.0) -> float:
    v = d.pop(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
        raise ConfigError(f"{where}: {key} must be a number >= {minimum}, got {v!r}")
    return float(v)


def _build(raw: Mapping[str, Any], env: Mapping[str, str], where: str) -> Settings:
    where = where or "settings"
    state_sec = raw.get("state", {})
    file_state = state_sec.get("url", "") if isinstance(state_sec, dict) else str(state_sec)
    state = env.get(ENV["state"]) or file_state
    register(state)  # a mysql:// state URL carries a password
    b = _section(raw, "bitrix24", where)
    webhook = env.get(ENV["webhook"]) or b.pop("webhook", "")
    b.pop("webhook", None)
    if webhook and not webhook.endswith("/"):
        webhook += "/"
    bitrix = Bitrix24Settings(
        webhook=Secret(webhook),
        rate=_num(b, "rate", 2.0, where, 0.01),
        burst=int(_num(b, "burst", 50, where, 1)),
        batch_size=int(_num(b, "batch_size", 50, where, 1)),
        timeout=_num(b, "timeout", 60.0, where, 0.1),
        request_time_limit=_num(b, "request_time_limit", 60.0, where, 0),
        operating_limit=_num(b, "operating_limit", 480.0, where, 1),
        concurrency=int(_num(b, "concurrency", 4, where, 1)),
    )
    if bitrix.batch_size > 50:
        raise ConfigError(f"{where}: bitrix24.batch_size must be at most 50 (the portal's batch limit)")

    e = _section(raw, "egrul", where)
    token = env.get(ENV["egrul_token"]) or e.pop("token", "")
    e.pop("token", None)
    cache_days = dict(EgrulSettings().cache_days)
    cache_days.update({k.upper(): float(v) for k, v in dict(e.pop("cache_days", {})).items()})
    egrul = EgrulSettings(
        url=(env.get(ENV["egrul_url"]) or e.pop("url", DADATA_URL)).rstrip("/"),
        token=Secret(token),
        rate=_num(e, "rate", 20.0, where, 0.01),
        concurrency=int(_num(e, "concurrency", 8, where, 1)),
        timeout=_num(e, "timeout", 10.0, where, 0.1),
        retries=int(_num(e, "retries", 3, where, 0)),
        backoff=_num(e, "backoff", 1.0, where, 0),
        cache_days=cache_days,
    )

    k = _section(raw, "kafka", where)
    kafka = KafkaSettings(
        bootstrap=env.get(ENV["kafka_bootstrap"]) or k.pop("bootstrap", ""),
        group=k.pop("group", "crm-etl-shop-b"),
        extra=dict(k.pop("extra", {})),
    )
    for name, value in kafka.extra.items():
        if _SECRET_KAFKA_KEY.search(name):  # sasl.password, ssl.key.password, ...client.secret
            register(str(value))

    shops_raw = {name: dict(v) for name, v in DEFAULT_SHOPS.items()}
    for name, sec in _section(raw, "shops", where).items():
        if not isinstance(sec, dict):
            raise ConfigError(f"{where}: [shops.{name}] must be a table")
        shops_raw.setdefault(name, {}).update(sec)
    shops: dict[str, ShopSettings] = {}
    for name, sec in shops_raw.items():
        sec = dict(sec)
        if not sec.get("transformer"):
            raise ConfigError(f"{where}: [shops.{name}] needs transformer = \"module.path\"")
        dsn = sec.pop("dsn", "")
        if name == "shop-a" and env.get(ENV["shop_a_dsn"]):
            dsn = env[ENV["shop_a_dsn"]]
        env_dsn = env.get("CRM_ETL_" + name.upper().replace("-", "_") + "_DSN")
        dsn = env_dsn or dsn
        topic = sec.pop("topic", "")
        if name == "shop-b" and env.get(ENV["shop_b_topic"]):
            topic = env[ENV["shop_b_topic"]]
        register(dsn)
        shops[name] = ShopSettings(
            name=name,
            transformer=sec.pop("transformer"),
            extractor=sec.pop("extractor", ""),
            dsn=Secret(dsn),
            topic=topic,
            item_path=sec.pop("item_path", "item"),
            since=str(sec.pop("since", "")),
            options=sec,
        )
    return Settings(state=str(state or "crm-etl-state.sqlite"), bitrix24=bitrix, egrul=egrul,
                    kafka=kafka, shops=shops, source_file=where if where != "settings" else "")
