"""Create the database named in DATABASE_URL if it does not exist yet (dev and demo).

``--recreate`` drops it first (the demo starts from a clean database on every run).
"""

from __future__ import annotations

import os
import sys

import environ
import psycopg
from psycopg import sql


def main() -> int:
    env = environ.Env()
    if os.path.isfile(".env"):
        env.read_env(".env")
    url = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/switchboard")
    cfg = environ.Env.db_url_config(url)
    name = cfg["NAME"]
    params = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or 5432,
        "user": cfg.get("USER") or "postgres",
        "password": cfg.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as conn:
        if "--recreate" in sys.argv[1:]:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"Created database {name}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
