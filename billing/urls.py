from django.contrib import admin
from django.urls import path

from billing import views

app_name = "billing"


def staff(view):  # type: ignore[no-untyped-def]
    """Behind the console's login (active staff), like every admin page."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("stripe/webhook/<uuid:endpoint_uuid>/", views.stripe_webhook, name="stripe_webhook"),
    # Finance actions (billing/refunds.py, billing/subscriptions.py)
    path("finance/customers/<uuid:customer_id>/refund/", staff(views.refund_view),
         name="refund"),
    path("finance/customers/<uuid:customer_id>/change-plan/", staff(views.change_plan_view),
         name="change_plan"),
    path("finance/customers/<uuid:customer_id>/cancel/", staff(views.cancel_view),
         name="cancel"),
    path("finance/customers/<uuid:customer_id>/resume/", staff(views.resume_view),
         name="resume"),
    path("finance/actions/<int:pk>/", staff(views.finance_action_view), name="finance_action"),
    path("finance/refund-requests/", staff(views.refund_requests_view), name="refund_requests"),
    path("finance/refund-requests/<int:pk>/", staff(views.refund_request_view),
         name="refund_request"),
]
