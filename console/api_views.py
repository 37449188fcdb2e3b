"""The account-state API: ``GET /api/v1/customers/<id>/state`` and its OpenAPI document.

Authentication is ``Authorization: Bearer <token>`` only (no session cookies, so no
CSRF surface): 401 for a missing, unknown or revoked token, 403 for a token without
the ``state:read`` scope, 429 with ``Retry-After`` over the per-token rate limit, 404
for an id no customer has. Responses are never cached.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from console.api_tokens import api_rate_limit, api_token_authenticate
from console.models import API_SCOPE_STATE_READ
from console.selectors import account_state, resolve_customer

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _plausible_ref(ref: str) -> bool:
    """An id some customer could have: not empty, not longer than the id columns, no
    control characters (a NUL cannot even be sent to PostgreSQL) and valid UTF-8. Anything
    else is answered 404 without a query."""
    if not ref or len(ref) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in ref):
        return False
    try:
        ref.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@require_GET
def customer_state(request: HttpRequest, ref: str) -> HttpResponse:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return _error(
            401,
            "unauthenticated",
            "Send 'Authorization: Bearer <token>'.",
            WWW_Authenticate='Bearer realm="switchboard"',
        )
    token = api_token_authenticate(raw.strip())
    if token is None or not token.is_active:
        return _error(
            401,
            "invalid_token",
            "This token is unknown or has been revoked.",
            WWW_Authenticate='Bearer realm="switchboard", error="invalid_token"',
        )
    if not token.has_scope(API_SCOPE_STATE_READ):
        return _error(
            403, "insufficient_scope", f"This token lacks the {API_SCOPE_STATE_READ} scope."
        )
    retry_after = api_rate_limit(token)
    if retry_after is not None:
        return _error(
            429,
            "rate_limited",
            f"Too many requests; retry in {retry_after} s.",
            Retry_After=str(retry_after),
        )
    customer = resolve_customer(ref) if _plausible_ref(ref) else None
    if customer is None:
        return _error(
            404,
            "not_found",
            "No customer has this Stripe customer id, product user id or internal id.",
        )
    response = JsonResponse(account_state(customer))
    response["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=1)
def _openapi_bytes() -> bytes:
    return OPENAPI_PATH.read_bytes()


@require_GET
def openapi_document(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_openapi_bytes(), content_type="application/json")
