"""Forms of the finance action pages. Each carries ``key``, a one-time submission id made
when the page is first shown: the service turns a second submit of the same form into
the first action instead of a second one."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from billing.refunds import REASON_CODES
from billing.subscriptions import PRORATIONS
from config.money import to_minor

# Refund amounts larger than this many whole digits are typing mistakes, not refunds.
MAX_WHOLE_DIGITS = 12

NOTE_WIDGET = forms.Textarea(attrs={"rows": 3, "cols": 60})


class _ActionForm(forms.Form):
    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", uuid.uuid4())


class RefundForm(_ActionForm):
    amount = forms.CharField(
        label="Amount to refund", max_length=20, help_text="In the charge's currency, e.g. 12.50."
    )
    reason_code = forms.ChoiceField(
        label="Reason", choices=[("", "— choose —"), *REASON_CODES.items()]
    )
    note = forms.CharField(label="Note (why, in words)", widget=NOTE_WIDGET, max_length=2000)

    def __init__(self, *args: Any, currency: str = "usd", **kwargs: Any) -> None:
        self.currency = currency
        super().__init__(*args, **kwargs)

    def clean_amount(self) -> int:
        """The amount in the currency's smallest unit. Anything that is not a plain finite
        number of sensible size ("Infinity", "sNaN", "1e999999") is a form error: the
        Decimal arithmetic below would otherwise raise outside any handler (a 500)."""
        raw = (self.cleaned_data["amount"] or "").strip().replace(",", "")
        try:
            value = Decimal(raw)
        except (InvalidOperation, ValueError):
            raise ValidationError("Enter an amount such as 12.50.") from None
        if not value.is_finite():
            raise ValidationError("Enter the amount as a plain number, such as 12.50.")
        if value and value.adjusted() >= MAX_WHOLE_DIGITS:
            raise ValidationError(
                f"That amount is too large: at most {MAX_WHOLE_DIGITS} "
                "digits before the decimal point."
            )
        try:
            minor = to_minor(value, self.currency)
            if minor != minor.to_integral_value():
                raise ValidationError("That amount has too many decimals for this currency.")
            if minor <= 0:
                raise ValidationError("The refund amount must be more than zero.")
            return int(minor)
        except (InvalidOperation, ArithmeticError, OverflowError, ValueError):
            raise ValidationError("Enter the amount as a plain number, such as 12.50.") from None


class ChangePlanForm(_ActionForm):
    plan_id = forms.ChoiceField(label="New plan")
    proration = forms.ChoiceField(
        label="Proration",
        choices=list(PRORATIONS.items()),
        widget=forms.RadioSelect,
        initial="create_prorations",
    )
    note = forms.CharField(label="Reason", widget=NOTE_WIDGET, max_length=2000)

    def __init__(self, *args: Any, plans: list[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan_id"].choices = [("", "— choose —"), *plans]


class CancelForm(_ActionForm):
    when = forms.ChoiceField(
        label="When",
        widget=forms.RadioSelect,
        initial="period_end",
        choices=[
            ("period_end", "At the end of the paid period"),
            ("now", "Now (access ends immediately, no refund)"),
        ],
    )
    note = forms.CharField(label="Reason", widget=NOTE_WIDGET, max_length=2000)


class ResumeForm(_ActionForm):
    note = forms.CharField(label="Reason", widget=NOTE_WIDGET, max_length=2000)


class DecisionForm(forms.Form):
    note = forms.CharField(label="Note", widget=NOTE_WIDGET, max_length=2000, required=False)
