"""Error pages: a 503 that says the database is unreachable, a plain 500 otherwise.

Django calls ``handler500`` inside the ``except`` block of the failed request, so the
exception is still at hand. A database that refuses or drops connections (PostgreSQL
down, restarting, out of connections) is an outage, not a bug: 503 with Retry-After and a
page saying so, rendered without a request context (the context processors would ask the
database for the user). Neither page shows a stack trace.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        response = HttpResponse(loader.render_to_string("503_database.html"), status=503)
        response["Retry-After"] = "30"
        return response
    return HttpResponse(loader.render_to_string("500.html"), status=500)
