"""The one settings object: the only reader of the environment.

Each process builds ``Settings()`` once at start and passes it down. A bad
value fails there, naming the environment variable (pydantic-settings reports
the field, and the field *is* the variable name). Domain code never reads
``os.environ``.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.core.egress import EgressPolicy
from dialer.core.errors import ConfigError
from dialer.core.keyring import Keyring

REGION_URLS = {"sg": "https://api.exotel.com", "in": "https://api.in.exotel.com"}
# Values that must never protect a server: the old built-in defaults and the
# placeholders of the shipped examples (deploy/secret.example.yaml, .env.example).
KNOWN_DEFAULTS = frozenset(
    {
        "dev-insecure-secret-change-me",
        "dev-api-key",
        "REPLACE-ME-with-32-random-bytes-hex",
        "REPLACE-ME-with-a-random-api-key",
    }
)
_PLACEHOLDER = re.compile(
    r"replace|change[-_ ]?me|placeholder|example|your[-_ ]|dummy|secret[-_]?here|<.*>",
    re.IGNORECASE,
)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")
MIN_SECRET_CHARS = 32
GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
#: every listening port a local run needs (dialer up, tests and benchmarks pick free ones)
LISTEN_PORTS = (
    "DIALER_PORT",
    "STREAMER_PORT",
    "SANDBOX_PORT",
    "FLOWER_PORT",
    "DIALER_METRICS_PORT",
    "STREAMER_METRICS_PORT",
)


class Settings(BaseSettings):
    """Typed, frozen configuration. Field names are the environment names."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    REDIS_URL: str | None = None
    # Celery's broker, apart from the state store: amqp://user:pass@host:5672/vhost
    # (RabbitMQ) or another redis://. Unset: the state Redis (REDIS_URL) is the broker.
    CELERY_BROKER_URL: str | None = None
    EXOTEL_API_URL: AnyHttpUrl = AnyHttpUrl(REGION_URLS["sg"])
    EXOTEL_ACCOUNT_SID: str | None = None
    EXOTEL_API_KEY: str | None = None
    EXOTEL_API_TOKEN: SecretStr | None = None
    EXOTEL_CALLER_ID: str | None = None
    EXOTEL_MAX_CONCURRENT: int = Field(default=10, ge=1, le=100_000)
    EXOTEL_CALLS_PER_MINUTE: int = Field(default=200, ge=1, le=100_000)
    DIALER_PUBLIC_URL: AnyHttpUrl | None = None
    STREAMER_PUBLIC_URL: str | None = None
    # No defaults: server processes refuse to start without real values
    # (``require_server_secrets``); client commands need only the API key.
    DIALER_SECRET: SecretStr | None = None
    DIALER_SECRET_PREVIOUS: SecretStr | None = None
    DIALER_API_KEY: SecretStr | None = None
    DIALER_API_URL: AnyHttpUrl | None = None
    DIALER_HOST: str = "127.0.0.1"
    DIALER_PORT: int = Field(default=8080, ge=0, le=65535)
    STREAMER_PORT: int = Field(default=8081, ge=0, le=65535)
    SANDBOX_PORT: int = Field(default=8082, ge=0, le=65535)
    FLOWER_PORT: int = Field(default=5555, ge=0, le=65535)
    DIALER_DATA_DIR: Path = Path(".dialer")
    DIALER_DEFAULT_REGION: str = "IN"
    # Exotel HTTP: a dial is short; a read timeout makes the outcome *unknown*.
    EXOTEL_CONNECT_TIMEOUT_S: float = Field(default=5.0, gt=0)
    EXOTEL_READ_TIMEOUT_S: float = Field(default=15.0, gt=0)
    # How long a slot is held past the call's time limit before reconciliation asks Exotel.
    DIALER_LEASE_MARGIN_S: int = Field(default=120, ge=1)
    # A call left in dialing/unknown this long is reconciled against Exotel.
    DIALER_RECONCILE_AFTER_S: float = Field(default=60, gt=0)
    # A placed call not answered within this is checked with Exotel (lost callbacks).
    DIALER_RING_TIMEOUT_S: float = Field(default=120, gt=0)
    # An answered call with no terminal status is checked with Exotel this often.
    DIALER_ANSWERED_CHECK_S: float = Field(default=600, gt=0)
    # After an attempt's stream ends (stop or close), a terminal callback gets this
    # long; then one call-details request settles the call (a lost callback).
    DIALER_STREAM_GRACE_S: float = Field(default=10, gt=0, le=3600)
    # How often beat runs reconciliation (leases that ran out, stream ends past grace).
    DIALER_RECONCILE_TICK_S: float = Field(default=2, gt=0, le=600)
    # Share of each account's per-minute API budget that dials leave to reconciliation.
    DIALER_RECONCILE_RESERVE_PCT: int = Field(default=10, ge=0, le=50)
    # On SIGTERM the streamer lets live calls run this long before closing them (1001).
    STREAMER_DRAIN_S: float = Field(default=300, ge=0, le=86_400)
    # A status callback must be stored within this or it gets 503 (Exotel waits 15 s).
    DIALER_CALLBACK_DEADLINE_S: float = Field(default=8, gt=0, le=14)
    DIALER_TICK_S: float = Field(default=1.0, gt=0)
    # A stream token opens one stream, only while its attempt is live; this bounds
    # how long after the dial that can happen (ringing, Exotel's queue).
    DIALER_STREAM_TOKEN_TTL_S: int = Field(default=1800, ge=60)
    DIALER_LOG_LEVEL: str = "INFO"
    # Egress policy (dialer.net.egress): hosts, addresses and CIDRs that URLs from the
    # API (account api_url, webhook_url, relay bots) may reach although internal.
    DIALER_EGRESS_ALLOW: str = ""
    # /metrics is served on its own port, never on the public one.
    DIALER_METRICS_HOST: str = "127.0.0.1"
    DIALER_METRICS_PORT: int = Field(default=9180, ge=0, le=65535)
    STREAMER_METRICS_PORT: int = Field(default=9181, ge=0, le=65535)
    # REST requests per minute per API key (429 + Retry-After past it); 0: no limit.
    DIALER_API_RATE_PER_MIN: int = Field(default=600, ge=0, le=10_000_000)
    # Finished campaigns (contacts, outcomes, answers, recordings' URLs) and raw
    # callbacks are deleted from Redis this long after they finish.
    DIALER_RETENTION_DAYS: float = Field(default=30.0, gt=0, le=3650)
    # Surveys come with the campaign as content; a `survey:NAME` sent without its
    # content is read from this directory (names inside it only), else refused.
    DIALER_SURVEY_DIR: Path | None = None

    @field_validator("DIALER_LOG_LEVEL")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @field_validator("DIALER_EGRESS_ALLOW")
    @classmethod
    def _allow(cls, v: str) -> str:
        EgressPolicy.parse(v)  # raises ValueError naming the bad item
        return v

    @field_validator("CELERY_BROKER_URL")
    @classmethod
    def _broker(cls, v: str | None) -> str | None:
        if v and not v.startswith(BROKER_SCHEMES):
            raise ValueError("must start with " + ", ".join(BROKER_SCHEMES))
        return v or None

    @field_validator("STREAMER_PUBLIC_URL")
    @classmethod
    def _ws(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _reconcile_after_dial(self) -> Settings:
        # Reconciliation may only judge a dial after its HTTP request can no longer
        # be in flight, or it could requeue a call that is about to be placed.
        if (
            self.DIALER_RECONCILE_AFTER_S
            <= self.EXOTEL_CONNECT_TIMEOUT_S + self.EXOTEL_READ_TIMEOUT_S
        ):
            raise ValueError(
                "DIALER_RECONCILE_AFTER_S must exceed EXOTEL_CONNECT_TIMEOUT_S + "
                "EXOTEL_READ_TIMEOUT_S"
            )
        return self

    @cached_property
    def exotel_configured(self) -> bool:
        return bool(self.EXOTEL_ACCOUNT_SID and self.EXOTEL_API_KEY and self.EXOTEL_API_TOKEN)

    @cached_property
    def egress_policy(self) -> EgressPolicy:
        """The allow-list, and the operator's own Exotel URL as a trusted origin."""
        return EgressPolicy.parse(self.DIALER_EGRESS_ALLOW, [str(self.EXOTEL_API_URL)])

    @property
    def redis_url(self) -> str:
        """The state store."""
        return self.REDIS_URL or DEFAULT_REDIS_URL

    @property
    def broker_url(self) -> str:
        """Celery's broker: CELERY_BROKER_URL, else the state Redis."""
        return self.CELERY_BROKER_URL or self.redis_url

    @property
    def public_url(self) -> str:
        if self.DIALER_PUBLIC_URL:
            return str(self.DIALER_PUBLIC_URL).rstrip("/")
        return f"http://127.0.0.1:{self.DIALER_PORT}"

    @property
    def streamer_url(self) -> str:
        return self.STREAMER_PUBLIC_URL or f"ws://127.0.0.1:{self.STREAMER_PORT}"

    @property
    def api_url(self) -> str:
        if self.DIALER_API_URL:
            return str(self.DIALER_API_URL).rstrip("/")
        return f"http://127.0.0.1:{self.DIALER_PORT}"

    def required_secret(self, name: str) -> str:
        """The value of DIALER_SECRET or DIALER_API_KEY; ConfigError when it is not usable."""
        value: SecretStr | None = getattr(self, name)
        problem = secret_problem(name, value)
        if problem or value is None:
            raise ConfigError(problem or f"{name} is not set")
        return value.get_secret_value()

    @cached_property
    def keyring(self) -> Keyring:
        """Per-purpose keys derived from DIALER_SECRET (and DIALER_SECRET_PREVIOUS)."""
        previous = self.DIALER_SECRET_PREVIOUS
        return Keyring.from_secret(
            self.required_secret("DIALER_SECRET").encode(),
            previous.get_secret_value().encode() if previous else None,
        )

    @property
    def api_key(self) -> str:
        """The bootstrap admin key."""
        return self.required_secret("DIALER_API_KEY")

    @property
    def retention_s(self) -> float:
        return self.DIALER_RETENTION_DAYS * 86_400.0


def secret_problem(name: str, value: SecretStr | None) -> str | None:
    """Why ``value`` cannot protect a server (None when it can), naming the variable."""
    how = f"generate one with: {GENERATE_HINT}"
    if value is None or not value.get_secret_value():
        return f"{name} is not set; {how}"
    text = value.get_secret_value()
    if text in KNOWN_DEFAULTS or _PLACEHOLDER.search(text):
        return f"{name} is a published default or placeholder, not a secret; {how}"
    if len(text) < MIN_SECRET_CHARS:
        return f"{name} is too short ({len(text)} characters, need {MIN_SECRET_CHARS}); {how}"
    if len(set(text)) < 10:
        return f"{name} repeats too few distinct characters to be random; {how}"
    return None


def server_secret_problems(settings: Settings) -> list[str]:
    """Every reason a server process must not start with these settings."""
    problems = [
        secret_problem("DIALER_SECRET", settings.DIALER_SECRET),
        secret_problem("DIALER_API_KEY", settings.DIALER_API_KEY),
    ]
    if settings.DIALER_SECRET_PREVIOUS is not None:
        problems.append(secret_problem("DIALER_SECRET_PREVIOUS", settings.DIALER_SECRET_PREVIOUS))
    if (
        settings.DIALER_SECRET is not None
        and settings.DIALER_API_KEY is not None
        and settings.DIALER_SECRET.get_secret_value() == settings.DIALER_API_KEY.get_secret_value()
    ):
        problems.append("DIALER_SECRET and DIALER_API_KEY must differ; generate each separately")
    return [p for p in problems if p]


def require_server_secrets(settings: Settings) -> Settings:
    """Fail closed: raise ConfigError unless the signing secret and API key are real."""
    problems = server_secret_problems(settings)
    if problems:
        raise ConfigError("refusing to start: " + "; ".join(problems))
    return settings


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; a bad value raises ConfigError naming it."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
