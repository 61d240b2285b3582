"""Regenerate docs/reference-2.2.4.md from a live reference opsml 2.2.4 server.

    .venv/bin/python -m tests.compat.reference_capture [docs/reference-2.2.4.md]

Starts the reference server (reference venv) on a fresh SQLite file and directory with the
recording middleware of ``capture/capture_app.py``, runs ``capture/session.py`` with the real
client (client venv), makes a few direct protocol probes, then writes the schema, rows,
storage tree and every recorded exchange as Markdown.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.compat import harness, venvs

CAPTURE_DIR = Path(__file__).resolve().parent / "capture"
DEFAULT_OUT = harness.REPO_ROOT / "docs" / "reference-2.2.4.md"

KEY_FACTS = (CAPTURE_DIR / "key_facts.md").read_text()


def _probes(base: str, run_uid: str) -> None:
    http = httpx.Client(base_url=f"{base}/opsml", timeout=30)
    http.post("/metrics", json={"run_uid": "nope"})
    http.post("/metrics", json={"run_uid": run_uid, "names_only": True})
    http.post("/metrics", json={"run_uid": run_uid, "name": ["mae"]})
    http.get("/metrics", params={"run_uid": run_uid})
    http.get("/files/list", params={"path": "opsml-root:/OPSML_DATA_REGISTRY/nothing"})
    http.get("/files/list", params={"path": "opsml-root:/OPSML_MODEL_REGISTRY/compat-repo"})
    http.get("/files/exists", params={"path": "opsml-root:/OPSML_DATA_REGISTRY/nothing"})
    http.get("/cards/repositories", params={"registry_type": "data"})
    http.get("/cards/names", params={"registry_type": "data", "repository": "compat-repo"})
    http.get("/projects/id", params={"project_name": "other", "repository": "compat-repo"})
    http.post("/models/metadata", json={"name": "compat-model", "repository": "compat-repo"})
    http.post(
        "/cards/create",
        json={
            "card": {"uid": "x1", "name": "n", "repository": "r", "version": "1.0.0", "bogus": 1},
            "registry_type": "data",
        },
    )
    http.post("/cards/list", json={"registry_type": "data", "uid": "doesnotexist"})
    http.post(
        "/cards/delete",
        json={
            "card": {"uid": "doesnotexist", "name": "n", "version": "1.0.0"},
            "registry_type": "data",
        },
    )
    http.get("/registry/table", params={"registry_type": "DATA"})
    http.get("/registry/table", params={"registry_type": "bogus"})


def _rows(db: sqlite3.Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row) for row in db.execute(sql)]


def _render(root: Path, capture: Path) -> str:
    db = sqlite3.connect(root / "opsml.db")
    db.row_factory = sqlite3.Row
    out: list[str] = []
    w = out.append
    w("# Reference opsml 2.2.4 server: schema, rows, storage tree and wire capture\n")
    w((CAPTURE_DIR / "intro.md").read_text())
    w(KEY_FACTS)
    schema = "\n".join(
        row[0] + ";"
        for row in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
    )
    w("## SQLite DDL (every `CREATE` in `sqlite_master`, as `.schema` prints it)\n")
    w("```sql\n" + schema + "\n```\n")
    versions = _rows(db, "SELECT * FROM opsml_alembic_version")
    w(
        f"`SELECT * FROM opsml_alembic_version` -> {len(versions)} rows {versions}"
        " (no revision id).\n"
    )
    indexes = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    w("Indexes: " + ", ".join(f"`{name}`" for name in indexes) + " (all implicit, `sql` NULL).\n")
    w("## Rows as stored (JSON columns are TEXT, shown verbatim)\n")
    for title, sql in [
        (
            "OPSML_DATA_REGISTRY, compat-data 1.1.0",
            "SELECT * FROM OPSML_DATA_REGISTRY WHERE name='compat-data' AND version='1.1.0'",
        ),
        (
            "OPSML_DATA_REGISTRY, pre-release 3.0.0-rc.1",
            "SELECT * FROM OPSML_DATA_REGISTRY WHERE version='3.0.0-rc.1'",
        ),
        (
            "OPSML_DATA_REGISTRY, a DataCard registered inside a run (runcard_uid set)",
            "SELECT * FROM OPSML_DATA_REGISTRY WHERE name='run-data'",
        ),
        ("OPSML_MODEL_REGISTRY", "SELECT * FROM OPSML_MODEL_REGISTRY"),
        ("OPSML_RUN_REGISTRY, after the run ended (updated)", "SELECT * FROM OPSML_RUN_REGISTRY"),
        ("OPSML_PROJECT_REGISTRY", "SELECT * FROM OPSML_PROJECT_REGISTRY"),
        ("OPSML_RUN_METRICS", "SELECT * FROM OPSML_RUN_METRICS"),
        (
            "Storage classes of the RUN row",
            "SELECT typeof(uid), typeof(date), typeof(timestamp), typeof(tags),"
            " typeof(datacard_uids), typeof(artifact_uris), typeof(pipelinecard_uid)"
            " FROM OPSML_RUN_REGISTRY",
        ),
    ]:
        w(
            f"### {title}\n\n```json\n"
            + "\n".join(json.dumps(r) for r in _rows(db, sql))
            + "\n```\n"
        )
    names = ", ".join(
        f"`{r['name']} {r['version']}`"
        for r in _rows(db, "SELECT name, version FROM OPSML_DATA_REGISTRY ORDER BY name, version")
    )
    w(f"All DATA rows: {names} (compat-data 1.0.0 was deleted by the session).\n")
    w("## Storage tree, relative to `OPSML_STORAGE_URI`, after the session\n")
    files = sorted(p for p in (root / "storage").rglob("*") if p.is_file())
    w(
        "```\n"
        + "\n".join(f"{p.relative_to(root / 'storage')}  ({p.stat().st_size} bytes)" for p in files)
        + "\n```\n"
    )
    gone = not (root / "storage/OPSML_DATA_REGISTRY/compat-repo/compat-data/v1.0.0").exists()
    w(
        f"After `delete_card`, the directory `OPSML_DATA_REGISTRY/compat-repo/compat-data/v1.0.0` "
        f"{'no longer exists' if gone else 'still exists (empty)'}.\n"
    )
    w("## Wire capture, in order\n")
    w((CAPTURE_DIR / "session_summary.md").read_text())
    for number, line in enumerate(capture.read_text().splitlines(), start=1):
        c = json.loads(line)
        query = f"?{c['query']}" if c["query"] else ""
        w(f"### {number}. {c['method']} {c['path']}{query} -> {c['status']}\n")
        if c["req_headers"]:
            w("request headers: `" + json.dumps(c["req_headers"]) + "`\n")
        if c["req"]:
            body = c["req"]
            with contextlib.suppress(ValueError):
                body = json.dumps(json.loads(body), indent=1)
            w("request body:\n```\n" + body + "\n```\n")
        content_type = (c.get("resp_headers") or {}).get("content-type")
        w(f"response ({content_type}):\n```\n{c['resp']}\n```\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    built = venvs.ensure_many(["client", "reference"])
    root = Path(tempfile.mkdtemp(prefix="opsml-reference-"))
    (root / "storage").mkdir()
    capture = root / "capture.jsonl"
    server = harness.reference_server(
        built["reference"].bin,
        f"sqlite:///{root / 'opsml.db'}",
        {"OPSML_STORAGE_URI": str(root / "storage")},
        root / "server.log",
    )
    server.argv[server.argv.index("opsml.app.main:run_app")] = "capture_app:app_factory"
    server.env.update(PYTHONPATH=str(CAPTURE_DIR), CAPTURE_LOG=str(capture))
    server.start()
    try:
        env = {**harness.clean_environ(), "OPSML_TRACKING_URI": server.url}
        session = subprocess.run(
            [str(built["client"].python), str(CAPTURE_DIR / "session.py")],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if session.returncode != 0:
            print(session.stdout[-3000:], session.stderr[-3000:], file=sys.stderr)
            return 1
        run_uid = session.stdout.split("RUN_UID ")[1].split()[0]
        _probes(server.url, run_uid)
    finally:
        server.stop()
    out.write_text(_render(root, capture))
    print(f"wrote {out} from {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
