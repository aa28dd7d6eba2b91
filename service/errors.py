"""Typed domain errors. Each carries its HTTP status and a stable machine code; the API renders problem+json.

Messages come in English and Chinese; the API picks one by the request's Accept-Language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: a JSON pointer into the request body, a machine code and a message for people."""

    pointer: str
    code: str
    message_en: str
    message_zh: str

    def render(self, zh: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"pointer": self.pointer, "code": self.code}
        parts = [p for p in self.pointer.split("/") if p]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isalpha() and parts[2].isupper():
            # a spreadsheet cell: sheet, row, column
            item.update(sheet=parts[0], row=int(parts[1]), column=parts[2])
            item["message"] = self.message_zh if zh else self.message_en
            return item
        if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit():
            item["index"] = int(parts[1])
            parts = parts[2:]
        if parts:
            item["field"] = ".".join(parts)
        item["message"] = self.message_zh if zh else self.message_en
        return item


class DomainError(Exception):
    """Base of every error a use case may raise on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title_en: ClassVar[str] = "Bad request"
    title_zh: ClassVar[str] = "请求有误"

    def __init__(
        self,
        detail_en: str,
        detail_zh: str,
        *,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail_en)
        self.detail_en = detail_en
        self.detail_zh = detail_zh
        self.errors = errors or []
        self.extra = extra or {}
        self.headers = headers or {}
        if code:
            self.code = code  # type: ignore[misc]


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title_en = "Not found"
    title_zh = "未找到"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title_en = "Conflict with the current state"
    title_zh = "与当前状态冲突"


class StaleVersion(DomainError):
    status = 412
    code = "stale_version"
    title_en = "The resource has changed since you read it"
    title_zh = "数据已被他人修改"


class VersionRequired(DomainError):
    status = 428
    code = "if_match_required"
    title_en = "If-Match header required"
    title_zh = "缺少 If-Match 请求头"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title_en = "Authentication required"
    title_zh = "需要身份认证"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title_en = "Too many requests"
    title_zh = "请求过于频繁"


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    title_en = "Invalid input"
    title_zh = "输入数据无效"


@dataclass
class ErrorCollector:
    """Gathers every field error of a request so the caller hears about all of them at once."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, pointer: str, code: str, message_en: str, message_zh: str) -> None:
        self.errors.append(FieldError(pointer, code, message_en, message_zh))

    def raise_if_any(self, detail_en: str = "Some fields are invalid", detail_zh: str = "部分字段无效") -> None:
        if self.errors:
            raise InvalidInput(detail_en, detail_zh, errors=self.errors)
