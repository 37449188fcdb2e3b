"""factory-boy factories shared by the test suite."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from customers.models import Customer

PASSWORD = "correct horse battery staple"


class StaffUserFactory(factory.django.DjangoModelFactory):
    """A staff login; pass ``role="finance_admin"`` (or owner/support_agent) to join a group."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}@example.test")
    email = factory.SelfAttribute("username")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        self.save()

    @factory.post_generation
    def two_factor(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        """An authenticator for the roles that must have one (``two_factor=False``: none
        yet, as at a first login; ``True``: one whatever the role)."""
        from customers.two_factor import two_factor_required
        from tests.two_factor_support import totp_device

        if extracted or (extracted is None and two_factor_required(self)):
            totp_device(self)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.test")
    name = factory.Faker("name")
