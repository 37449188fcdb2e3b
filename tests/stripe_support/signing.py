"""Sign webhook bodies exactly as Stripe does (see ``billing.testing.signing``, which the
demo command shares); this module keeps the tests' import path."""

from __future__ import annotations

from billing.testing.signing import encode, signature_header, signed  # noqa: F401
