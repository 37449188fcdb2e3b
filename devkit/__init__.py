"""Development and test aids for Switchboard; never imported by product code.

Installed as a Django app only outside production (config/settings.py), so its
management commands (demo_stripe_seed, localstripe_bridge, demo_setup, console_bench,
console_bench_seed) exist in development and tests only. It may import anything.

- ``stripe_events``: Stripe events built from Stripe's own example objects
  (``stripe_fixtures/fixtures3.json``, a copy kept in this repository);
- ``signing``: signs webhook bodies as Stripe does;
- ``relay``: captures the webhooks localstripe sends, to hand them over byte for byte;
- ``localstripe``: the localstripe launcher and its shims;
- ``fakes``: local HTTP fakes of HubSpot, Zendesk and Slack.
"""
