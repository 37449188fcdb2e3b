"""Finance action pages: confirmation pages, the waiting page, refund requests.

Every page is behind the admin site's login (staff only, ``admin.site.admin_view``) and
checks the user's permission again on the server (billing/permissions.py): a forced
POST by the wrong role is answered 403 and audited. The services check once more.
Each action is two steps: the form, then a page that says exactly what will happen,
where the user confirms. CSRF protects every form.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import date_format

from billing import actions, permissions, refunds, shapes, subscriptions
from billing import forms as finance_forms
from billing.adapters.stripe_client import StripeActionError, finance_list
from billing.models import ActionState, FinanceAction, RefundRequest
from billing.selectors import refund_requests_for
from config.money import format_money
from customers.models import Customer
from customers.permissions import can_view_finance_details


def _page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    owner = context.get("action") or context.get("refund_request")
    crumb = context.get("customer") or getattr(owner, "customer", "")
    return render(
        request, template, {**admin.site.each_context(request), "crumb": crumb, **context}
    )


def _customer_url(customer: Customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


class _Step:
    """The two-step flow shared by the four action pages."""

    template = "billing/finance/action.html"
    title = ""
    verb = ""

    def allowed(self, user: Any, customer: Customer) -> bool:
        raise NotImplementedError

    def form(self, request: HttpRequest, customer: Customer, data: Any = None) -> Any:
        raise NotImplementedError

    def facts(self, customer: Customer, request: HttpRequest) -> list[tuple[str, str]]:
        return []

    def will_happen(self, form: Any, facts: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def perform(self, request: HttpRequest, customer: Customer, form: Any) -> HttpResponse:
        raise NotImplementedError

    def __call__(self, request: HttpRequest, customer_id: Any) -> HttpResponse:
        customer = get_object_or_404(Customer, pk=customer_id)
        permissions.require(
            self.allowed(request.user, customer),
            user=request.user,
            action=self.verb,
            target=customer,
        )
        context: dict[str, Any] = {
            "customer": customer,
            "title": self.title,
            "customer_url": _customer_url(customer),
        }
        try:
            self.prepare(request, customer)
        except (ValidationError, StripeActionError) as exc:
            context["blocked"] = getattr(exc, "user_message", None) or _error_text(exc)
            return _page(request, self.template, **context)
        context["facts"] = self.facts(customer, request)
        if request.method != "POST":
            return _page(request, self.template, form=self.form(request, customer), **context)
        form = self.form(request, customer, request.POST)
        if not form.is_valid():
            return _page(request, self.template, form=form, **context)
        if "back" in request.POST:
            return _page(request, self.template, form=form, **context)
        if "confirm" not in request.POST:
            return _page(
                request,
                self.template,
                form=form,
                preview=True,
                will_happen=self.will_happen(form, context),
                **context,
            )
        try:
            return self.perform(request, customer, form)
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
            return _page(request, self.template, form=form, **context)
        except StripeActionError as exc:
            action = FinanceAction.objects.filter(key=form.cleaned_data["key"]).first()
            messages.error(request, exc.user_message)
            if action is None:
                form.add_error(None, exc.user_message)
                return _page(request, self.template, form=form, **context)
            return redirect("billing:finance_action", pk=action.pk)

    def prepare(self, request: HttpRequest, customer: Customer) -> None:
        """Read what the page needs from Stripe; raise to show why it cannot be done."""


class RefundStep(_Step):
    title = "Refund a payment"
    verb = "refund"

    def allowed(self, user: Any, customer: Customer) -> bool:
        return permissions.can_issue_refund(user, customer) or permissions.can_request_refund(
            user, customer
        )

    def prepare(self, request: HttpRequest, customer: Customer) -> None:
        charge_id = request.POST.get("charge") or request.GET.get("charge") or ""
        if not charge_id:
            raise ValidationError("Choose the payment to refund on the customer's page.")
        self.charge = refunds.charge_facts(customer, charge_id)

    def form(self, request: HttpRequest, customer: Customer, data: Any = None) -> Any:
        return finance_forms.RefundForm(data, currency=self.charge.currency)

    def facts(self, customer: Customer, request: HttpRequest) -> list[tuple[str, str]]:
        c = self.charge
        return [
            ("Payment", c.charge_id),
            ("Charged", format_money(c.amount, c.currency)),
            ("Already refunded", format_money(c.refunded, c.currency)),
            ("Still refundable", format_money(c.refundable, c.currency)),
        ]

    def _issues_now(self, request: HttpRequest, customer: Customer, amount: int) -> bool:
        return (
            permissions.can_issue_refund(request.user, customer)
            and amount <= settings.REFUND_APPROVAL_THRESHOLD
        )

    def will_happen(self, form: Any, context: dict[str, Any]) -> list[str]:
        c, amount = self.charge, form.cleaned_data["amount"]
        lines = [
            f"Refund {format_money(amount, c.currency)} of payment {c.charge_id} "
            f"({format_money(c.amount, c.currency)}) to {context['customer']}.",
            f"Still refundable afterwards: "
            f"{format_money(max(c.refundable - amount, 0), c.currency)}.",
            f"Reason: {refunds.REASON_CODES.get(form.cleaned_data['reason_code'])}.",
        ]
        connect = c.connect
        if connect:
            lines.append(
                "A marketplace order: the transfer to the seller is reversed"
                + (
                    " and the application fee refunded"
                    if connect.get("refund_application_fee")
                    else ""
                )
                + " in proportion to the refund."
            )
        if amount > c.refundable:
            lines.append(
                f"This is more than what is still refundable "
                f"({format_money(c.refundable, c.currency)}): it will be refused."
            )
        elif self._issues_now(self.request, context["customer"], amount):
            lines.append(
                "It is sent to Stripe as soon as you confirm. Our records change when "
                "Stripe confirms it (charge.refunded)."
            )
        else:
            lines.append(
                "It becomes a refund request: another finance admin or an owner must "
                "approve it before anything is sent to Stripe."
            )
        return lines

    def __call__(self, request: HttpRequest, customer_id: Any) -> HttpResponse:
        self.request = request
        return super().__call__(request, customer_id)

    def perform(self, request: HttpRequest, customer: Customer, form: Any) -> HttpResponse:
        result = refunds.refund_submit(
            actor=request.user,
            customer_id=customer.pk,
            charge_id=self.charge.charge_id,
            amount=form.cleaned_data["amount"],
            reason_code=form.cleaned_data["reason_code"],
            note=form.cleaned_data["note"],
            submission_key=form.cleaned_data["key"],
        )
        if isinstance(result, RefundRequest):
            messages.success(
                request,
                f"Refund request #{result.pk} filed; an approver will "
                "decide. You will get an email.",
            )
            return redirect("billing:refund_request", pk=result.pk)
        return redirect("billing:finance_action", pk=result.pk)


class _SubscriptionStep(_Step):
    def prepare(self, request: HttpRequest, customer: Customer) -> None:
        self.sub = subscriptions.live_subscription(customer)
        self.item_id, self.plan = subscriptions.current_plan(self.sub)

    def facts(self, customer: Customer, request: HttpRequest) -> list[tuple[str, str]]:
        from billing.projection import ts

        end = ts(shapes.subscription_period_end(self.sub))
        return [
            ("Subscription", self.sub["id"]),
            ("Status in Stripe", self.sub.get("status")),
            ("Plan", subscriptions.plan_label(self.plan)),
            ("Paid until", date_format(end, "DATE_FORMAT") if end else "-"),
            ("Cancels at period end", "yes" if self.sub.get("cancel_at_period_end") else "no"),
        ]

    def period_end(self) -> str:
        from billing.projection import ts

        end = ts(shapes.subscription_period_end(self.sub))
        return date_format(end, "DATE_FORMAT") if end else "the end of the period"


class ChangePlanStep(_SubscriptionStep):
    title = "Change plan"
    verb = "change_plan"

    def allowed(self, user: Any, customer: Customer) -> bool:
        return permissions.can_change_plan(user, customer)

    def prepare(self, request: HttpRequest, customer: Customer) -> None:
        super().prepare(request, customer)
        self.plans = {
            p["id"]: p
            for p in finance_list("plan", limit=100)
            if p.get("active", True) and p["id"] != self.plan.get("id")
        }
        if not self.plans:
            raise ValidationError("There is no other plan to move to.")

    def form(self, request: HttpRequest, customer: Customer, data: Any = None) -> Any:
        return finance_forms.ChangePlanForm(
            data,
            plans=[(pid, subscriptions.plan_label(p)) for pid, p in sorted(self.plans.items())],
        )

    def will_happen(self, form: Any, context: dict[str, Any]) -> list[str]:
        new = self.plans[form.cleaned_data["plan_id"]]
        return [
            f"Move subscription {self.sub['id']} from {subscriptions.plan_label(self.plan)} "
            f"to {subscriptions.plan_label(new)}.",
            f"Proration: {subscriptions.PRORATIONS[form.cleaned_data['proration']]}.",
            "Our records change when Stripe confirms it (customer.subscription.updated).",
        ]

    def perform(self, request: HttpRequest, customer: Customer, form: Any) -> HttpResponse:
        action = subscriptions.subscription_change_plan(
            actor=request.user,
            customer_id=customer.pk,
            plan_id=form.cleaned_data["plan_id"],
            proration=form.cleaned_data["proration"],
            note=form.cleaned_data["note"],
            submission_key=form.cleaned_data["key"],
        )
        return redirect("billing:finance_action", pk=action.pk)


class CancelStep(_SubscriptionStep):
    title = "Cancel subscription"
    verb = "cancel_subscription"

    def allowed(self, user: Any, customer: Customer) -> bool:
        return permissions.can_cancel_subscription(user, customer)

    def form(self, request: HttpRequest, customer: Customer, data: Any = None) -> Any:
        return finance_forms.CancelForm(data)

    def will_happen(self, form: Any, context: dict[str, Any]) -> list[str]:
        if form.cleaned_data["when"] == "now":
            return [
                f"Cancel subscription {self.sub['id']} now: it ends immediately and is "
                "not renewed. Nothing is refunded (use Refund for that).",
                "Our records change when Stripe confirms it (customer.subscription.deleted).",
            ]
        return [
            f"Cancel subscription {self.sub['id']} at the end of the paid period "
            f"({self.period_end()}): the customer keeps access until then, and it is not "
            "renewed. This can be undone with Resume until then.",
            "Our records change when Stripe confirms it (customer.subscription.updated).",
        ]

    def perform(self, request: HttpRequest, customer: Customer, form: Any) -> HttpResponse:
        action = subscriptions.subscription_cancel(
            actor=request.user,
            customer_id=customer.pk,
            at_period_end=form.cleaned_data["when"] != "now",
            note=form.cleaned_data["note"],
            submission_key=form.cleaned_data["key"],
        )
        return redirect("billing:finance_action", pk=action.pk)


class ResumeStep(_SubscriptionStep):
    title = "Resume subscription"
    verb = "resume_subscription"

    def allowed(self, user: Any, customer: Customer) -> bool:
        return permissions.can_resume_subscription(user, customer)

    def prepare(self, request: HttpRequest, customer: Customer) -> None:
        super().prepare(request, customer)
        if not self.sub.get("cancel_at_period_end"):
            raise ValidationError("This subscription has no pending cancellation to undo.")

    def form(self, request: HttpRequest, customer: Customer, data: Any = None) -> Any:
        return finance_forms.ResumeForm(data)

    def will_happen(self, form: Any, context: dict[str, Any]) -> list[str]:
        return [
            f"Withdraw the cancellation of subscription {self.sub['id']} planned for "
            f"{self.period_end()}: it renews as usual on "
            f"{subscriptions.plan_label(self.plan)}.",
            "Our records change when Stripe confirms it (customer.subscription.updated).",
        ]

    def perform(self, request: HttpRequest, customer: Customer, form: Any) -> HttpResponse:
        action = subscriptions.subscription_resume(
            actor=request.user,
            customer_id=customer.pk,
            note=form.cleaned_data["note"],
            submission_key=form.cleaned_data["key"],
        )
        return redirect("billing:finance_action", pk=action.pk)


def _fresh(step: type[_Step]) -> Any:
    """A view making a new step object per request (steps keep per-request state)."""

    def view(request: HttpRequest, customer_id: Any) -> HttpResponse:
        if request.method not in ("GET", "POST"):
            return HttpResponse(status=405)
        return step()(request, customer_id)

    view.__name__ = step.__name__
    return view


refund_view = _fresh(RefundStep)
change_plan_view = _fresh(ChangePlanStep)
cancel_view = _fresh(CancelStep)
resume_view = _fresh(ResumeStep)


def finance_action_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Where an action stands: submitted (refreshes until Stripe confirms), confirmed,
    failed with Stripe's words, or unanswered (send again, same idempotency key)."""
    action = get_object_or_404(
        FinanceAction.objects.select_related("customer", "requested_by", "refund_request"), pk=pk
    )
    # Amounts, notes and Stripe's errors are finance details (not for support agents),
    # except on what the user asked for themselves: their action, or their request's.
    own = action.requested_by_id == request.user.pk or (
        action.refund_request is not None
        and action.refund_request.requested_by_id == request.user.pk
    )
    if not (
        (
            permissions.can_view_billing(request.user, action.customer)
            and can_view_finance_details(request.user)
        )
        or own
    ):
        raise permissions.deny(
            user=request.user,
            action="view_finance_action",
            target=action.customer,
            detail=f"action #{action.pk}",
        )
    if request.method == "POST":
        try:
            actions.action_resend(actor=request.user, action_id=action.pk)
        except StripeActionError as exc:
            messages.error(request, exc.user_message)
        return redirect("billing:finance_action", pk=action.pk)
    return _page(
        request,
        "billing/finance/action_status.html",
        action=action,
        title=f"{action.get_kind_display()} #{action.pk}",
        customer_url=_customer_url(action.customer),
        waiting=action.state == ActionState.SUBMITTED,
        can_resend=action.state == ActionState.REQUESTED and bool(action.error_message),
        money=format_money(action.amount, action.currency) if action.amount else "",
    )


