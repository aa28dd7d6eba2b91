"""Bearer tokens: only well-signed, unexpired tokens of the configured algorithm get in; callers are rate limited."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.services import tokens
from service.services.principals import Role
from tests.apps import with_client
from tests.conftest import TEST_JWT_SECRET, token


def claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "sub": "coordinator-yichang",
        "role": "coordinator",
        "scope": "420500",
        "iat": now,
        "exp": now + 600,
        "iss": "jiedui-matching",
        "aud": "jiedui-api",
    } | overrides


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def status_with(anonymous: httpx.AsyncClient, raw: str | None) -> httpx.Response:
    headers = {} if raw is None else {"Authorization": raw}
    return await anonymous.get("/api/v1/needs", headers=headers)


async def test_a_valid_token_gets_in(anonymous):
    good = jwt.encode(claims(), TEST_JWT_SECRET, algorithm="HS256")
    assert (await status_with(anonymous, f"Bearer {good}")).status_code == 200


@pytest.mark.parametrize(
    ("why", "raw"),
    [
        ("missing", None),
        ("not bearer", "Basic dXNlcjpwYXNz"),
        ("malformed", "Bearer not.a.jwt"),
        ("expired", "Bearer " + jwt.encode(claims(iat=1, exp=2), TEST_JWT_SECRET, algorithm="HS256")),
        ("wrong signature", "Bearer " + jwt.encode(claims(), "another-secret-of-enough-length-000", algorithm="HS256")),
        ("alg none", "Bearer " + b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + "."),
        ("wrong audience", "Bearer " + jwt.encode(claims(aud="someone-else"), TEST_JWT_SECRET, algorithm="HS256")),
        ("wrong issuer", "Bearer " + jwt.encode(claims(iss="evil"), TEST_JWT_SECRET, algorithm="HS256")),
        ("unknown role", "Bearer " + jwt.encode(claims(role="mayor"), TEST_JWT_SECRET, algorithm="HS256")),
        ("coordinator without region", "Bearer " + jwt.encode(claims(scope=None), TEST_JWT_SECRET, algorithm="HS256")),
        (
            "no expiry",
            "Bearer "
            + jwt.encode({k: v for k, v in claims().items() if k != "exp"}, TEST_JWT_SECRET, algorithm="HS256"),
        ),
    ],
)
async def test_bad_tokens_get_401_with_a_bearer_challenge(anonymous, why, raw):
    response = await status_with(anonymous, raw)
    assert response.status_code == 401, why
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthenticated"
    if raw:
        assert raw.split(" ", 1)[-1] not in response.text  # the token is never echoed


async def test_probes_and_docs_need_no_token(anonymous):
    assert (await anonymous.get("/healthz")).status_code == 200
    assert (await anonymous.get("/openapi.json")).status_code == 200


async def test_tokens_never_reach_the_logs(app, anonymous, caplog):
    caplog.set_level(logging.DEBUG)
    good = token(app, Role.coordinator, "420502")
    await anonymous.get("/api/v1/needs", headers={"Authorization": f"Bearer {good}"})
    await anonymous.get("/api/v1/needs", headers={"Authorization": f"Bearer {good}x"})
    assert good not in caplog.text and good[:40] not in caplog.text


async def test_rs256_tokens_from_an_identity_provider(backend):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = backend.settings(jwt_public_key=public_pem)
    signed = jwt.encode(claims(role="auditor"), key, algorithm="RS256")
    # algorithm confusion: an HS256 token "signed" with the public key must not pass
    confused = jwt.encode(claims(), "x" * 32, algorithm="HS256")

    async def call(http: httpx.AsyncClient) -> tuple[int, int]:
        ok = await http.get("/api/v1/needs", headers={"Authorization": f"Bearer {signed}"})
        bad = await http.get("/api/v1/needs", headers={"Authorization": f"Bearer {confused}"})
        return ok.status_code, bad.status_code

    assert await with_client(settings, call) == (200, 401)


async def test_each_principal_has_its_own_rate_limit_with_retry_after(backend):
    settings = backend.settings(rate_limit="3/minute")
    first = tokens.issue(settings, subject="busy", role=Role.auditor, scope="420502", lifetime_s=60)
    second = tokens.issue(settings, subject="calm", role=Role.auditor, scope="420502", lifetime_s=60)

    async def call(http: httpx.AsyncClient) -> list[httpx.Response]:
        busy = [await http.get("/api/v1/needs", headers={"Authorization": f"Bearer {first}"}) for _ in range(4)]
        return [*busy, await http.get("/api/v1/needs", headers={"Authorization": f"Bearer {second}"})]

    responses = await with_client(settings, call)
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 200]
    assert 1 <= int(responses[3].headers["retry-after"]) <= 60
    assert responses[3].json()["code"] == "rate_limited"


def test_tokens_with_roles_and_scopes_that_do_not_fit_are_not_issued(backend):
    with pytest.raises(tokens.TokenError):
        tokens.issue(backend.settings(), subject="s", role=Role.station, scope=None, lifetime_s=60)
    with pytest.raises(tokens.TokenError):
        tokens.issue(backend.settings(), subject="s", role=Role.organization, scope="宜昌", lifetime_s=60)
    with pytest.raises(tokens.TokenError):
        tokens.issue(backend.settings(), subject="s", role=Role.coordinator, scope="42x", lifetime_s=60)


async def test_a_token_accepted_before_is_refused_once_it_expires(backend):
    settings = backend.settings(jwt_leeway_s=0)
    soon = jwt.encode(claims(exp=int(time.time()) + 2), TEST_JWT_SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {soon}"}

    async def call(http: httpx.AsyncClient) -> list[int]:
        first = [(await http.get("/api/v1/needs", headers=headers)).status_code for _ in range(3)]  # remembered
        await asyncio.sleep(max(0.0, jwt.decode(soon, options={"verify_signature": False})["exp"] - time.time()) + 0.2)
        return [*first, (await http.get("/api/v1/needs", headers=headers)).status_code]

    assert await with_client(settings, call) == [200, 200, 200, 401]


def test_a_remembered_token_is_still_checked_against_its_own_signature(backend):
    verifier = tokens.Verifier(backend.settings())
    good = jwt.encode(claims(), TEST_JWT_SECRET, algorithm="HS256")
    assert verifier.verify(good).subject == "coordinator-yichang"
    header, payload, _ = good.split(".")
    forged = f"{header}.{b64(claims(role='admin', scope=None))}.{good.split('.')[2]}"  # the good token's signature
    with pytest.raises(tokens.TokenError):
        verifier.verify(forged)
    assert payload != forged.split(".")[1]
