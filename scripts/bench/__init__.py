"""``make bench``: Switchboard's Stripe webhook benchmark (a command that prints figures,
not a test).

What it does, in one run (``python -m scripts.bench --help`` lists the knobs):

1. Recreates its own PostgreSQL database (``BENCH_DATABASE_URL``, default
   ``switchboard_bench``; cloned from a cached, already-migrated template ``<name>_tpl``
   when the migration files have not changed, because dj-stripe's migrations alone take about a minute), runs ``migrate``
   and ``manage.py stripe_webhook_setup --base-url ...`` against it, pre-creates
   dj-stripe's Account/APIKey rows (localstripe has no ``GET /v1/account``) and the bare
   view's table.
2. Starts localstripe (the project's shimmed launcher when present), a counting HTTP
   proxy in front of it (``STRIPE_API_BASE`` of every bench process points at the proxy,
   so Stripe API calls made in other processes are counted), the web app under gunicorn
   (``scripts.bench.settings_bench``: config.settings plus a bench URLconf mounting
   dj-stripe's own webhook view and a bare view), and, for the end-to-end phase, two RQ
   workers (``manage.py rqworker webhooks sync default``) on a dedicated Redis database
   (``BENCH_REDIS_URL``, default database 13).
3. Seeds customers and subscriptions in localstripe, builds correctly signed events for
   them with devkit's builders (``devkit.stripe_events`` / ``devkit.signing``),
   and sends them with an asyncio HTTP/1.1 load generator (``loadgen``) at a fixed rate
   (open loop; latency counted from the scheduled send time) and at saturation (closed
   loop, fixed number of connections), only to 127.0.0.1, bounded in count and time.
4. Prints one table: acknowledgement latency, saturation throughput, end-to-end lag at
   each ``--e2e-rates`` rate (100 and 300 events/s), Stripe API calls and RQ jobs per
   event, the same acknowledgement figures for dj-stripe's stock
   in-request processing and for a bare verify-and-insert view, ratios, and targets with
   PASS/MISS.
5. Stops everything it started (process groups it created, by pid), on success, error or
   Ctrl-C. The web, worker, localstripe and proxy logs stay in the run directory it prints.
"""
