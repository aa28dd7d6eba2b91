"""Bearer tokens (JWT): issued locally with HS256, or verified RS256 from a bureau's identity provider."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import jwt

from service.services.principals import Principal, Role
from service.settings import Settings

_REGION = re.compile(r"^[0-9]{2,12}$")
# A verified token is trusted again without re-checking its signature for at most this long (and never past its
# expiry): signature checks were 4.6 % of the API's CPU under load (bench/LOAD.md). Bounded by VERIFIED_MAX tokens.
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 10_000


class TokenError(Exception):
    """The token cannot be trusted; `reason` is safe to show (it never echoes the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issue(settings: Settings, *, subject: str, role: Role, scope: str | None, lifetime_s: int) -> str:
    """A signed HS256 token for local use (CLI, demo, tests)."""
    principal_from_claims({"sub": subject, "role": role, "scope": scope})  # refuse to mint a token we would reject
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "role": str(role),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": uuid.uuid4().hex,
    }
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, settings.signing_secret(), algorithm="HS256")


class Verifier:
    """Checks signature, expiry, issuer and audience with PyJWT; only the configured algorithm is accepted.

    Tokens that passed are remembered for up to VERIFIED_TTL_S (never past `exp` plus the leeway), so a client's
    repeated requests skip the signature check; a key rotated at the identity provider therefore takes effect for
    already-seen tokens within that minute."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self.uses_network = self._jwks is not None
        if settings.uses_rs256:
            self.algorithms = ["RS256"]
            self._key: Any = settings.jwt_public_key
        else:
            self.algorithms = ["HS256"]
            self._key = settings.signing_secret()

    def _key_for(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        return self._key

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; TokenError otherwise."""
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and now < hit[0]:
            return hit[1]
        principal, expires = self._check(token)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (min(expires + self.settings.jwt_leeway_s, now + VERIFIED_TTL_S), principal)
        return principal

    def _check(self, token: str) -> tuple[Principal, float]:
        """Full verification: the principal and the token's expiry time."""
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_s,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.PyJWKClientError:
            raise TokenError("signing key not found") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {type(exc).__name__}") from None
        return principal_from_claims(claims), float(claims["exp"])


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Turn verified claims into a principal, refusing roles and scopes that do not fit together."""
    try:
        role = Role(claims.get("role"))
    except ValueError:
        raise TokenError("unknown role") from None
    subject, scope = str(claims.get("sub") or ""), claims.get("scope")
    if not subject or len(subject) > 200:
        raise TokenError("bad subject")
    if role in (Role.coordinator, Role.auditor):
        if not isinstance(scope, str) or not _REGION.match(scope):
            raise TokenError("coordinator and auditor tokens need a region code scope")
        return Principal(subject, role, region=scope)
    if role in (Role.station, Role.organization):
        if not str(scope or "").isdigit():
            raise TokenError(f"{role} tokens need the {role} id as scope")
        key = "station_id" if role == Role.station else "organization_id"
        return Principal(subject, role, **{key: int(scope)})
    return Principal(subject, role)
