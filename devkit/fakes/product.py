"""A fake product: the SaaS behind Switchboard, receiving its signed webhooks.

It answers 200 to any POST (``fail``/``hang`` from the base give it 500s, 410s and
timeouts; ``stop`` takes it down) and keeps every request's raw body and headers, so a
test verifies the signature with the Standard Webhooks reference verifier exactly as
the product would.
"""

from __future__ import annotations

from typing import Any

from devkit.fakes.base import FakeVendor, Recorded

PATH = "/webhooks/switchboard"


class FakeProduct(FakeVendor):
    name = "product"

    @property
    def endpoint_url(self) -> str:
        return self.url + PATH

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        if method != "POST" or not isinstance(body, dict) or "type" not in body:
            return 400, {"error": "expected a webhook"}, {}
        return 200, {"ok": True}, {}

    def messages(self, event_type: str | None = None, *, ok: bool | None = None) -> list[Recorded]:
        """Requests that carried a webhook of ``event_type`` (all: None); ``ok``: only
        those answered 2xx (True) or not (False)."""
        return [
            r
            for r in self.calls("POST", PATH)
            if isinstance(r.body, dict)
            and (event_type is None or r.body.get("type") == event_type)
            and (ok is None or (200 <= r.status < 300) == ok)
        ]
