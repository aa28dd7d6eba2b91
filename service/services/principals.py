"""Who is calling. Until authentication lands every caller is the local operator; routes already ask for one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a role and the scope it acts within."""

    subject: str
    role: str
    scope: str | None = None

    @classmethod
    def local_operator(cls) -> Principal:
        return cls(subject="local-operator", role="admin")
