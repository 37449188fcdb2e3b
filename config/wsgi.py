"""WSGI entry point (gunicorn config.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, the apps, their modules: about 170,000 objects) lives as
# long as the process. Frozen, it is left out of the collector's full passes: each one
# otherwise paused every thread of the process for about 100 ms, a stall every webhook
# in flight waited out (measured with gc.callbacks under `make bench` load; 10-50 ms after).
gc.collect()
gc.freeze()
