"""Who is calling: a role and the scope it acts within (从令牌中得到的调用者身份)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"  # 民政局协调员: everything under a region code
    station = "station"  # 社工站: one station
    organization = "organization"  # 社会组织: one organization
    auditor = "auditor"  # read-only over a region


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `region` scopes coordinators and auditors; the ids scope the other two."""

    subject: str
    role: Role
    region: str | None = None
    station_id: int | None = None
    organization_id: int | None = None
    request_id: str | None = None

    def with_request(self, request_id: str | None) -> Principal:
        return replace(self, request_id=request_id)

    @property
    def scope(self) -> str | None:
        """The scope as written in tokens."""
        if self.role in (Role.coordinator, Role.auditor):
            return self.region
        if self.role == Role.station:
            return str(self.station_id)
        if self.role == Role.organization:
            return str(self.organization_id)
        return None

    @classmethod
    def system(cls, what: str = "system") -> Principal:
        """The service itself (demo loading, background jobs)."""
        return cls(subject=what, role=Role.admin)
