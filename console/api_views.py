"""The account-state API: ``GET /api/v1/customers/<id>/state``, the product's
``POST /api/v1/customers/<id>/provisioned`` and the OpenAPI document.

Authentication is ``Authorization: Bearer <token>`` only (no session cookies, so no
CSRF surface): 401 for a missing, unknown or revoked token, 403 for a token without
the scope the call needs (``state:read``, ``provisioning:write``), 429 with ``Retry-After`` over the per-token rate limit, 404
for an id no customer has. Responses are never cached.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from console.api_tokens import api_rate_limit, api_token_authenticate
from console.models import API_SCOPE_PROVISIONING_WRITE, API_SCOPE_STATE_READ, ApiToken
from console.selectors import account_state, resolve_customer
from provisioning import states as provisioning

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


def _authorize(request: HttpRequest, scope: str) -> tuple[ApiToken | None, HttpResponse | None]:
    """The request's token when it may call with ``scope``; else the error to answer."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None, _error(
            401,
            "unauthenticated",
            "Send 'Authorization: Bearer <token>'.",
            WWW_Authenticate='Bearer realm="switchboard"',
        )
    token = api_token_authenticate(raw.strip())
    if token is None or not token.is_active:
        return None, _error(
            401,
            "invalid_token",
            "This token is unknown or has been revoked.",
            WWW_Authenticate='Bearer realm="switchboard", error="invalid_token"',
        )
    if not token.has_scope(scope):
        return None, _error(403, "insufficient_scope", f"This token lacks the {scope} scope.")
    retry_after = api_rate_limit(token)
    if retry_after is not None:
        return None, _error(
            429,
            "rate_limited",
            f"Too many requests; retry in {retry_after} s.",
            Retry_After=str(retry_after),
        )
    return token, None


def _not_found() -> JsonResponse:
    return _error(
        404,
        "not_found",
        "No customer has this Stripe customer id, product user id or internal id.",
    )


@require_GET
def customer_state(request: HttpRequest, ref: str) -> HttpResponse:
    token, refused = _authorize(request, API_SCOPE_STATE_READ)
    if refused is not None:
        return refused
    customer = resolve_customer(ref) if _plausible_ref(ref) else None
    if customer is None:
        return _not_found()
    response = JsonResponse(account_state(customer))
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # bearer tokens only, never a session cookie: no CSRF surface
@require_POST
def customer_provisioned(request: HttpRequest, ref: str) -> HttpResponse:
    """The product says it provisioned the customer: ``active`` (and the welcome email)
    if they are waiting for it. Idempotent: 200 with ``changed: false`` when already
    active; 409 when the customer is not entitled (never paid, or revoked)."""
    token, refused = _authorize(request, API_SCOPE_PROVISIONING_WRITE)
    if refused is not None:
        return refused
    customer = resolve_customer(ref) if _plausible_ref(ref) else None
    if customer is None:
        return _not_found()
    changed = provisioning.provisioned(
        customer.pk,
        how=f"confirmed through the API (token {token.prefix})",
        cause=f"api_token:{token.pk}",
    )
    customer.refresh_from_db(fields=["onboarding_state"])
    if not changed and customer.onboarding_state != "active":
        return _error(
            409,
            "not_entitled",
            "This customer has no paid access to provision "
            f"(onboarding state: {customer.onboarding_state}).",
        )
    response = JsonResponse(
        {
            "customer_id": str(customer.pk),
            "onboarding_state": customer.onboarding_state,
            "changed": changed,
        }
    )
    response["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=1)
def _openapi_bytes() -> bytes:
    return OPENAPI_PATH.read_bytes()


@require_GET
def openapi_document(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_openapi_bytes(), content_type="application/json")
