"""`opsml-server migrate` runs once per release: as a Helm hook, or as a checksum-named Job."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.charts.conftest import FULLNAME, Rendered, RenderFactory, containers, env_of

HOOK = "helm.sh/hook"


def _job_pod(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.migration_job["spec"]["template"]["spec"]
    return spec


def _hooks(rendered: Rendered) -> dict[tuple[str, str], dict[str, str]]:
    """Install/upgrade hooks (the `helm test` pod is a hook too, of another kind)."""
    return {
        (d["kind"], d["metadata"]["name"]): d["metadata"]["annotations"]
        for d in rendered.docs
        if d["metadata"].get("annotations", {}).get(HOOK, "test") != "test"
    }


def test_hook_mode_is_the_default(render: RenderFactory) -> None:
    rendered = render("minimal")
    job = rendered.migration_job
    annotations = job["metadata"]["annotations"]
    assert job["metadata"]["name"] == f"{FULLNAME}-migrate"
    assert annotations[HOOK] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert int(annotations["helm.sh/hook-weight"]) == 0
    pod = _job_pod(rendered)
    migrate = containers(pod)["migrate"]
    assert migrate["command"] == ["opsml-server", "migrate"]
    assert pod["restartPolicy"] == "Never"
    assert env_of(migrate)["OPSML_TRACKING_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "opsml-database",
        "key": "OPSML_TRACKING_URI",
    }
    assert "ttlSecondsAfterFinished" not in job["spec"]


def test_hook_job_has_its_own_hook_service_account(render: RenderFactory) -> None:
    rendered = render("gcp")
    hooks = _hooks(rendered)
    sa_hook = hooks[("ServiceAccount", f"{FULLNAME}-migrate")]
    # Created before the Job (lower weight), kept until the next upgrade replaces it.
    assert int(sa_hook["helm.sh/hook-weight"]) < 0
    assert sa_hook["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert sa_hook["iam.gke.io/gcp-service-account"] == (
        "opsml-server@my-project.iam.gserviceaccount.com"
    )
    assert _job_pod(rendered)["serviceAccountName"] == f"{FULLNAME}-migrate"
    # The release's own ServiceAccount is an ordinary resource, never recreated by a hook.
    assert HOOK not in rendered.one("ServiceAccount", FULLNAME)["metadata"].get("annotations", {})
    # Existing database Secret: no hook copy of it.
    assert ("Secret", f"{FULLNAME}-migrate") not in hooks


def test_hook_job_reads_a_hook_copy_of_a_chart_made_secret(render: RenderFactory) -> None:
    rendered = render(
        "minimal", {"database": {"existingSecret": "", "trackingUri": "postgresql://u:p@db/opsml"}}
    )
    hooks = _hooks(rendered)
    secret_hook = hooks[("Secret", f"{FULLNAME}-migrate")]
    assert int(secret_hook["helm.sh/hook-weight"]) < 0
    copy = rendered.one("Secret", f"{FULLNAME}-migrate")
    assert base64.b64decode(copy["data"]["OPSML_TRACKING_URI"]) == b"postgresql://u:p@db/opsml"
    ref = env_of(containers(_job_pod(rendered))["migrate"])["OPSML_TRACKING_URI"]
    assert ref["valueFrom"]["secretKeyRef"]["name"] == f"{FULLNAME}-migrate"
    # The server itself reads the release Secret.
    server = containers(rendered.deployment["spec"]["template"]["spec"])["server"]
    assert env_of(server)["OPSML_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["name"] == FULLNAME


def test_plain_job_mode_has_no_hooks(render: RenderFactory) -> None:
    rendered = render("aws")
    assert _hooks(rendered) == {}
    job = rendered.migration_job
    name = job["metadata"]["name"]
    assert name.startswith(f"{FULLNAME}-migrate-")
    suffix = name.removeprefix(f"{FULLNAME}-migrate-")
    assert len(suffix) == 10 and all(c in "0123456789abcdef" for c in suffix)
    assert len(name) <= 63
    # Without hooks the release's own ServiceAccount and Secret exist alongside the Job.
    assert _job_pod(rendered)["serviceAccountName"] == FULLNAME


def test_plain_job_name_follows_its_config(render: RenderFactory) -> None:
    def name(overrides: dict[str, Any]) -> str:
        base = {"migrations": {"useHelmHooks": False}}
        rendered = render("minimal", {**overrides, **base})
        job_name: str = rendered.migration_job["metadata"]["name"]
        return job_name

    base = name({})
    assert name({}) == base  # deterministic
    assert name({"image": {"tag": "9.9.9"}}) != base
    assert name({"database": {"existingSecret": "other-db"}}) != base
    assert name({"extraEnv": [{"name": "X", "value": "1"}]}) != base
    # Settings the migration does not read leave the Job alone (no re-run).
    assert name({"replicaCount": 7}) == base
    assert name({"database": {"poolSize": 3}}) == base
    assert (
        name(
            {
                "ingress": {
                    "enabled": True,
                    "hosts": [
                        {"host": "a.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
                    ],
                }
            }
        )
        == base
    )


def test_plain_job_ttl_only_when_asked(render: RenderFactory) -> None:
    assert "ttlSecondsAfterFinished" not in render("aws").migration_job["spec"]
    assert render("full").migration_job["spec"]["ttlSecondsAfterFinished"] == 3600


def test_migrations_can_be_turned_off(render: RenderFactory) -> None:
    rendered = render("minimal", {"migrations": {"enabled": False}})
    assert rendered.all("Job") == []
    assert _hooks(rendered) == {}


def test_native_proxy_in_the_job_stops_by_itself(render: RenderFactory) -> None:
    pod = _job_pod(render("gcp"))
    proxy = containers(pod, init=True)["cloud-sql-proxy"]
    assert proxy["restartPolicy"] == "Always"
    assert containers(pod)["migrate"]["command"] == ["opsml-server", "migrate"]


def test_plain_proxy_in_the_job_is_stopped_by_the_wrapper(render: RenderFactory) -> None:
    pod = _job_pod(render("full"))
    assert "initContainers" not in pod
    proxy = containers(pod)["cloud-sql-proxy"]
    assert "--quitquitquit" in proxy["args"]
    assert "--admin-port=9091" in proxy["args"]
    command = containers(pod)["migrate"]["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2]
    compile(script, "<migrate-wrapper>", "exec")
    assert '"opsml-server", "migrate"' in script
    assert "127.0.0.1:9091/quitquitquit" in script
    assert "sys.exit(rc)" in script


@pytest.mark.parametrize("scenario", ["minimal", "gcp", "aws", "azure", "full"])
def test_migration_pod_has_no_secret_it_does_not_need(render: RenderFactory, scenario: str) -> None:
    env = env_of(containers(_job_pod(render(scenario)))["migrate"])
    assert {"OPSML_USERNAME", "OPSML_PASSWORD", "OPSML_PROD_TOKEN"}.isdisjoint(env)
