"""Sign webhook bodies exactly as Stripe does (see ``devkit.signing``, which the
demo command shares); this module keeps the tests' import path."""

from __future__ import annotations

from devkit.signing import encode, signature_header, signed  # noqa: F401
