"""A fake Slack incoming webhook: POST {"text": ...} answers 200 "ok"."""

from __future__ import annotations

from typing import Any

from devkit.fakes.base import FakeVendor


class FakeSlack(FakeVendor):
    name = "slack"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def error_body(self, status: int) -> Any:
        return b"invalid_token" if status == 403 else b"internal_error"

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        if method != "POST" or not isinstance(body, dict) or "text" not in body:
            return 400, b"invalid_payload", {}
        self.messages.append(body["text"])
        return 200, b"ok", {}