def refund_requests_view(request: HttpRequest) -> HttpResponse:
    if not (
        permissions.can_request_refund(request.user) or permissions.can_approve_refund(request.user)
    ):
        raise permissions.deny(user=request.user, action="view_refund_requests")
    return _page(
        request,
        "billing/finance/refund_requests.html",
        title="Refund requests",
        is_approver=permissions.can_approve_refund(request.user),
        **refund_requests_for(user=request.user),
    )


def refund_request_view(request: HttpRequest, pk: int) -> HttpResponse:
    refund_request = get_object_or_404(
        RefundRequest.objects.select_related("customer", "requested_by", "decided_by"), pk=pk
    )
    if not permissions.can_view_refund_request(request.user, refund_request):
        raise permissions.deny(
            user=request.user, action="view_refund_request", target=refund_request.customer
        )
    form = finance_forms.DecisionForm()
    if request.method == "POST":
        decision = request.POST.get("decision")
        form = finance_forms.DecisionForm(request.POST)
        if decision not in ("approve", "reject"):
            return HttpResponse("Unknown decision.", status=400)
        if not permissions.can_approve_refund(request.user, refund_request):
            raise permissions.deny(
                user=request.user,
                action=f"{decision}_refund_request",
                target=refund_request.customer,
                detail=f"request #{refund_request.pk}",
            )
        if form.is_valid():
            note = form.cleaned_data["note"]
            try:
                if decision == "approve":
                    action = refunds.refund_request_approve(
                        actor=request.user, request_id=refund_request.pk, note=note
                    )
                    return redirect("billing:finance_action", pk=action.pk)
                refunds.refund_request_reject(
                    actor=request.user, request_id=refund_request.pk, reason=note
                )
                messages.success(
                    request,
                    f"Refund request #{refund_request.pk} rejected; the requester was told why.",
                )
                return redirect("billing:refund_requests")
            except ValidationError as exc:
                form.add_error(None, _error_text(exc))
            except StripeActionError as exc:
                form.add_error(None, exc.user_message)
            refund_request.refresh_from_db()
            if refund_request.status != "pending":
                # No decision form on the page any more (e.g. another approval is
                # running): say it as a message instead.
                for error in form.non_field_errors():
                    messages.error(request, error)
    return _page(
        request,
        "billing/finance/refund_request.html",
        title=f"Refund request #{refund_request.pk}",
        refund_request=refund_request,
        form=form,
        customer_url=_customer_url(refund_request.customer),
        amount=format_money(refund_request.amount, refund_request.currency),
        charge_amount=format_money(refund_request.charge_amount, refund_request.currency),
        reason=refunds.REASON_CODES.get(refund_request.reason_code, refund_request.reason_code),
        can_decide=(
            refund_request.status == "pending"
            and permissions.can_approve_refund(request.user, refund_request)
        ),
        own=refund_request.requested_by_id == request.user.pk,
    )


def customer_finance_panel_view(request: HttpRequest, customer_id: Any) -> HttpResponse:
    """The customer page's finance panel on its own (the page loads it after itself, so
    it never waits on Stripe's two API calls)."""
    customer = get_object_or_404(Customer, pk=customer_id)
    permissions.require(
        permissions.can_view_billing(request.user, customer),
        user=request.user,
        action="view_billing",
        target=customer,
    )
    if request.headers.get("X-Requested-With") == "fetch":  # the customer page's loader
        return render(request, "billing/customer_finance_panel.html", {"customer": customer})
    return _page(request, "billing/finance/customer_finance.html", customer=customer)
