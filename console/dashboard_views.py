"""The operations dashboard: one admin page, served under /admin/console/.

GET shows the board for ``?window=1h|24h|7d``. POST runs one of two actions, each a
service call that checks permission again and audits: retry dead handler runs
(``customers.replay_events``) and acknowledge an alert (``console.view_alert``).
Wrapped by ``admin.site.admin_view`` in config/urls.py: staff login and CSRF as for any
admin page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe

from billing import services
from config.parsing import parse_id
from console import charts
from console.alerts import alert_acknowledge, can_acknowledge_alerts
from console.dashboard import DEFAULT_WINDOW, WINDOWS, dashboard
from customers.permissions import REPLAY_EVENTS, can_view_console


class UnknownItem(ValueError):
    """A POSTed id that is not an id: the user gets a message, nothing is done."""


def _ids(request: HttpRequest, name: str) -> list[int]:
    """The POSTed ids under ``name``; UnknownItem if any is not an id (nothing is done)."""
    values = request.POST.getlist(name)
    ids = [parse_id(v) for v in values]
    bad = [v for v, pk in zip(values, ids, strict=True) if pk is None]
    if bad:
        raise UnknownItem(
            f"Unknown {name} {bad[0][:20]!r}: nothing was done. Reload the page and select again."
        )
    return [pk for pk in ids if pk is not None]


def console_dashboard(request: HttpRequest) -> HttpResponse:
    if not can_view_console(request.user):
        raise PermissionDenied
    window = request.GET.get("window") or request.POST.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "retry_runs":
                count = services.handler_runs_replay(
                    actor=request.user,
                    run_pks=_ids(request, "run"),
                    reason="retried from the operations dashboard",
                )
                messages.success(request, f"{count} dead run(s) queued again.")
            elif action == "acknowledge_alert":
                count = sum(
                    alert_acknowledge(actor=request.user, alert_pk=pk)
                    for pk in _ids(request, "alert")
                )
                messages.success(request, f"{count} alert(s) acknowledged.")
            else:
                messages.error(request, "Unknown action.")
        except PermissionDenied as exc:
            messages.error(request, str(exc) or "You may not do that.")
        except UnknownItem as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(f"{reverse('console_dashboard')}?window={window}")

    board = dashboard(user=request.user, window=window)
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        "board": board,
        "windows": [(key, label) for key, (label, _) in WINDOWS.items()],
        "can_retry": request.user.has_perm(REPLAY_EVENTS),
        "can_acknowledge": can_acknowledge_alerts(request.user),
        "deliveries_svg": mark_safe(  # noqa: S308 - pygal escapes labels
            charts.csp_safe(
                charts.deliveries_chart(
                    board.series, title=f"Webhook deliveries and failures, {board.window_label}"
                ),
                nonce=str(request.csp_nonce),
            )
        ),
        "runs_svg": mark_safe(  # noqa: S308
            charts.csp_safe(
                charts.runs_chart(board.run_counts, title="Handler runs by status"),
                nonce=str(request.csp_nonce),
            )
        ),
    }
    return render(request, "admin/console/dashboard.html", context)
