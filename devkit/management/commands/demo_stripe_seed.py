"""manage.py demo_stripe_seed [--customers 20] [--base-url URL] [--process]

Seeds demo customers through the Stripe API that ``STRIPE_API_BASE`` points at, which
must be localstripe (started with ``python -m devkit.localstripe --port 8420``): the
command refuses to run against the real Stripe, with a live key, or in production.
Journeys, in turn: active, trialing, failed payment then recovered, canceled, partially
refunded, disputed, past due (a renewal failed, Stripe retrying), unpaid (retries
exhausted), matched by email only (a record with that email existed before Stripe's
customer: linked for review) and needs review (two such records: a conflict, nothing
linked blindly).

localstripe's own webhooks are captured by a relay and handed to the console's webhook
view byte for byte (signature verified as for Stripe). What localstripe cannot produce
(a trial, a renewal failure and recovery, ``charge.refunded``, a dispute) is built from
Stripe's example shapes around the real objects (``devkit.stripe_events``) and signed
with the endpoint's secret, each a second after the customer's last real event so the
pipeline's never-regress guard orders them as Stripe would.

Delivery: in-process through Django's test client (no web server needed), or with
``--base-url`` over HTTP to a running console. The pipeline's worker projects the events
(``make demo`` runs one); ``--process`` runs a burst worker here instead, so the summary
shows the resulting billing states. Customers already in localstripe (same email) are
skipped, so running it twice seeds nothing twice.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import stripe
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.progress import ProgressBar
from devkit import localstripe
from devkit import stripe_events as events
from devkit.relay import WebhookRelay
from devkit.signing import signed
from devkit.webhook_delivery import http_delivery, local_delivery

# One customer in each state the console can show (with 20 customers, two of each).
KINDS = (
    "active",
    "trialing",
    "recovered",
    "canceled",
    "partially_refunded",
    "disputed",
    "past_due",
    "unpaid",
    "matched_by_email",
    "needs_review",
)
NAMES = (
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Radia Perlman",
    "Dennis Ritchie",
    "Frances Allen",
    "John Backus",
    "Shafi Goldwasser",
    "Tim Berners-Lee",
    "Hedy Lamarr",
    "Claude Shannon",
    "Annie Easley",
    "Leslie Lamport",
    "Sophie Wilson",
)
PLANS = (("plan_demo_basic", "Basic", 900), ("plan_demo_pro", "Pro", 2900))
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
WEBHOOK_ID = "switchboard-demo"
DISCARD_URL = "http://127.0.0.1:9/"  # localstripe cannot forget a webhook; the discard port
# What localstripe sends for a subscription it could charge at once.
PAID_SUBSCRIPTION = (
    "customer.subscription.created",
    "invoice.payment_succeeded",
    "payment_intent.succeeded",
)


@dataclass
class Seeded:
    kind: str
    email: str
    customer_id: str
    expected: Counter[str] = field(default_factory=Counter)
    built: list[dict[str, Any]] = field(default_factory=list)


class _Stdout:
    """The progress bar draws with carriage returns; Django's OutputWrapper would end
    every write with a newline."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class Command(BaseCommand):
    help = (
        "Seed demo customers through localstripe (never the real Stripe) and deliver their events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=20, help="How many (default 20).")
        parser.add_argument(
            "--base-url",
            default="",
            help="Deliver over HTTP to the console at this URL (e.g. "
            "http://127.0.0.1:8000); default: in-process.",
        )
        parser.add_argument(
            "--process",
            action="store_true",
            help="Run a burst worker on 'webhooks' before the summary.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            help="Seconds to wait for localstripe's webhooks (default 30).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["customers"] < 1:
            raise CommandError("--customers must be at least 1.")
        client = self._check_target()
        # localstripe has no GET /v1/account, which dj-stripe's mirror would call.
        localstripe.djstripe_account_ensure(settings.STRIPE_SECRET_KEY)
        base_url = options["base_url"].rstrip("/")
        endpoint_url, deliver = self._delivery(base_url)
        plans = self._plans()

        with WebhookRelay() as relay:
            client.register_webhook(WEBHOOK_ID, relay.url, settings.STRIPE_WEBHOOK_SECRET)
            seeded, skipped = self._seed_all(options["customers"], plans)
            expected = sum((s.expected for s in seeded), Counter())
            try:
                relay.wait_for(expected, timeout=options["timeout"])
            except TimeoutError as exc:
                self.stderr.write(f"Not every webhook from localstripe arrived: {exc}")
            built = [e for s in seeded for e in s.built]
            received = relay.pending()
            answers: Counter[str] = Counter()
            bar = ProgressBar(
                len(received) + len(built), "Delivering events", stream=_Stdout(self.stdout)
            )
            for delivery in received:  # localstripe's own bytes and signature
                answers[str(deliver(delivery.body, delivery.signature))] += 1
                delivery.forwarded = True
                bar.advance()
            for event in built:
                answers[str(deliver(*signed(event, settings.STRIPE_WEBHOOK_SECRET)))] += 1
                bar.advance()
            bar.finish()
        if base_url:
            # From now on localstripe sends straight to the console (later changes).
            client.register_webhook(WEBHOOK_ID, endpoint_url, settings.STRIPE_WEBHOOK_SECRET)
        else:
            # Nothing known listens for localstripe now; it cannot forget a webhook.
            client.register_webhook(WEBHOOK_ID, DISCARD_URL, settings.STRIPE_WEBHOOK_SECRET)

        if options["process"]:
            self._process()
        self._summary(
            seeded,
            skipped,
            Counter(d.type for d in received),
            Counter(e["type"] for e in built),
            answers,
            endpoint_url,
            base_url,
        )

    # --- safety ----------------------------------------------------------------------

    def _check_target(self) -> localstripe.LocalStripeClient:
        api_base = settings.STRIPE_API_BASE
        host = (urlparse(api_base).hostname or "").lower()
        if host == "stripe.com" or host.endswith(".stripe.com"):
            raise CommandError(
                f"STRIPE_API_BASE is {api_base}, the real Stripe: demo_stripe_seed only seeds "
                "localstripe. Start one (python -m devkit.localstripe --port 8420) "
                "and set STRIPE_API_BASE=http://127.0.0.1:8420."
            )
        if settings.PRODUCTION or settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")):
            raise CommandError("demo_stripe_seed never runs in production or with a live key.")
        if (stripe.api_base or "").rstrip("/") != api_base.rstrip("/"):
            raise CommandError(
                f"The Stripe SDK points at {stripe.api_base}, not at "
                f"STRIPE_API_BASE ({api_base}); refusing to seed."
            )
        client = localstripe.LocalStripeClient(api_base)
        if not client.answers(timeout=3):
            raise CommandError(
                f"No localstripe answers at {api_base}. Start it with "
                "python -m devkit.localstripe --port 8420."
            )
        return client

    # --- delivery --------------------------------------------------------------------

    def _delivery(self, base_url: str) -> tuple[str, Any]:
        """The console's webhook URL (its endpoint record made first) and a function that
        posts one signed body to it: over HTTP to ``base_url``, else in-process."""
        out = io.StringIO()
        call_command(
            "stripe_webhook_setup", "--base-url", base_url or "http://127.0.0.1:8000", stdout=out
        )
        endpoint_url = out.getvalue().strip().splitlines()[-1]
        deliver = http_delivery(endpoint_url) if base_url else local_delivery(endpoint_url)
        return endpoint_url, deliver

    # --- seeding ---------------------------------------------------------------------

    def _plans(self) -> list[Any]:
        plans = []
        for plan_id, name, amount in PLANS:
            try:
                plans.append(stripe.Plan.retrieve(plan_id))
            except stripe.InvalidRequestError:
                plans.append(
                    stripe.Plan.create(
                        id=plan_id,
                        amount=amount,
                        currency="usd",
                        interval="month",
                        product={"name": name},
                        nickname=name,
                    )
                )
        return plans

    def _seed_all(self, count: int, plans: list[Any]) -> tuple[list[Seeded], int]:
        seeded: list[Seeded] = []
        skipped = 0
        bar = ProgressBar(count, "Seeding customers", stream=_Stdout(self.stdout))
        for n in range(count):
            name = NAMES[n % len(NAMES)] + (f" {n // len(NAMES) + 1}" if n >= len(NAMES) else "")
            email = name.lower().replace(" ", ".") + "@demo.switchboard.test"
            if stripe.Customer.list(email=email).data:
                skipped += 1
            else:
                seeded.append(self._seed(KINDS[n % len(KINDS)], name, email, plans[n % 2]))
            bar.advance()
        bar.finish()
        return seeded, skipped

    def _seed(self, kind: str, name: str, email: str, plan: Any) -> Seeded:
        if kind in ("matched_by_email", "needs_review"):
            # Records the product made before Stripe knew the person: one is linked by
            # email only (for review), two with the same email are a conflict.
            from customers.services import customer_create

            for _ in range(1 if kind == "matched_by_email" else 2):
                customer_create(actor=None, email=email, name=name)
        pm = stripe.PaymentMethod.create(type="card", card=dict(CARD))
        customer = stripe.Customer.create(
            email=email,
            name=name,
            payment_method=pm.id,
            invoice_settings={"default_payment_method": pm.id},
            metadata={"seeded_by": "demo_stripe_seed", "journey": kind},
        )
        seed = Seeded(kind, email, customer.id, Counter(["customer.created"]))
        if kind == "trialing":
            # localstripe keeps a trial "incomplete" and never sends "trialing".
            sub = stripe.Subscription.create(
                customer=customer.id, items=[{"plan": plan.id}], trial_period_days=14
            )
            seed.expected["customer.subscription.created"] += 1
            t = int(time.time()) + 1
            seed.built.append(
                events.event(
                    "customer.subscription.updated",
                    self._subscription(sub, plan, status="trialing", trial_end=t + 14 * 86400),
                    created=t,
                    previous_attributes={"status": "incomplete"},
                )
            )
            return seed

        sub = stripe.Subscription.create(customer=customer.id, items=[{"plan": plan.id}])
        seed.expected.update(PAID_SUBSCRIPTION)
        t = int(time.time()) + 1
        failing = {
            "recovered": (
                (0, "past_due", "open", "invoice.payment_failed"),
                (1, "active", "paid", "invoice.paid"),
            ),
            "past_due": ((0, "past_due", "open", "invoice.payment_failed"),),
            # Retries exhausted: only the subscription changes, a few seconds later (an
            # event of the same second would be ambiguous and re-read from localstripe).
            "unpaid": (
                (0, "past_due", "open", "invoice.payment_failed"),
                (3, "unpaid", "open", ""),
            ),
        }
        if kind in failing:
            renewal = stripe.Invoice.create(customer=customer.id, subscription=sub.id)
            for offset, status, invoice_status, invoice_type in failing[kind]:
                if invoice_type:  # none when only the subscription changed
                    seed.built.append(
                        events.event(
                            invoice_type,
                            events.invoice(
                                customer.id,
                                subscription_id=sub.id,
                                status=invoice_status,
                                invoice_id=renewal.id,
                                amount=plan.amount,
                                period_start=sub.current_period_start,
                                period_end=sub.current_period_end,
                            ),
                            created=t + offset,
                        )
                    )
                seed.built.append(
                    events.event(
                        "customer.subscription.updated",
                        self._subscription(sub, plan, status=status, latest_invoice=renewal.id),
                        created=t + offset,
                    )
                )
        elif kind == "canceled":
            stripe.Subscription.cancel(sub.id)
            seed.expected["customer.subscription.deleted"] += 1
        elif kind in ("partially_refunded", "disputed"):
            invoice = stripe.Invoice.retrieve(sub.latest_invoice)
            charge_id = stripe.PaymentIntent.retrieve(invoice.payment_intent).latest_charge.id
            if kind == "partially_refunded":
                stripe.Refund.create(charge=charge_id, amount=plan.amount // 3)
                # localstripe refunds but sends no charge.refunded: the real charge, signed.
                refunded = stripe.Charge.retrieve(charge_id).to_dict(for_json=True)
                seed.built.append(events.event("charge.refunded", refunded, created=t))
            else:
                charge = stripe.Charge.retrieve(charge_id).to_dict(for_json=True)
                seed.built.append(
                    events.event("charge.dispute.created", events.dispute(charge), created=t)
                )
        return seed

    @staticmethod
    def _subscription(
        sub: Any,
        plan: Any,
        *,
        status: str,
        latest_invoice: str | None = None,
        trial_end: int | None = None,
    ) -> dict[str, Any]:
        """Stripe's example subscription around the real ids, in ``status``."""
        return events.subscription(
            sub.customer,
            status=status,
            sub_id=sub.id,
            plan_id=plan.id,
            amount=plan.amount,
            nickname=plan.nickname,
            product=plan.product,
            item_id=sub["items"].data[0].id,
            period_start=sub.current_period_start,
            period_end=trial_end or sub.current_period_end,
            latest_invoice=latest_invoice or sub.latest_invoice,
            trial_end=trial_end,
        )

    # --- processing and summary ------------------------------------------------------------

    def _process(self) -> None:
        import django_rq
        from rq import SimpleWorker

        from config.queueing import QUEUE_NAMES

        self.stdout.write("Processing the queues (burst worker)...")
        django_rq.get_worker(*QUEUE_NAMES, worker_class=SimpleWorker).work(burst=True)

    def _summary(
        self,
        seeded: list[Seeded],
        skipped: int,
        real: Counter[str],
        built: Counter[str],
        answers: Counter[str],
        endpoint_url: str,
        base_url: str,
    ) -> None:
        from billing.models import EventStatus, StripeEvent
        from customers.models import Customer

        write = self.stdout.write
        write("")
        write(
            self.style.SUCCESS(
                f"Seeded {len(seeded)} customer(s) in localstripe"
                + (f"; {skipped} already there, skipped." if skipped else ".")
            )
        )
        for kind, count in sorted(Counter(s.kind for s in seeded).items()):
            write(f"  {kind:<20} {count}")
        write(
            f"Events delivered: {sum(real.values())} sent by localstripe, "
            f"{sum(built.values())} built and signed here; answers: "
            + ", ".join(f"{code}: {n}" for code, n in sorted(answers.items()))
        )
        for event_type, count in sorted((real + built).items()):
            write(f"  {event_type:<36} {count}")
        ids = [s.customer_id for s in seeded]
        waiting = StripeEvent.objects.filter(
            stripe_customer_id__in=ids, status=EventStatus.RECEIVED
        ).count()
        rows = Customer.objects.filter(stripe_customer_id__in=ids)
        if rows.exists():
            write("Billing status in the console (status / last payment: customers):")
            for (status, payment), count in sorted(
                Counter(rows.values_list("status", "last_payment_status")).items()
            ):
                write(f"  {status:<20} {payment or '-':<20} {count}")
        if waiting:
            write(
                f"{waiting} event(s) wait for a worker on 'webhooks' "
                "(make demo runs one; or rerun with --process)."
            )
        if base_url:
            write(f"localstripe now sends its webhooks to {endpoint_url}")
        else:
            write(
                "Later changes in localstripe reach the console only if it is registered: "
                "rerun with --base-url http://<console> (nothing is seeded twice)."
            )
