"""RFC 9457 problem details for every error, in the caller's language (Accept-Language: zh-CN → Chinese)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import DomainError, FieldError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"

# Chinese wording for pydantic's error types; {placeholders} come from the error's context.
_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "string_too_short": "内容过短（至少 {min_length} 个字符）",
    "string_too_long": "内容过长（最多 {max_length} 个字符）",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为布尔值",
    "bool_parsing": "应为布尔值（true/false）",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "必须大于或等于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "必须小于或等于 {le}",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "日期格式不正确（YYYY-MM-DD）",
    "date_from_datetime_parsing": "日期格式不正确（YYYY-MM-DD）",
    "date_from_datetime_inexact": "应为日期，不含时间",
    "enum": "取值必须是以下之一：{expected}",
    "literal_error": "取值必须是以下之一：{expected}",
    "list_type": "应为列表",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多允许 {max_length} 项",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "json_invalid": "请求体不是合法的 JSON",
    "json_type": "请求体不是合法的 JSON",
}


def wants_chinese(request: Request) -> bool:
    """True when the caller's most preferred language is Chinese."""
    header = request.headers.get("accept-language", "")
    best, best_q = "", -1.0
    for part in header.split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang and q > best_q:
            best, best_q = lang.lower(), q
    return best.startswith("zh")


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://jiedui.example.org/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _split_bilingual(message: str) -> tuple[str, str]:
    """Our own validators write 'English / 中文'; pydantic prefixes 'Value error, '."""
    message = message.removeprefix("Value error, ")
    en, sep, zh = message.partition(" / ")
    return (en, zh) if sep else (message, message)


def _pydantic_to_field_error(err: dict[str, Any]) -> FieldError:
    loc = [str(p) for p in err.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        where, loc = loc[0], loc[1:]
    else:
        where = "body"
    pointer = "/" + "/".join(loc) if where == "body" else f"{where}:{'.'.join(loc)}"
    kind = err.get("type", "value_error")
    if kind in ("value_error", "assertion_error"):
        en, zh = _split_bilingual(err.get("msg", ""))
        return FieldError(pointer, "invalid", en, zh)
    ctx = {k: v for k, v in (err.get("ctx") or {}).items()}
    template = _ZH.get(kind)
    try:
        zh = template.format(**ctx) if template else err.get("msg", "")
    except (KeyError, IndexError):
        zh = template or err.get("msg", "")
    return FieldError(pointer, kind, err.get("msg", ""), zh)


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    zh = wants_chinese(request)
    errors = [_pydantic_to_field_error(e).render(zh) for e in exc.errors()]
    return problem_response(
        request,
        status=422,
        code="invalid_input",
        title="输入数据无效" if zh else "Invalid input",
        detail=f"{len(errors)} 处输入有误，未保存任何数据"
        if zh
        else f"{len(errors)} invalid field(s); nothing was stored",
        errors=errors,
    )


async def domain_problem(request: Request, exc: DomainError) -> JSONResponse:
    """The problem+json answer to a domain error (also used by the hot routes, api/hot.py)."""
    zh = wants_chinese(request)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title_zh if zh else exc.title_en,
        detail=exc.detail_zh if zh else exc.detail_en,
        errors=[e.render(zh) for e in exc.errors] or None,
        extra=exc.extra,
        headers=exc.headers or None,
    )


_HTTP_TEXT = {
    404: ("not_found", "Not found", "未找到", "No such resource", "资源不存在"),
    405: (
        "method_not_allowed",
        "Method not allowed",
        "不支持的请求方法",
        "Method not allowed here",
        "此地址不支持该方法",
    ),
    413: (
        "payload_too_large",
        "Payload too large",
        "请求体过大",
        "The request body is too large",
        "请求体超过大小限制",
    ),
}


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    zh = wants_chinese(request)
    code, title_en, title_zh, detail_en, detail_zh = _HTTP_TEXT.get(
        exc.status_code, ("http_error", "HTTP error", "请求错误", str(exc.detail), str(exc.detail))
    )
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title_zh if zh else title_en,
        detail=detail_zh if zh else detail_en,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    zh = wants_chinese(request)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="服务器内部错误" if zh else "Internal server error",
        detail="请求未能完成，未保存任何更改" if zh else "The request could not be completed; no change was stored",
    )


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on an app."""
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, domain_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_handler)


PROBLEM_SCHEMA = {
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "code": {"type": "string"},
                    "instance": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "pointer": {"type": "string"},
                                "index": {"type": "integer"},
                                "field": {"type": "string"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            }
        }
    }
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can answer."""
    text = {
        401: "Missing, expired or invalid bearer token",
        403: "Your role or scope does not allow this",
        404: "Not found (or not visible to you)",
        409: "Conflicts with the current state",
        412: "Stale If-Match version",
        413: "Body too large",
        422: "Invalid input, per field",
        428: "If-Match header required",
        429: "Rate limit exceeded; see Retry-After",
    }
    return {s: {"description": text.get(s, "Error"), **PROBLEM_SCHEMA} for s in statuses}
