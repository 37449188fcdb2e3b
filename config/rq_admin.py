"""The django-rq dashboard, inside the admin, for owners only.

django-rq's own views only ask for ``is_staff``; any support agent could open them by
URL. This replaces its admin registration with one that checks the ``django_rq.admin``
permission (held by the owner role) on every dashboard URL, the JSON stats included.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import URLPattern
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

PERMISSION = "django_rq.admin"


class OwnerOnlyQueueAdmin(QueueAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(PERMISSION)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        def wrap(view: Any) -> Any:
            @wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if not request.user.has_perm(PERMISSION):
                    raise PermissionDenied
                request.current_app = self.admin_site.name  # type: ignore[attr-defined]
                return view(request, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        patterns = get_api_urlpatterns(name_prefix="django_rq_")
        patterns += get_admin_urlpatterns(name_prefix="django_rq_", view_wrapper=lambda v: v)
        wrapped = [type(p)(p.pattern, wrap(p.callback), p.default_args, p.name) for p in patterns]
        return wrapped + admin.ModelAdmin.get_urls(self)


def install() -> None:
    if admin.site.is_registered(Dashboard):
        admin.site.unregister(Dashboard)
    admin.site.register(Dashboard, OwnerOnlyQueueAdmin)
