"""Settings come from MATCH_ variables; database URLs are mapped to the async drivers."""

from __future__ import annotations

from service.settings import Settings, normalise_database_url


def test_operator_spellings_map_to_async_drivers():
    assert normalise_database_url("postgres://u@db/jiedui") == "postgresql+asyncpg://u@db/jiedui"
    assert normalise_database_url("postgresql://u@db/jiedui") == "postgresql+asyncpg://u@db/jiedui"
    assert normalise_database_url("sqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("MATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/jiedui")
    monkeypatch.setenv("MATCH_PAGE_SIZE_MAX", "50")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1/jiedui"
    assert settings.page_size_max == 50 and not settings.is_sqlite


def test_the_default_is_an_sqlite_file_under_var(monkeypatch):
    monkeypatch.delenv("MATCH_DATABASE_URL", raising=False)
    assert Settings(_env_file=None).database_url.endswith("/var/jiedui.db")
