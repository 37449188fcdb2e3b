"""The console in the admin: the customer page (list, search, the 360 header and timeline
around owners' identity edits), alerts and account-state API tokens.

Billing fields are read-only for everyone: the Stripe pipeline writes them. Identity
edits go through ``customers.services``; token creation and revocation through
``console.api_tokens``; acknowledging an alert through ``console.alerts``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from console import api_tokens, search
from console.alerts import alert_acknowledge, can_acknowledge_alerts
from console.models import API_SCOPE_STATE_READ, API_SCOPES, Alert, ApiToken
from console.needs import NEEDS_REVIEW
from customers import services
from customers.models import Customer
from customers.permissions import ERASE_CUSTOMER, VIEW_BILLING


class NeedsReviewFilter(admin.SimpleListFilter):
    """The "customers needing review" count of the needs-you strip links here."""

    title = "needs review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Needs review (status, conflict or matched by email only)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if self.value() == "yes":
            return queryset.filter(NEEDS_REVIEW)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    # Few columns, so the list fits a laptop screen; the customer page has the rest.
    list_display = (
        "customer_page",
        "status",
        "plan_name",
        "last_payment_status",
        "match_state",
    )
    list_display_links = None
    list_filter = (
        NeedsReviewFilter,
        "status",
        "last_payment_status",
        "match_state",
        "onboarding_state",
        "marketplace_role",
    )
    search_fields = (
        "email",
        "name",
        "=stripe_customer_id",
        "=crm_contact_id",
        "=helpdesk_user_id",
        "=product_user_id",
        "=stripe_account_id",
    )
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-created_at",)
    actions = ["erase_personal_data"]
    change_form_template = "admin/customers/customer/change_form.html"

    identity_fields = ("email", "name", "marketplace_role")
    link_fields = (
        "stripe_customer_id",
        "stripe_account_id",
        "crm_contact_id",
        "helpdesk_user_id",
        "product_user_id",
    )
    billing_fields = Customer.BILLING_FIELDS
    record_fields = (
        "id",
        "onboarding_state",
        "match_state",
        "review_reason",
        "created_at",
        "updated_at",
    )

    @admin.display(description="customer", ordering="email")
    def customer_page(self, obj: Customer) -> str:
        return format_html(
            '<a href="{}">{}</a><br><span class="quiet">{}</span>',
            reverse("console_customer", args=[obj.pk]),
            obj.name or obj.email or obj.stripe_customer_id or obj.pk,
            obj.email if obj.name else (obj.stripe_customer_id or ""),
        )

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None) -> list[Any]:
        fieldsets: list[Any] = [
            (None, {"fields": self.identity_fields}),
            ("Linked systems", {"fields": self.link_fields}),
        ]
        if obj is not None:
            if request.user.has_perm(VIEW_BILLING):
                fieldsets.append(
                    ("Billing (from Stripe, read-only)", {"fields": self.billing_fields})
                )
            fieldsets.append(("Record", {"fields": self.record_fields}))
        return fieldsets

    def get_readonly_fields(
        self, request: HttpRequest, obj: Customer | None = None
    ) -> tuple[str, ...]:
        return (*self.billing_fields, *self.record_fields)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        # Any Stripe id (sub_, in_, ch_, pi_, re_, dp_…) through the event inbox.
        found = search.customer_ids_for(term)
        if found:
            queryset = queryset | self.model.objects.filter(pk__in=found)
        try:
            internal_id = uuid.UUID(term)
        except ValueError:
            return queryset, may_have_duplicates
        return queryset | self.model.objects.filter(pk=internal_id), may_have_duplicates

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ERASE_CUSTOMER)

    @admin.action(
        description="Erase personal data (GDPR): Switchboard, CRM and helpdesk",
        permissions=["erase"],
    )
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> Any:
        """Owners only, after a confirmation page that names every customer and asks why.
        The service checks the permission again and audits each erasure."""
        customers = list(queryset.filter(erased_at__isnull=True)[:50])
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirm") == "erase" and reason and customers:
            erased = 0
            for customer in customers:
                try:
                    erased += services.customer_erase(
                        actor=request.user, customer_id=customer.pk, reason=reason
                    )
                except PermissionDenied:
                    self.message_user(request, "You may not erase customers.", messages.ERROR)
                    return None
            self.message_user(
                request,
                f"{erased} customer(s) erased. CRM and helpdesk deletions are queued in the "
                "outbox.",
                messages.SUCCESS,
            )
            return None
        if not customers:
            self.message_user(request, "Nothing to erase: already erased.", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase personal data?",
            "customers": customers,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "reason": reason,
            "missing_reason": request.POST.get("confirm") == "erase" and not reason,
        }
        return TemplateResponse(request, "admin/console/customer/erase_confirm.html", context)

    def has_delete_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        # Customers are never deleted from the console: Stripe deletions become a status.
        return False

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        editable = [f for f in services.EDITABLE_FIELDS if f in form.cleaned_data]
        if change:
            services.customer_update(
                actor=request.user,
                customer_id=obj.pk,
                changes={f: form.cleaned_data[f] for f in editable if f in form.changed_data},
            )
        else:
            data = {f: form.cleaned_data[f] for f in editable}
            created = services.customer_create(actor=request.user, **data)
            obj.pk = created.pk
            obj._state.adding = False


# --- account-state API tokens -------------------------------------------------------------


class ApiTokenForm(forms.ModelForm):
    scopes = forms.ChoiceField(
        choices=[
            *API_SCOPES.items(),
            (" ".join(API_SCOPES), "Both: read account state and confirm provisioning"),
        ],
        initial=API_SCOPE_STATE_READ,
        help_text="state:read is read-only (chatbots, help widgets); provisioning:write "
        "lets the product confirm it provisioned a customer.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", "scopes")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Owners create tokens here (the clear token is shown once, on the page that follows
    creation, never stored or put in a message) and revoke them with the action."""

    list_display = (
        "name",
        "prefix",
        "scopes",
        "created_at",
        "created_by",
        "use_count",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "=prefix")
    readonly_fields = (
        "name",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "use_count",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    actions = ["revoke_tokens"]
    form = ApiTokenForm

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return self.readonly_fields if obj is not None else ("name", "scopes")

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # revoke instead: the audit trail and use count stay

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return  # nothing is editable after creation
        token, raw = api_tokens.api_token_create(
            actor=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        obj.pk = token.pk
        obj._state.adding = False
        request._new_api_token = raw  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: Any = None
    ) -> Any:
        raw = getattr(request, "_new_api_token", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": obj,
            "raw": raw,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/console/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description="Revoke selected tokens (callers get 401 at once)", permissions=["change"]
    )
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(
            api_tokens.api_token_revoke(
                actor=request.user, token_pk=pk, reason="revoked in the console"
            )
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("raised_at", "title", "state", "delivered_at", "cleared_at")
    list_filter = ("state",)
    search_fields = ("title", "key")
    readonly_fields = (
        "key",
        "title",
        "detail",
        "state",
        "raised_at",
        "cleared_at",
        "acknowledged_by",
        "delivered_at",
        "delivery_error",
    )
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge selected alerts (audited)")
    def acknowledge(self, request: HttpRequest, queryset: Any) -> None:
        try:
            count = sum(
                alert_acknowledge(actor=request.user, alert_pk=pk)
                for pk in queryset.values_list("pk", flat=True)
            )
        except PermissionDenied:
            self.message_user(request, "You may not acknowledge alerts.", messages.ERROR)
            return
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not can_acknowledge_alerts(request.user):
            actions.pop("acknowledge", None)
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False
