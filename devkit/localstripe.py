"""localstripe for the tests and the demo: a subprocess on a free port, plus small shims.

localstripe (PyPI, a stateful fake of the Stripe API) is good enough to drive real
journeys (customers, cards, plans, subscriptions, invoices, payment intents, refunds)
and it sends signed webhooks for what changes. It lags behind Stripe's current API in a
few places that matter to us. Each gap is closed here, at run time, never by copying
localstripe's code:

Server side (patched inside the localstripe subprocess, see :func:`_apply_server_shims`):

- ``SubscriptionItem.subscription`` is not returned (localstripe keeps it private);
  dj-stripe's SubscriptionItem needs it to link the item to its subscription.
- Invoices, invoice lines and items, and subscriptions lack ``discounts`` (dj-stripe
  retrieves invoices with ``expand=["discounts", ...]``, which localstripe then refuses),
  and ``default_tax_rates`` is null; both are returned as empty lists.
- No Prices: a Plan is exported as a Price too (``price`` on subscription items and
  invoice lines, ``GET /v1/prices/<id>``), as Stripe does for plans.
- No ``GET /v1/products/<id>/features`` (dj-stripe reads it after syncing a product).
- No InvoicePayments: since 2025-03-31.basil an invoice's payment and a payment intent's
  invoice are read from ``GET /v1/invoice_payments?invoice=…`` or
  ``?payment[type]=payment_intent&payment[payment_intent]=…``; answered here from
  localstripe's invoices and their payment intents.
- Every write pickles the whole store to ``/tmp/localstripe.pickle`` (shared by every
  instance on the machine, O(store) per write). The store here is per process and
  started ``--from-scratch``, so the dump is switched off.

Client side (:func:`djstripe_account_ensure`): localstripe has no ``GET /v1/account``,
which dj-stripe calls (``Account.get_or_retrieve_for_api_key``) to learn which account an
API key belongs to. The ``Account`` and ``APIKey`` rows are created up front from
Stripe's own example account object, so dj-stripe never needs that call.

Gaps no shim closes, worked around by the callers: Prices cannot be created (create
Plans; they read back as Prices); a subscription with a trial stays ``incomplete`` (there
is no ``trialing``); renewals, renewal failures, ``invoice.paid``,
``customer.subscription.updated``, ``charge.refunded`` and disputes never happen. Those
events are built from Stripe's example shapes around the real objects and signed
(``devkit.stripe_events``, ``devkit.signing``).

localstripe sends each event about one second after the change, to every webhook
registered at that moment, concurrently. :meth:`LocalStripeClient.quiesce` waits (bounded)
until everything already scheduled was sent; the test fixtures call it between tests.

Run the shimmed server by hand (for ``manage.py demo_stripe_seed``)::

    .venv/bin/python -m devkit.localstripe --port 8420
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 20.0


# --- the subprocess ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalStripeClient:
    """localstripe's own configuration API (no Stripe equivalent), for a server at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def answers(self, timeout: float = 1.0) -> bool:
        """Whether a localstripe answers at ``url`` (its Stripe.js page: real Stripe's API
        host has no such path)."""
        try:
            url = f"{self.url}/js.stripe.com/v3/"
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status == 200
        except OSError:
            return False

    def _config(self, method: str, path: str, fields: dict[str, str] | None = None) -> None:
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status != 200:
                raise RuntimeError(f"localstripe {method} {path}: HTTP {response.status}")

    def register_webhook(self, webhook_id: str, url: str, secret: str) -> None:
        """``POST /_config/webhooks/<id>`` (form fields url, secret): localstripe then
        signs every event with ``secret`` and POSTs it to ``url`` about 1 s later.
        Registering the same id again replaces it."""
        self._config("POST", f"/_config/webhooks/{webhook_id}", {"url": url, "secret": secret})

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str = "",
        message: str = "",
    ) -> None:
        """Make the next ``method`` request under ``path`` answer a Stripe error (a shim of
        ours, see ``_apply_finance_shims``): Stripe refusing, for real, over HTTP."""
        self._config(
            "POST",
            "/_config/switchboard/fail_next",
            {
                "method": method,
                "path": path,
                "status": str(status),
                "type": type,
                "code": code,
                "message": message,
            },
        )

    def flush(self) -> None:
        """``DELETE /_config/data``: forget every object (webhook registrations stay)."""
        self._config("DELETE", "/_config/data")

    def newest_event_created(self, api_key: str) -> int | None:
        """The ``created`` second of the newest event localstripe holds (None if none)."""
        request = urllib.request.Request(
            f"{self.url}/v1/events?limit=100000", headers={"Authorization": f"Bearer {api_key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.load(response).get("data") or []
        return max((int(e["created"]) for e in data), default=None)

    def quiesce(self, api_key: str, *, bound: float = 5.0) -> None:
        """Return once every webhook localstripe has scheduled was sent.

        localstripe sends an event one second after creating it, to every webhook
        registered *at sending time*, so an event created at the end of one test would
        reach the receiver the next test registers. An event created during second S is
        sent before S + 2 (plus delivery time on localhost); this polls the clock until
        then, bounded, before the caller flushes and registers anew."""
        newest = self.newest_event_created(api_key)
        if newest is None:
            return
        quiet_at = newest + 2.3
        deadline = time.monotonic() + bound
        while time.time() < quiet_at:
            if time.monotonic() > deadline:
                raise RuntimeError(f"localstripe's clock: events at {newest}, now {time.time()}")
            time.sleep(0.02)  # waiting for localstripe's fixed 1 s send delay to elapse


class LocalStripe(LocalStripeClient):
    """One localstripe server process with the shims applied, on a free port.

    ``start()`` returns once the server answers (bounded by ``READY_TIMEOUT_SECONDS``);
    ``stop()`` terminates exactly the process it started. Its log goes to a temporary
    file whose tail is included in any start-up error.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="localstripe-", suffix=".log", delete=False)

    def start(self) -> LocalStripe:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devkit.localstripe",
                "--port",
                str(self.port),
                "--from-scratch",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"localstripe exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.answers(timeout=1):
                return self
            time.sleep(0.05)  # polling a starting server (bounded), not waiting for work
        self.stop()
        raise RuntimeError(
            f"localstripe did not answer on {self.url} within "
            f"{READY_TIMEOUT_SECONDS:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- client-side shim: dj-stripe's Account without GET /v1/account ------------------------


def example_account() -> dict[str, Any]:
    """Stripe's example ``account`` object (devkit/stripe_fixtures/fixtures3.json)."""
    from devkit.stripe_events import example

    return example("account")


def djstripe_account_ensure(api_key: str | None = None) -> Any:
    """Create dj-stripe's ``Account`` and ``APIKey`` rows for ``api_key`` (default
    ``settings.STRIPE_SECRET_KEY``) from Stripe's example account, so that dj-stripe's
    ``Account.get_or_retrieve_for_api_key`` finds them and never calls GET /v1/account,
    which localstripe does not have. Idempotent; returns the Account.

    This is dj-stripe's own ``APIKey.refresh_account`` with the example payload in place
    of the API answer: a stub Account, the key pointing at it, then a regular sync.
    """
    from django.conf import settings
    from django.db import transaction
    from djstripe.models import Account, APIKey
    from djstripe.models.api import get_api_key_details_by_prefix

    api_key = api_key or settings.STRIPE_SECRET_KEY
    key_type, livemode = get_api_key_details_by_prefix(api_key)
    data = example_account()
    with transaction.atomic():
        account, _ = Account.objects.get_or_create(id=data["id"])
        APIKey.objects.update_or_create(
            secret=api_key,
            defaults={
                "type": key_type,
                "livemode": livemode,
                "djstripe_owner_account": account,
                "name": "localstripe",
            },
        )
        if not account.stripe_data:
            import stripe

            account = Account.sync_from_stripe_data(
                stripe.convert_to_stripe_object(data), api_key=api_key
            )
    return account


# --- server-side shims (run inside the localstripe subprocess only) ----------------------


def _apply_server_shims() -> None:
    from localstripe import resources

    # Per-process store started from scratch: never share /tmp/localstripe.pickle.
    resources.Store.dump_to_disk = lambda self: None

    # dj-stripe links a SubscriptionItem to its subscription through this field.
    resources.SubscriptionItem.subscription = property(lambda self: self._subscription)

    def with_fixups(cls: type, fixups: dict[str, Any]) -> None:
        original = cls._export

        def _export(self: Any, expand: Any = None) -> dict[str, Any]:
            obj = original(self, expand=expand)
            for key, empty in fixups.items():
                if obj.get(key) is None:
                    obj[key] = copy.deepcopy(empty)
            return obj

        cls._export = _export

    # Current Stripe has ``discounts`` (a list) on these; dj-stripe retrieves invoices and
    # invoice items with ``expand=["discounts", "lines.data.discounts"]``, which
    # localstripe refuses ("Bad expand") when the key is absent. A property is exported
    # before expansion runs.
    for cls in (
        resources.Invoice,
        resources.InvoiceLineItem,
        resources.InvoiceItem,
        resources.Subscription,
    ):
        cls.discounts = property(lambda self: [])

    # No Prices in localstripe. In Stripe a Plan *is* a Price (same id, both APIs) and
    # subscription items and invoice lines carry ``price`` next to ``plan``: the price
    # view of the plan is exported there, and GET /v1/prices/<id> answers with it, so
    # dj-stripe links items to a Price as it would against Stripe.
    def price_of(plan: Any) -> dict[str, Any] | None:
        if plan is None:
            return None
        plan = resources.Plan._api_retrieve(plan) if isinstance(plan, str) else plan
        return {
            "id": plan.id,
            "object": "price",
            "active": plan.active,
            "billing_scheme": plan.billing_scheme,
            "created": plan.created,
            "currency": plan.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": dict(plan.metadata or {}),
            "nickname": plan.nickname,
            "product": plan.product,
            "recurring": {
                "interval": plan.interval,
                "interval_count": plan.interval_count,
                "usage_type": plan.usage_type,
                "meter": None,
                "trial_period_days": plan.trial_period_days,
            },
            "tax_behavior": "unspecified",
            "tiers_mode": plan.tiers_mode,
            "transform_quantity": None,
            "type": "recurring",
            "unit_amount": plan.amount,
            "unit_amount_decimal": None if plan.amount is None else str(plan.amount),
        }

    for cls in (resources.SubscriptionItem, resources.InvoiceLineItem, resources.InvoiceItem):
        cls.price = property(lambda self: price_of(getattr(self, "plan", None)))

    from localstripe import server

    # localstripe's error middleware turns a UserError (e.g. 404 Not Found) into
    # Stripe's error JSON for these routes too.
    async def retrieve_price(request: Any) -> Any:
        return server.json_response(price_of(request.match_info["id"]))

    # dj-stripe reads a product's entitlement features after syncing it; localstripe
    # has none (and answers 404 in plain text, which the SDK reports as an API error).
    async def product_features(request: Any) -> Any:
        product = resources.Product._api_retrieve(request.match_info["id"])
        return server.json_response(
            {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/products/{product.id}/features",
            }
        )

    # InvoicePayments (basil and later) of localstripe's invoices: one per invoice that
    # has a payment intent, in the shape of Stripe's example (fixtures3.json).
    def invoice_payment_of(invoice: Any) -> dict[str, Any]:
        paid = invoice.status == "paid"
        return {
            "id": "inpay_" + invoice.id.removeprefix("in_"),
            "object": "invoice_payment",
            "invoice": invoice.id,
            "amount_requested": invoice.amount_due,
            "amount_paid": invoice.amount_due if paid else None,
            "currency": invoice.currency,
            "created": invoice.created,
            "is_default": True,
            "livemode": False,
            "status": "paid" if paid else "open",
            "payment": {"type": "payment_intent", "payment_intent": invoice.payment_intent},
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }

    async def list_invoice_payments(request: Any) -> Any:
        query = request.rel_url.query
        wanted_invoice = query.get("invoice")
        wanted_pi = query.get("payment[payment_intent]")
        found = [
            invoice_payment_of(invoice)
            for key, invoice in list(resources.store.items())
            if key.startswith("invoice:")
            and getattr(invoice, "payment_intent", None)
            and (wanted_invoice is None or invoice.id == wanted_invoice)
            and (wanted_pi is None or invoice.payment_intent == wanted_pi)
        ]
        return server.json_response(
            {"object": "list", "data": found, "has_more": False, "url": "/v1/invoice_payments"}
        )

    server.app.router.add_get("/v1/invoice_payments", list_invoice_payments)
    server.app.router.add_get("/v1/prices/{id}", retrieve_price)
    server.app.router.add_get("/v1/products/{id}/features", product_features)

    # ``default_tax_rates`` is null when none were given; current Stripe returns a list
    # and dj-stripe iterates over it. (An attribute localstripe itself reads, so only
    # the exported value is changed.)
    with_fixups(resources.Invoice, {"default_tax_rates": [], "total_discount_amounts": []})
    with_fixups(resources.Subscription, {"default_tax_rates": []})
    _apply_finance_shims(resources, server)


def _apply_finance_shims(resources: Any, server: Any) -> None:
    """What the finance actions (billing/refunds.py, billing/subscriptions.py) send that
    localstripe does not know:

    - ``reason`` on a refund (Stripe: duplicate, fraudulent, requested_by_customer) is
      refused as "Unexpected"; it is checked and kept on the refund here.
    - ``proration_behavior`` on a subscription update (create_prorations, none,
      always_invoice) is refused the same way; it is checked and then ignored (localstripe
      computes no prorations).
    - ``Idempotency-Key`` is ignored: a POST sent again with the same key would act twice,
      where Stripe answers with the first response. A middleware replays it here, keyed by
      API key and idempotency key, as Stripe does (successful answers only).
    """
    from aiohttp import web

    refund_init = resources.Refund.__init__

    def refund_with_reason(self: Any, reason: Any = None, **kwargs: Any) -> None:
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise resources.UserError(400, "Bad request: invalid reason")
        refund_init(self, **kwargs)
        self.reason = reason

    resources.Refund.__init__ = refund_with_reason

    subscription_update = resources.Subscription._update

    def update_with_proration(self: Any, proration_behavior: Any = None, **kwargs: Any) -> Any:
        if proration_behavior not in (None, "create_prorations", "none", "always_invoice"):
            raise resources.UserError(400, "Bad request: invalid proration_behavior")
        return subscription_update(self, **kwargs)

    resources.Subscription._update = update_with_proration

    replies: dict[tuple[str, str, str], tuple[int, bytes, str]] = {}
    faults: list[dict[str, str]] = []

    async def fail_next(request: Any) -> Any:
        """``POST /_config/switchboard/fail_next`` (method, path, status, type, code,
        message): the next request with that method whose path starts with ``path`` is
        answered with that Stripe error instead of being carried out."""
        faults.append(dict(await request.post()))
        return web.json_response({"queued": len(faults)})

    server.app.router.add_post("/_config/switchboard/fail_next", fail_next)

    @web.middleware
    async def injected_errors(request: Any, handler: Any) -> Any:
        for fault in list(faults):
            if request.method == fault["method"] and request.path.startswith(fault["path"]):
                faults.remove(fault)
                return web.json_response(
                    {
                        "error": {
                            "type": fault["type"],
                            "code": fault["code"],
                            "message": fault["message"],
                        }
                    },
                    status=int(fault["status"]),
                )
        return await handler(request)

    server.app.middlewares.append(injected_errors)

    @web.middleware
    async def idempotency(request: Any, handler: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        slot = (request.headers.get("Authorization", ""), request.path, key)
        if slot in replies:
            status, body, content_type = replies[slot]
            return web.Response(
                status=status,
                body=body,
                content_type=content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.status < 400 and response.body:
            replies[slot] = (response.status, bytes(response.body), response.content_type)
        return response

    server.app.middlewares.append(idempotency)
    _apply_connect_shims(resources, server)


def _apply_connect_shims(resources: Any, server: Any) -> None:
    """Connect destination charges, which localstripe does not know (marketplace orders,
    billing/orders.py), as Stripe documents them:

    - a payment intent takes ``transfer_data[destination]`` (an ``acct_…`` id),
      ``application_fee_amount`` (only with a destination, at most the amount) and
      ``on_behalf_of``; its charge carries them, and once it succeeded, ``transfer``
      (the transfer of amount minus fee to the connected account) and
      ``application_fee`` (the platform's fee), readable at ``GET /v1/transfers/<id>``
      and ``GET /v1/application_fees/<id>``;
    - a refund takes ``reverse_transfer`` and ``refund_application_fee``: the transfer
      is reversed, and the fee refunded, in proportion to the amount refunded (the
      refund's ``transfer_reversal`` names the reversal). ``reverse_transfer`` on a charge
      with no transfer is refused, as Stripe refuses it.

    Connected accounts themselves are not modelled: any ``acct_…`` id is accepted.
    """
    transfers: dict[str, dict[str, Any]] = {}
    fees: dict[str, dict[str, Any]] = {}
    by_charge: dict[str, tuple[str, str]] = {}

    def bad(message: str) -> Any:
        return resources.UserError(400, f"Bad request: {message}")

    pi_init = resources.PaymentIntent.__init__

    def pi_with_connect(
        self: Any,
        transfer_data: Any = None,
        application_fee_amount: Any = None,
        on_behalf_of: Any = None,
        **kwargs: Any,
    ) -> None:
        destination = transfer_data.get("destination") if isinstance(transfer_data, dict) else None
        if transfer_data is not None and not (
            isinstance(destination, str) and destination.startswith("acct_")
        ):
            raise bad("transfer_data[destination] must be a connected account id")
        fee = None
        if application_fee_amount is not None:
            fee = resources.try_convert_to_int(application_fee_amount)
            amount = resources.try_convert_to_int(kwargs.get("amount"))
            if type(fee) is not int or fee < 0 or destination is None:
                raise bad("application_fee_amount needs transfer_data[destination]")
            if type(amount) is int and fee > amount:
                raise bad("application_fee_amount is more than the amount")
        if on_behalf_of is not None and not str(on_behalf_of).startswith("acct_"):
            raise bad("on_behalf_of must be a connected account id")
        pi_init(self, **kwargs)
        self.transfer_data = {"destination": destination} if destination else None
        self.application_fee_amount = fee
        self.on_behalf_of = on_behalf_of

    resources.PaymentIntent.__init__ = pi_with_connect

    def intent_of(charge: Any) -> Any:
        if not getattr(charge, "payment_intent", None):
            return None
        return resources.store.get("payment_intent:" + charge.payment_intent)

    def connect_of(charge: Any) -> tuple[str, str]:
        """(transfer id, fee id) of a succeeded destination charge, made once."""
        intent = intent_of(charge)
        if intent is None or not getattr(intent, "transfer_data", None):
            return "", ""
        if charge.status != "succeeded":
            return "", ""
        if charge.id not in by_charge:
            fee_amount = intent.application_fee_amount or 0
            transfer_id = "tr_" + resources.random_id(14)
            transfers[transfer_id] = {
                "id": transfer_id,
                "object": "transfer",
                "amount": charge.amount - fee_amount,
                "amount_reversed": 0,
                "currency": charge.currency,
                "destination": intent.transfer_data["destination"],
                "source_transaction": charge.id,
                "reversed": False,
                "livemode": False,
                "created": charge.created,
                "metadata": {},
            }
            fee_id = ""
            if fee_amount:
                fee_id = "fee_" + resources.random_id(14)
                fees[fee_id] = {
                    "id": fee_id,
                    "object": "application_fee",
                    "account": intent.transfer_data["destination"],
                    "amount": fee_amount,
                    "amount_refunded": 0,
                    "charge": charge.id,
                    "currency": charge.currency,
                    "refunded": False,
                    "livemode": False,
                    "created": charge.created,
                }
            by_charge[charge.id] = (transfer_id, fee_id)
        return by_charge[charge.id]

    def from_intent(name: str) -> Any:
        return property(lambda self: getattr(intent_of(self), name, None))

    resources.Charge.transfer_data = from_intent("transfer_data")
    resources.Charge.application_fee_amount = from_intent("application_fee_amount")
    resources.Charge.on_behalf_of = from_intent("on_behalf_of")
    resources.Charge.transfer = property(lambda self: connect_of(self)[0] or None)

    # localstripe never sets a charge's ``invoice``, which the API versions before basil
    # carry: a subscription's charge would read as a one-time payment. It is its payment
    # intent's invoice (a data descriptor, so localstripe's own ``self.invoice = None``
    # lands in the setter).
    def charge_invoice(self: Any) -> Any:
        return getattr(intent_of(self), "invoice", None) or self.__dict__.get("_invoice_set")

    def charge_invoice_set(self: Any, value: Any) -> None:
        self.__dict__["_invoice_set"] = value

    resources.Charge.invoice = property(charge_invoice, charge_invoice_set)
    resources.Charge.application_fee = property(lambda self: connect_of(self)[1] or None)

    refund_init = resources.Refund.__init__

    def refund_with_connect(
        self: Any, reverse_transfer: Any = None, refund_application_fee: Any = None, **kwargs: Any
    ) -> None:
        reverse = resources.try_convert_to_bool(reverse_transfer) if reverse_transfer else False
        fee_back = (
            resources.try_convert_to_bool(refund_application_fee)
            if refund_application_fee
            else False
        )
        if type(reverse) is not bool or type(fee_back) is not bool:
            raise bad("reverse_transfer and refund_application_fee are booleans")
        charge_id = kwargs.get("charge")
        if charge_id is None and kwargs.get("payment_intent"):
            charge_id = resources.PaymentIntent._api_retrieve(
                kwargs["payment_intent"]
            ).latest_charge.id
        transfer_id, fee_id = (
            connect_of(resources.Charge._api_retrieve(charge_id)) if charge_id else ("", "")
        )
        if reverse and not transfer_id:
            raise bad("this charge has no transfer to reverse")
        if fee_back and not fee_id:
            raise bad("this charge has no application fee to refund")
        refund_init(self, **kwargs)
        self.transfer_reversal = None
        charge = resources.Charge._api_retrieve(self.charge)
        share = self.amount / charge.amount if charge.amount else 0
        if reverse:
            transfer = transfers[transfer_id]
            taken = min(
                round(transfer["amount"] * share), transfer["amount"] - transfer["amount_reversed"]
            )
            transfer["amount_reversed"] += taken
            transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
            self.transfer_reversal = "trr_" + resources.random_id(14)
        if fee_back:
            fee = fees[fee_id]
            given = min(round(fee["amount"] * share), fee["amount"] - fee["amount_refunded"])
            fee["amount_refunded"] += given
            fee["refunded"] = fee["amount_refunded"] >= fee["amount"]

    resources.Refund.__init__ = refund_with_connect

    def answer(table: dict[str, dict[str, Any]]) -> Any:
        async def view(request: Any) -> Any:
            found = table.get(request.match_info["id"])
            if found is None:
                raise resources.UserError(404, "Not Found")
            return server.json_response(found)

        return view

    server.app.router.add_get("/v1/transfers/{id}", answer(transfers))
    server.app.router.add_get("/v1/application_fees/{id}", answer(fees))


def main(argv: list[str] | None = None) -> None:
    """``python -m devkit.localstripe [--port N]``: localstripe with the
    shims, always from scratch (the store is never written to disk, so a pickle found
    there would be another instance's)."""
    _apply_server_shims()
    from localstripe import server

    args = list(argv if argv is not None else sys.argv[1:])
    if "--from-scratch" not in args:
        args.append("--from-scratch")
    sys.argv = [sys.argv[0], *args]
    server.start()


if __name__ == "__main__":
    main()
