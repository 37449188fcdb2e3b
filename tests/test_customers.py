"""The canonical customer: linked ids unique, edits through services, audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from audit import codes
from audit.models import AuditEntry
from customers.models import Customer
from customers.services import customer_create, customer_update
from tests.factories import CustomerFactory

DUPLICATE_MESSAGES = {
    "stripe_customer_id": "Another customer is already linked to this Stripe customer id.",
    "crm_contact_id": "Another customer is already linked to this CRM contact id.",
    "helpdesk_user_id": "Another customer is already linked to this helpdesk user id.",
    "product_user_id": "Another customer is already linked to this product user id.",
}
VALUES = {
    "stripe_customer_id": "cus_A1",
    "crm_contact_id": "501",
    "helpdesk_user_id": "9001",
    "product_user_id": "user-7",
}


@pytest.mark.django_db
@pytest.mark.parametrize("field", list(DUPLICATE_MESSAGES))
def test_duplicate_linked_id_is_refused_with_a_clear_message(field):
    CustomerFactory(**{field: VALUES[field]})
    duplicate = Customer(email="someone.else@example.test", **{field: VALUES[field]})
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert DUPLICATE_MESSAGES[field] in excinfo.value.message_dict[field][0]
    # and the database refuses it too, whatever code path tries
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


@pytest.mark.django_db
def test_missing_links_are_null_and_never_collide():
    a = customer_create(actor=None, email="a@example.test", crm_contact_id="  ")
    b = customer_create(actor=None, email="b@example.test", crm_contact_id="")
    assert a.crm_contact_id is None and b.crm_contact_id is None
    assert Customer.objects.filter(crm_contact_id__isnull=True).count() == 2


@pytest.mark.django_db
def test_same_email_is_allowed_because_email_is_not_the_join_key():
    CustomerFactory(email="shared@example.test", stripe_customer_id="cus_1")
    CustomerFactory(email="shared@example.test", stripe_customer_id="cus_2")
    assert Customer.objects.filter(email="shared@example.test").count() == 2


@pytest.mark.django_db
def test_admin_add_form_shows_the_duplicate_message(client, owner):
    CustomerFactory(stripe_customer_id="cus_TAKEN")
    client.force_login(owner)
    response = client.post(
        "/admin/customers/customer/add/",
        {
            "email": "new@example.test",
            "name": "New",
            "marketplace_role": "none",
            "stripe_customer_id": "cus_TAKEN",
        },
    )
    assert response.status_code == 200
    assert DUPLICATE_MESSAGES["stripe_customer_id"].encode() in response.content
    assert Customer.objects.filter(stripe_customer_id="cus_TAKEN").count() == 1


@pytest.mark.django_db
def test_owner_edit_in_admin_goes_through_the_audited_service(client, owner):
    customer = CustomerFactory(email="old@example.test", status="active")
    client.force_login(owner)
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "email": "new@example.test",
            "name": customer.name,
            "marketplace_role": "seller",
            "crm_contact_id": "77",
            "status": "canceled",  # billing field: ignored
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.marketplace_role, customer.crm_contact_id) == (
        "new@example.test",
        "seller",
        "77",
    )
    assert customer.status == "active"
    entry = AuditEntry.objects.get(action=codes.CUSTOMER_UPDATED, target_id=str(customer.pk))
    assert entry.actor == owner
    assert entry.data["before"]["email"] == "old@example.test"
    assert entry.data["after"]["email"] == "new@example.test"


@pytest.mark.django_db
def test_admin_add_creates_one_audited_customer(client, owner):
    client.force_login(owner)
    response = client.post(
        "/admin/customers/customer/add/",
        {
            "email": "added@example.test",
            "name": "Added",
            "marketplace_role": "buyer",
            "product_user_id": "u-1",
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(email="added@example.test")
    assert customer.product_user_id == "u-1"
    assert (
        AuditEntry.objects.filter(
            action=codes.CUSTOMER_CREATED, target_id=str(customer.pk), actor=owner
        ).count()
        == 1
    )


@pytest.mark.django_db
def test_services_refuse_billing_fields_and_wrong_roles(finance_admin, owner):
    customer = CustomerFactory()
    with pytest.raises(ValidationError, match="written by the Stripe pipeline"):
        customer_update(actor=owner, customer_id=customer.pk, changes={"status": "active"})
    with pytest.raises(PermissionDenied):
        customer_update(actor=finance_admin, customer_id=customer.pk, changes={"name": "x"})
    with pytest.raises(PermissionDenied):
        customer_create(actor=finance_admin, email="x@example.test")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "term_field",
    ["email", "stripe_customer_id", "crm_contact_id", "helpdesk_user_id", "product_user_id", "id"],
)
def test_admin_search_by_email_or_any_linked_id(client, support_agent, term_field):
    wanted = CustomerFactory(
        email="findme@example.test",
        stripe_customer_id="cus_FIND",
        crm_contact_id="c-find",
        helpdesk_user_id="h-find",
        product_user_id="p-find",
    )
    other = CustomerFactory(email="other@example.test", stripe_customer_id="cus_OTHER")
    client.force_login(support_agent)
    response = client.get("/admin/customers/customer/", {"q": str(getattr(wanted, term_field))})
    assert response.status_code == 200
    assert wanted.email.encode() in response.content
    assert other.email.encode() not in response.content


@pytest.mark.django_db
def test_admin_filters_by_status(client, support_agent):
    CustomerFactory(email="paying@example.test", status="active")
    CustomerFactory(email="late@example.test", status="past_due")
    client.force_login(support_agent)
    response = client.get("/admin/customers/customer/", {"status__exact": "past_due"})
    assert b"late@example.test" in response.content
    assert b"paying@example.test" not in response.content
