"""`mysql://user:password@host:port/database?option=value` URLs, parsed once for every MySQL user
(the shop replica's DSN in extractors/mysql.py, the state store's URL in etl/state/mysql.py).

User and password may be percent-encoded; `mysql+pymysql://` and `mariadb://` are accepted. The
URL is registered as a secret, and every error message shows it with the password masked.
Each caller names the error class to raise and how to label the URL in messages, reads its own
options with `seconds`/`integer`/`flag`, then calls `done()` to refuse the options nobody read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from etl.secrets import Secret, normalise_userinfo, redact_url, register, scrub

DEFAULT_PORT = 3306
SCHEMES = ("mysql", "mariadb", "mysql+pymysql")
_MAX_SECONDS = 365 * 86400


@dataclass
class MySqlUrl:
    """The parts of a parsed URL; options not yet read stay in `options`."""

    host: str
    port: int
    user: str
    password: Secret
    database: str
    options: dict[str, str]
    label: str        # how messages name the URL, password masked (e.g. "state store mysql://u:***@h/db")
    help: str         # the expected form, quoted in messages
    error: type[Exception] = field(default=ValueError)

    @property
    def where(self) -> str:
        """`user@host:port/db`: names the server in messages, without the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}:{self.port}/{self.database}"

    def seconds(self, key: str, default: float) -> float:
        """A positive number of seconds (below a year), or `default` when absent."""
        raw = self.options.pop(key, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (0 < value < _MAX_SECONDS):
            raise self.error(f"{self.label}: {key} must be a positive number of seconds, got {raw!r}")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        raw = self.options.pop(key, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise self.error(f"{self.label}: {key} must be a whole number >= {minimum}, got {raw!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.options.pop(key, None)
        if raw is None:
            return default
        return raw.strip().lower() not in ("0", "false", "no", "off")

    def done(self) -> None:
        """Refuse options no reader took (a typo must not be silently ignored)."""
        if self.options:
            raise self.error(f"{self.label}: unknown option(s) {', '.join(sorted(self.options))}; "
                             f"expected {self.help}")


def wire_password(password: Secret) -> bytes:
    """The password as the server hashed it at CREATE USER: UTF-8, what clients send today
    (pymysql would encode a str as latin-1 and fail on any other letter)."""
    return password.reveal().encode("utf-8")


def parse_mysql_url(url: str, *, label: str, help: str, error: type[Exception]) -> MySqlUrl:
    """Split a `mysql://` URL. `label` prefixes messages (followed by the masked URL); `error` is
    raised, never showing the password, if the URL is unusable."""
    text = url.strip()
    register(text)  # the URL and its password are hidden from every message from now on
    shown = f"{label} {redact_url(text)}"
    text = normalise_userinfo(text)  # a password with an unencoded @ / ? # stays the password
    try:
        u = urlsplit(text)
        port = u.port or DEFAULT_PORT
    except ValueError as e:
        raise error(f"{shown}: {scrub(str(e))}; expected {help}") from None
    if u.scheme.lower() not in SCHEMES:
        raise error(f"{shown}: not a mysql:// URL; expected {help}")
    database = unquote(u.path[1:] if u.path.startswith("/") else u.path)
    if not u.hostname or not database or "/" in database or u.fragment:
        raise error(f"{shown}: it needs a host and a database name; expected {help}")
    options = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    return MySqlUrl(host=u.hostname, port=port, user=unquote(u.username or ""),
                    password=Secret(unquote(u.password or "")), database=database, options=options,
                    label=shown, help=help, error=error)
