"""make lighthouse: Lighthouse on the running demo, after a real login, as a table.

Pages: the login page, a customer page and the operations dashboard; form factors:
desktop and mobile. Targets: performance >= 90, accessibility >= 95, best practices >= 95,
CLS < 0.1. Exit status 1 when any figure misses its target.

How: Debian's chromium is started once by Playwright as a persistent (default) browser
context with a remote-debugging port; the login page is measured first, then the script
logs in through the real form and Lighthouse (npm, in .lighthouse/) measures the other
pages in the same browser with ``--disable-storage-reset`` so the session cookie stays.
The login is a staff user created for the run in the demo's database (DEMO_DATABASE_URL),
or LIGHTHOUSE_USER / LIGHTHOUSE_PASSWORD; a user with a second factor (the demo's owner
and finance admin) gets the code step typed too, computed from the authenticator's key in
the demo's database. Nothing is downloaded: no browser, no CDN.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
LIGHTHOUSE = ROOT / ".lighthouse" / "node_modules" / "lighthouse" / "cli" / "index.js"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGETS = {"performance": 90, "accessibility": 95, "best-practices": 95}
CLS_MAX = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _login_and_customer(base: str) -> tuple[str, str, str]:
    """(username, password, customer id) from the demo's database."""
    os.environ["DATABASE_URL"] = os.environ.get(
        "DEMO_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard_demo"
    )
    os.environ.setdefault("REDIS_URL", os.environ.get("DEMO_REDIS_URL", "redis://127.0.0.1:6379/2"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from customers import roles
    from customers.models import Customer
    from customers.services import staff_user_create

    customer = (
        Customer.objects.filter(status="disputed").first()
        or Customer.objects.exclude(stripe_customer_id=None).first()
    )
    if customer is None:
        sys.exit("The demo has no customers: run `make demo` first (same DEMO_* settings).")
    user = os.environ.get("LIGHTHOUSE_USER")
    password = os.environ.get("LIGHTHOUSE_PASSWORD", "")
    if not user:
        user, password = "lighthouse@demo.switchboard.test", f"lh-{secrets.token_hex(8)}"
        staff_user_create(actor=None, email=user, role=roles.SUPPORT_AGENT, password=password)
    return user, password, str(customer.pk)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"chromium did not open its debugging port {port} within 20 s")
            time.sleep(0.2)


def _log_in(port: int, base: str, user: str, password: str) -> None:
    """Through the real login form, in the browser's default context (Lighthouse's tabs
    share its cookies)."""
    from playwright.sync_api import sync_playwright

    code = _totp_code(user)  # before Playwright's event loop runs (the ORM is synchronous)
    with sync_playwright() as p:
        browser = p.chromium.connect_over_cdp(f"http://127.0.0.1:{port}")
        page = browser.contexts[0].new_page()
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", user)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools, #two-factor-verify")
        if page.locator("#two-factor-verify").count():
            # The second factor: the code the user's authenticator shows now, computed from
            # the key in the demo's database (devkit.two_factor), typed like a person would.
            if code is None:
                sys.exit(f"{user} must enter a second factor but has no authenticator set up.")
            page.fill("#id_code", code)
            page.click("#two-factor-verify input[type=submit]")
        page.wait_for_selector("#user-tools")
        page.close()


def _totp_code(user: str) -> str | None:
    """The code the user's authenticator shows now (None: they have none)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from devkit.two_factor import current_code

    device = TOTPDevice.objects.filter(user__username__iexact=user, confirmed=True).first()
    return current_code(device) if device is not None else None


def _lighthouse(url: str, port: int, form_factor: str, out: Path) -> dict[str, float]:
    cmd = [
        "node",
        str(LIGHTHOUSE),
        url,
        f"--port={port}",
        "--output=json",
        f"--output-path={out}",
        "--only-categories=performance,accessibility,best-practices",
        "--disable-storage-reset",
        "--quiet",
    ]
    if form_factor == "desktop":
        cmd.append("--preset=desktop")
    for attempt in (1, 2):  # a trace that failed to record (NO_NAVSTART) is retried once
        done = subprocess.run(cmd, env={**os.environ, "CHROME_PATH": CHROMIUM})
        if done.returncode == 0:
            break
        if attempt == 2:
            sys.exit(f"Lighthouse failed on {url} ({form_factor}).")
    report = json.loads(out.read_text())
    scores = {k: round((report["categories"][k]["score"] or 0) * 100) for k in TARGETS}
    scores["cls"] = round(report["audits"]["cumulative-layout-shift"]["numericValue"], 3)
    failing = [
        f"{category}: {report['audits'][ref['id']]['title']}"
        for category in TARGETS
        for ref in report["categories"][category]["auditRefs"]
        if ref["weight"]
        and (report["audits"][ref["id"]].get("score") or 0) < 0.9
        and report["audits"][ref["id"]].get("scoreDisplayMode") in ("binary", "numeric")
    ]
    scores["failing"] = failing  # type: ignore[assignment]
    return scores


def main() -> int:
    port = os.environ.get("DEMO_PORT", "8000")
    base = os.environ.get("LIGHTHOUSE_BASE_URL", f"http://127.0.0.1:{port}").rstrip("/")
    try:
        urllib.request.urlopen(f"{base}/healthz", timeout=3)
    except OSError:
        sys.exit(f"No console answers at {base}: start `make demo` first (same DEMO_PORT).")
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: run `make lighthouse` (it installs it).")
    user, password, customer_id = _login_and_customer(base)
    pages = [
        ("login", f"{base}/admin/login/"),
        ("customer", f"{base}/admin/console/customers/{customer_id}/"),
        ("dashboard", f"{base}/admin/console/"),
    ]

    debug_port = _free_port()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # chromium started here (not by Playwright, whose automation flags change what is
        # measured); Playwright only drives the login form, over the same CDP port.
        chromium = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--remote-debugging-port={debug_port}",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(debug_port)
            for name, url in pages:
                if name == "customer":
                    _log_in(debug_port, base, user, password)
                for form_factor in ("desktop", "mobile"):
                    out = Path(tmp) / f"{name}-{form_factor}.json"
                    rows.append((name, form_factor, _lighthouse(url, debug_port, form_factor, out)))
        finally:
            chromium.terminate()
            chromium.wait(timeout=10)
    misses = 0
    print()
    print(f"Lighthouse on {base} (logged in as {user} for customer and dashboard)")
    print(f"{'page':<10} {'form':<8} {'perf':>5} {'a11y':>5} {'best':>5} {'CLS':>6}  result")
    for name, form_factor, s in rows:
        ok = all(s[k] >= v for k, v in TARGETS.items()) and s["cls"] < CLS_MAX
        misses += not ok
        print(
            f"{name:<10} {form_factor:<8} {s['performance']:>5} {s['accessibility']:>5} "
            f"{s['best-practices']:>5} {s['cls']:>6}  {'PASS' if ok else 'MISS'}"
        )
        if not ok:
            for line in s["failing"]:
                print(f"{'':<20} - {line}")
    print(
        f"targets: performance >= {TARGETS['performance']}, accessibility >= "
        f"{TARGETS['accessibility']}, best practices >= {TARGETS['best-practices']}, "
        f"CLS < {CLS_MAX}"
    )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
