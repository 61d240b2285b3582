"""Shared helpers for the client scenarios.

The scenarios are plain scripts run by the *client* virtual environment (``opsml==2.2.4``),
never imported by pytest. Each one prints a single JSON summary line (prefixed with
``SUMMARY ``) and exits 0, or prints the failed check with its context and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import httpx

SUMMARY_PREFIX = "SUMMARY "


class Mismatch(AssertionError):
    """A check against the server's behaviour failed."""


class Scenario:
    def __init__(self, name: str) -> None:
        self.name = name
        self.checks = 0
        self.facts: dict[str, Any] = {}
        self.tracking_uri = os.environ["OPSML_TRACKING_URI"].rstrip("/")
        if not self.tracking_uri.startswith("http"):
            raise SystemExit("OPSML_TRACKING_URI must be the http URI of the server under test")
        # Names must be unique per run: a suite re-run against one database must not collide.
        run_id = os.environ.get("OPSML_COMPAT_RUN_ID") or uuid.uuid4().hex[:8]
        self.suffix = run_id.lower()
        self.http = httpx.Client(base_url=f"{self.tracking_uri}/opsml", timeout=30.0)

    def unique(self, stem: str) -> str:
        """A card name unique to this run, already in the client's canonical form."""
        return f"{stem}-{self.suffix}"

    def check(self, condition: object, what: str, **context: Any) -> None:
        self.checks += 1
        if not condition:
            detail = json.dumps(context, default=repr, indent=1) if context else ""
            raise Mismatch(f"{what}\n{detail}")

    def equal(self, actual: Any, expected: Any, what: str) -> None:
        self.check(actual == expected, what, actual=actual, expected=expected)

    # Raw protocol calls, for checks the client API does not expose (files, metrics).
    def files_list(self, path: str) -> list[str]:
        response = self.http.get("/files/list", params={"path": path})
        self.equal(
            response.status_code, 200, f"GET files/list?path={path} status ({response.text})"
        )
        return list(response.json()["files"])

    def files_exists(self, path: str) -> bool:
        response = self.http.get("/files/exists", params={"path": path})
        self.equal(
            response.status_code, 200, f"GET files/exists?path={path} status ({response.text})"
        )
        return bool(response.json()["exists"])

    def post(self, route: str, body: dict[str, Any]) -> Any:
        response = self.http.post(route, json=body)
        self.equal(response.status_code, 200, f"POST {route} {body} status ({response.text})")
        return response.json()

    def run(self, body: Callable[[Scenario], None]) -> None:
        started = time.monotonic()
        try:
            body(self)
        except AssertionError as error:  # our checks, and pandas/numpy testing helpers
            traceback.print_exc()
            print(f"MISMATCH in scenario {self.name}: {error}", flush=True)
            self._summary(ok=False, error=str(error).splitlines()[0], started=started)
            raise SystemExit(1) from None
        except Exception as error:  # the client itself raised: the server broke the protocol
            traceback.print_exc()
            print(
                f"CLIENT ERROR in scenario {self.name}: {type(error).__name__}: {error}", flush=True
            )
            self._summary(ok=False, error=f"{type(error).__name__}: {error}", started=started)
            raise SystemExit(1) from None
        self._summary(ok=True, error=None, started=started)

    def _summary(self, *, ok: bool, error: str | None, started: float) -> None:
        summary = {
            "scenario": self.name,
            "ok": ok,
            "checks": self.checks,
            "seconds": round(time.monotonic() - started, 2),
            "error": error,
            **self.facts,
        }
        print(SUMMARY_PREFIX + json.dumps(summary, default=str), flush=True)
        sys.stdout.flush()


def card_dir(table: str, repository: str, name: str, version: str) -> str:
    return f"opsml-root:/{table}/{repository}/{name}/v{version}"
