"""The django-rq dashboard, inside the admin, for owners only.

django-rq's own views only ask for ``is_staff``; any support agent could open them by
URL. This replaces its admin registration with one that checks the ``django_rq.admin``
permission (held by the owner role) on every dashboard URL, the JSON stats included, and
leaves out the URLs that could only fail (the table-less model's change, delete and
history pages, and the rq-scheduler page without rq-scheduler).
"""

from __future__ import annotations

import importlib.util
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import URLPattern
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns
from rq.exceptions import NoSuchJobError

PERMISSION = "django_rq.admin"
_CHANGELIST = "django_rq_dashboard_changelist"
# django-rq's page of rq-scheduler's jobs needs the rq-scheduler package, which we do not
# use (run_scheduler schedules our periodic work): without it the page was a 500.
_UNUSABLE_VIEWS = (
    set() if importlib.util.find_spec("rq_scheduler") else {"django_rq_scheduler_jobs"}
)


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
                try:
                    return view(request, *args, **kwargs)
                except (IndexError, ValueError, NoSuchJobError) as exc:
                    # django-rq looks queues up by position (/queues/7/ with three queues)
                    # and fetches jobs and workers without a check (ValueError for a bad worker
                    # key): an unknown one is a 404, not a 500.
                    raise Http404("No such queue or job.") from exc

            return self.admin_site.admin_view(wrapper)

        patterns = get_api_urlpatterns(name_prefix="django_rq_")
        patterns += get_admin_urlpatterns(name_prefix="django_rq_", view_wrapper=lambda v: v)
        patterns = [p for p in patterns if p.name not in _UNUSABLE_VIEWS]
        wrapped = [type(p)(p.pattern, wrap(p.callback), p.default_args, p.name) for p in patterns]
        # Only the changelist (the dashboard itself) of ModelAdmin's URLs: Dashboard is a
        # model without a table, so its change, delete and history pages queried a table
        # that does not exist (a 500 for everyone, before any permission check).
        changelist = [p for p in admin.ModelAdmin.get_urls(self) if p.name == _CHANGELIST]
        return wrapped + changelist


def install() -> None:
    if admin.site.is_registered(Dashboard):
        admin.site.unregister(Dashboard)
    admin.site.register(Dashboard, OwnerOnlyQueueAdmin)
