"""Service configuration: one `Settings` object read from `MATCH_`-prefixed environment variables."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'jiedui.db'}"


def normalise_database_url(url: str) -> str:
    """Map the URL spellings operators use to the async drivers this service runs on."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Settings(BaseSettings):
    """Everything the service can be told from outside, with safe defaults for the embedded mode."""

    model_config = SettingsConfigDict(env_prefix="MATCH_", env_file=".env", extra="ignore")

    database_url: str = Field(DEFAULT_SQLITE_URL, description="sqlite+aiosqlite:///… or postgresql+asyncpg://…")
    # SQLAlchemy closes an overflow connection when it is returned, so a steady concurrency above the pool size
    # opens a connection per request (measured: ~0.4 ms of API CPU per request, plus a PostgreSQL backend fork).
    db_pool_size: int = Field(10, ge=1, le=100, description="connections kept open per process")
    db_max_overflow: int = Field(0, ge=0, le=100, description="extra short-lived connections under bursts")
    jobs_pool_size: int = Field(5, ge=1, le=100, description="procrastinate's psycopg pool (queueing, workers)")
    db_pool_recycle_s: int = Field(1800, ge=30)
    db_pool_pre_ping: bool = Field(True, description="check a pooled connection before use if it sat idle (below)")
    db_pool_ping_idle_s: float = Field(
        5.0, ge=0, le=3600, description="ping only connections idle longer than this (0: before every use)"
    )
    db_statement_cache_size: int = Field(100, ge=0, description="0 behind a transaction-pooling pgbouncer")
    db_echo: bool = False
    application_name: str = "jiedui-matching"

    page_size_default: int = Field(50, ge=1, le=1000)
    page_size_max: int = Field(200, ge=1, le=5000)
    batch_max_items: int = Field(500, ge=1, le=10000)
    max_body_bytes: int = Field(2_000_000, ge=1024)

    jwt_secret: SecretStr | None = Field(None, description="HS256 signing secret (embedded default: var/jwt-secret)")
    jwt_public_key: str | None = Field(None, description="PEM public key for RS256 tokens from an identity provider")
    jwt_jwks_url: str | None = Field(None, description="JWKS endpoint of the identity provider (RS256)")
    jwt_issuer: str = "jiedui-matching"
    jwt_audience: str = "jiedui-api"
    jwt_leeway_s: int = Field(30, ge=0, le=300)
    rate_limit: str = Field("600/minute", description="per principal, in the `limits` notation")
    rate_limit_storage: str = Field("memory://", description="limits storage URI; redis://… shares it across processes")

    change_penalty: int = Field(1, ge=0, le=1000, description="cost per unit that differs from standing proposals")
    engine_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="processes one match may use (only scopes of 100k+ candidate pairs split; each extra process "
        "holds ~400 MiB at national size)",
    )
    proposal_ttl_days: int = Field(14, ge=1, le=365, description="unanswered proposals expire after this many days")
    rematch_debounce_s: float = Field(5.0, ge=0, le=3600, description="wait for changes to settle before re-matching")
    inline_runs: bool = Field(True, description="solve a match run within its request instead of queueing it")
    in_process_worker: bool = Field(True, description="run the job worker inside the API process (embedded mode)")

    webhook_allow_private: bool = Field(False, description="allow loopback/private webhook targets (tests, intranets)")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(8, ge=1, le=50)

    hot_routes: bool = Field(
        True, description="answer the four busiest requests without FastAPI's per-request machinery (api/hot.py)"
    )
    gc_freeze: bool = Field(True, description="exempt the startup heap from garbage collection (short GC pauses)")
    log_format: str = Field("json", pattern="^(json|console)$", description="json lines, or console for humans")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    shutdown_grace_s: int = Field(30, ge=0, le=600, description="time to finish in-flight requests on SIGTERM")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    load_demo_data: bool = True

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def proposal_ttl(self) -> timedelta:
        return timedelta(days=self.proposal_ttl_days)

    @property
    def uses_rs256(self) -> bool:
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    def signing_secret(self) -> str:
        """The HS256 secret; the embedded default keeps a generated one in var/ so tokens survive restarts."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if not self.is_sqlite:
            raise RuntimeError("MATCH_JWT_SECRET, MATCH_JWT_PUBLIC_KEY or MATCH_JWT_JWKS_URL must be set on PostgreSQL")
        path = PROJECT_ROOT / "var" / "jwt-secret"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
