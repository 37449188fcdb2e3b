"""Customers onboarded before provisioning existed (billing mirrored its status into
``onboarding_state``): an entitlement that says so, so their next Stripe event does not
send them a ``customer.entitled`` (or a welcome email) as if they had just paid."""

from django.db import migrations
from django.utils import timezone

LIVE = ("active", "trialing", "past_due", "unpaid", "disputed")


def forwards(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    Entitlement = apps.get_model("provisioning", "Entitlement")
    now = timezone.now()
    rows = Customer.objects.filter(onboarding_state="active", status__in=LIVE, erased_at=None)
    Entitlement.objects.bulk_create(
        [
            Entitlement(
                customer_id=pk,
                entitled=True,
                generation=1,
                plan_id=plan_id,
                state="active",
                reason="onboarded before provisioning was tracked",
                entitled_at=now,
                state_since=now,
            )
            for pk, plan_id in rows.values_list("pk", "plan_id").iterator()
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0001_initial"),
        ("customers", "0009_alter_customer_onboarding_state"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
