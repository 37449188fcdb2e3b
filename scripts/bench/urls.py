"""The bench URLconf: the project's URLs, dj-stripe's stock webhook view and a bare view.

- ``/stripe/webhook/<uuid>/``: ours (``billing.views.stripe_webhook``, from config.urls).
- ``/djstripe/webhook/<uuid>/``: dj-stripe 2.11's ``djstripe:djstripe_webhook_by_uuid``,
  which verifies and then processes the event in the request (re-fetching from Stripe).
- ``/bench/bare/<uuid>/``: verify the signature, insert one row (``scripts.bench.bare``).
"""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns
from scripts.bench import bare

urlpatterns = [
    *project_urlpatterns,
    path("djstripe/", include("djstripe.urls", namespace="djstripe")),
    path("bench/bare/<uuid:endpoint_uuid>/", bare.bare_webhook, name="bench_bare_webhook"),
]
