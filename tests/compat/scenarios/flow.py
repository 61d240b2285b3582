"""The whole compatibility flow in one client process: datacard, modelcard, project_run,
list_versions, and the mixed fleet's writes (one import of opsml, pandas and scikit-learn).

Used by the client matrix, where every released 2.x client runs it. Each part runs on its own
`Scenario`; the single SUMMARY line reports every part, so the test can tell a part a client
release cannot do (named in test_client_matrix.py) from a server fault.
"""

from __future__ import annotations

import importlib
import json
import time
import traceback

import opsml
from _common import SUMMARY_PREFIX, Scenario

PARTS = ["datacard", "modelcard", "project_run", "list_versions", "fleet"]


def main() -> None:
    started = time.monotonic()
    parts: dict[str, dict[str, object]] = {}
    for name in PARTS:
        scenario = Scenario(name)
        try:
            module = importlib.import_module(name)
            (module.write if name == "fleet" else module.body)(scenario)
        except Exception as error:  # AssertionError (a check) or the client raising
            traceback.print_exc()
            first = str(error).splitlines()[0] if str(error) else ""
            parts[name] = {"ok": False, "error": f"{type(error).__name__}: {first}"}
        else:
            parts[name] = {"ok": True, "checks": scenario.checks}
        parts[name]["client_limits"] = scenario.facts.get("client_limits", [])
    summary = {
        "scenario": "flow",
        "ok": True,  # the parts carry the verdicts; the test compares them with the limits
        "opsml": opsml.__version__,
        "parts": parts,
        "seconds": round(time.monotonic() - started, 2),
    }
    print(SUMMARY_PREFIX + json.dumps(summary, default=str), flush=True)


if __name__ == "__main__":
    main()
