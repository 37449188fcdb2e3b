from django.contrib import admin
from django.urls import path

from billing import finance_views, views

app_name = "billing"


def staff(view):  # type: ignore[no-untyped-def]
    """Behind the console's login (active staff), like every admin page."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("stripe/webhook/<uuid:endpoint_uuid>/", views.stripe_webhook, name="stripe_webhook"),
    # Finance actions (billing/refunds.py, billing/subscriptions.py)
    path(
        "finance/customers/<uuid:customer_id>/panel/",
        staff(finance_views.customer_finance_panel_view),
        name="customer_finance_panel",
    ),
    path(
        "finance/customers/<uuid:customer_id>/refund/",
        staff(finance_views.refund_view),
        name="refund",
    ),
    path(
        "finance/customers/<uuid:customer_id>/change-plan/",
        staff(finance_views.change_plan_view),
        name="change_plan",
    ),
    path(
        "finance/customers/<uuid:customer_id>/cancel/",
        staff(finance_views.cancel_view),
        name="cancel",
    ),
    path(
        "finance/customers/<uuid:customer_id>/resume/",
        staff(finance_views.resume_view),
        name="resume",
    ),
    path(
        "finance/actions/<int:pk>/", staff(finance_views.finance_action_view), name="finance_action"
    ),
    path(
        "finance/refund-requests/",
        staff(finance_views.refund_requests_view),
        name="refund_requests",
    ),
    path(
        "finance/refund-requests/<int:pk>/",
        staff(finance_views.refund_request_view),
        name="refund_request",
    ),
]
