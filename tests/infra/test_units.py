"""Plain functions of infra/ (no cloud SDK needed), and the harness's own failure path."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pulumi
import pytest
from opsml_infra.chart_values import ChartWiring, build_chart_values
from opsml_infra.uris import format_tracking_uri, storage_uri, tracking_uri

from .harness import run_program


def test_tracking_uri_quotes_user_and_password() -> None:
    uri = format_tracking_uri("ops@ml", "p@ss:w/rd?#%", "10.0.0.5", "opsml")
    parts = urlsplit(uri)
    assert parts.scheme == "postgresql+pg8000"
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == (
        "ops@ml",
        "p@ss:w/rd?#%",
    )
    assert (parts.hostname, parts.port, parts.path) == ("10.0.0.5", 5432, "/opsml")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("opsml", "gs://b/opsml"), ("/a/b/", "gs://b/a/b"), ("", "gs://b")],
)
def test_storage_uri(prefix: str, expected: str) -> None:
    assert storage_uri("gs", "b", prefix) == expected


def _wiring(**overrides: object) -> ChartWiring:
    base: dict[str, object] = {
        "cloud": "aws",
        "release_name": "r",
        "service_account_name": "sa",
        "storage_uri": "s3://b/p",
        "tracking_secret_name": "r-tracking",
        "aws_role_arn": "arn:aws:iam::1:role/r",
        "aws_region": "eu-west-1",
    }
    return ChartWiring(**(base | overrides))  # type: ignore[arg-type]


def test_values_builder_refuses_missing_cloud_identity() -> None:
    with pytest.raises(ValueError, match="aws_role_arn"):
        build_chart_values(_wiring(aws_role_arn=""))
    with pytest.raises(ValueError, match="gcp_service_account"):
        build_chart_values(_wiring(cloud="gcp"))
    with pytest.raises(ValueError, match="unknown cloud"):
        build_chart_values(_wiring(cloud="ibm"))


def test_values_builder_output_is_plain_json_without_secrets() -> None:
    values = build_chart_values(_wiring(image_tag="1.2.3"))
    assert json.loads(json.dumps(values)) == values
    assert values["image"] == {"tag": "1.2.3"}
    assert "trackingUri" not in values["database"]


def test_aws_oidc_issuer_from_arn() -> None:
    from opsml_infra.aws import oidc_issuer_host

    arn = "arn:aws:iam::1:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/X"
    assert oidc_issuer_host(arn) == "oidc.eks.eu-west-1.amazonaws.com/id/X"
    with pytest.raises(ValueError):
        oidc_issuer_host("arn:aws:iam::1:role/x")


def test_azure_role_definition_id_from_scope() -> None:
    from opsml_infra.azure import role_definition_id

    scope = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"
    assert role_definition_id(scope, "guid") == (
        "/subscriptions/sub/providers/Microsoft.Authorization/roleDefinitions/guid"
    )
    with pytest.raises(ValueError):
        role_definition_id("/resourceGroups/rg", "guid")


def test_tracking_uri_output_is_secret_even_from_plain_parts() -> None:
    run = run_program("unit", {}, lambda: {"uri": tracking_uri("u", "p", "h", "d")}, ())
    assert run.outputs["uri"].secret
    assert run.outputs["uri"].value == "postgresql+pg8000://u:p@h:5432/d"


def test_a_failing_check_inside_the_program_fails_the_run() -> None:
    # Guards the known trap: an error raised inside an apply must surface, not vanish.
    def program() -> dict[str, object]:
        def boom(_: str) -> str:
            raise AssertionError("raised inside apply")

        return {"x": pulumi.Output.from_input("v").apply(boom)}

    with pytest.raises(AssertionError, match="raised inside apply"):
        run_program("unit", {}, program, ())


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_project_entry_point_runs(cloud: str) -> None:
    # The file `pulumi up` executes: finds opsml_infra from its own directory and exports.
    import runpy

    from .stacks import CONFIGS, INFRA_DIR

    def program() -> dict[str, object]:
        runpy.run_path(str(INFRA_DIR / cloud / "__main__.py"), run_name="__main__")
        return {}

    run = run_program(f"opsml-server-{cloud}", CONFIGS[cloud], program)
    assert run.one("kubernetes:helm.sh/v3:Release")
    assert {r.type for r in run.resources if r.type.startswith("opsml:")} == {
        f"opsml:{cloud}:Database",
        f"opsml:{cloud}:Bucket",
        f"opsml:{cloud}:Identity",
        "opsml:app:App",
    }


@pytest.mark.parametrize("cloud", ["gcp", "aws", "azure"])
def test_every_config_key_read_is_declared(cloud: str) -> None:
    # A key the program reads but Pulumi.yaml does not declare would be undocumented.
    import re

    import yaml

    from .stacks import INFRA_DIR

    declared = set(yaml.safe_load((INFRA_DIR / cloud / "Pulumi.yaml").read_text())["config"])
    sources = [
        INFRA_DIR / "opsml_infra" / "programs" / "common.py",
        INFRA_DIR / "opsml_infra" / "programs" / f"{cloud}.py",
    ]
    read = {
        m for path in sources for m in re.findall(r"config\.\w+\(\s*\"(\w+)\"", path.read_text())
    }
    assert read, "no config reads found"
    assert read <= declared, f"undeclared keys: {sorted(read - declared)}"
    assert declared <= read, f"declared but unused keys: {sorted(declared - read)}"
    for key, spec in yaml.safe_load((INFRA_DIR / cloud / "Pulumi.yaml").read_text())[
        "config"
    ].items():
        assert spec.get("description"), f"{cloud}/Pulumi.yaml: {key} has no description"
