"""Run a Pulumi program under mocks and hand back what it registered, fully resolved.

Why not asserts inside `apply`: a callback that never runs (an unknown value, a mistyped
output) passes silently. Here every output is awaited inside `pulumi.runtime.test`, stored,
and asserted afterwards in plain code; a value that never resolved is simply missing and fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
TENANT = "00000000-0000-0000-0000-0000000000aa"
ACCOUNT = "123456789012"
PASSWORD = "Mock-Pass_word.With~Specials9"  # what the mocked RandomPassword resolves to


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]  # camelCase, as the engine receives them; secrets unwrapped
    state: dict[str, Any]  # inputs plus the mocked provider outputs


@dataclass(frozen=True)
class Resolved:
    value: Any
    secret: bool


def _azure_id(args: MockResourceArgs) -> str:
    rg = args.inputs.get("resourceGroupName", "rg")
    base = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers"
    kind = {
        "azure-native:dbforpostgresql:Server": "Microsoft.DBforPostgreSQL/flexibleServers",
        "azure-native:storage:StorageAccount": "Microsoft.Storage/storageAccounts",
        "azure-native:managedidentity:UserAssignedIdentity": (
            "Microsoft.ManagedIdentity/userAssignedIdentities"
        ),
    }.get(args.typ, "Microsoft.Mock/things")
    return f"{base}/{kind}/{args.inputs.get('accountName') or args.name}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, add the few computed outputs the programs read."""

    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        state: dict[str, Any] = {"name": args.name, **args.inputs}
        rid = f"{args.name}-id"
        inputs = args.inputs
        match args.typ:
            case "random:index/randomPassword:RandomPassword":
                state["result"] = PASSWORD
            case "random:index/randomString:RandomString":
                state["result"] = "abc123def456"
            case "gcp:sql/databaseInstance:DatabaseInstance":
                state |= {
                    "privateIpAddress": "10.20.0.3",
                    "connectionName": f"my-project:europe-west1:{args.name}",
                }
            case "gcp:storage/bucket:Bucket":
                state["name"] = f"{args.name}-a1b2c3"
            case "gcp:serviceaccount/account:Account":
                email = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
                state |= {
                    "email": email,
                    "name": f"projects/{inputs['project']}/serviceAccounts/{email}",
                }
            case "aws:rds/instance:Instance":
                state |= {
                    "address": "opsml-db.abcdefgh.eu-west-1.rds.amazonaws.com",
                    "identifier": f"{args.name}-0001",
                }
            case "aws:s3/bucket:Bucket":
                bucket = f"{args.name}-0a1b2c"
                state |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
                rid = bucket
            case "aws:ec2/securityGroup:SecurityGroup":
                rid = "sg-0db0000000000001"
            case "aws:iam/role:Role":
                state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.name}-7f7f"
                rid = f"{args.name}-7f7f"
            case "azure-native:dbforpostgresql:Server":
                rid = _azure_id(args)
                fqdn = f"{args.name}.private.postgres.database.azure.com"
                state["fullyQualifiedDomainName"] = fqdn
            case "azure-native:storage:StorageAccount":
                rid = _azure_id(args)
                state["name"] = inputs["accountName"]
            case "azure-native:storage:BlobContainer":
                account = f"{_azure_id(args).rsplit('/', 2)[0]}/{inputs['accountName']}"
                account = account.replace(
                    "Microsoft.Mock/things", "Microsoft.Storage/storageAccounts"
                )
                rid = f"{account}/blobServices/default/containers/{inputs['containerName']}"
                state["name"] = inputs["containerName"]
            case "azure-native:dbforpostgresql:Database":
                state["name"] = inputs["databaseName"]
            case "azure-native:managedidentity:UserAssignedIdentity":
                rid = _azure_id(args)
                state |= {
                    "clientId": "11111111-2222-3333-4444-555555555555",
                    "principalId": "99999999-8888-7777-6666-555555555555",
                    "tenantId": TENANT,
                }
        return rid, state


@dataclass
class Run:
    resources: list[Registered]
    outputs: dict[str, Resolved]
    extra: dict[str, Resolved]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.urn for r in found]}"
        return found[0]

    def named(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, got {found}"
        return found[0]


def run_program(
    project: str,
    config: Mapping[str, Any],
    program: Callable[[], Mapping[str, Any]],
    secret_keys: tuple[str, ...] = ("kubeconfig",),
    extra: Callable[[], Mapping[str, Any]] | None = None,
) -> Run:
    """Run `program` (which returns its stack outputs) under fresh mocks and config.

    `extra`, if given, is called after the program (inside the same run) and its Outputs are
    resolved too: the tests use it to reach component attributes.
    """
    mocks = RecordingMocks()
    monitor = MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack="test", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {f"{project}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        [f"{project}:{k}" for k in secret_keys],
    )
    resolved: dict[str, Resolved] = {}
    resolved_extra: dict[str, Resolved] = {}

    async def collect(outputs: Mapping[str, Any], into: dict[str, Resolved]) -> None:
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            into[key] = Resolved(await out.future(), await out.is_secret())

    async def body() -> None:
        await collect(program(), resolved)
        if extra is not None:
            await collect(extra(), resolved_extra)

    @pulumi.runtime.test
    def go() -> Any:
        return body()

    go()
    resources = []
    for urn, reg in monitor.get_registered_resources().items():
        typ = urn.split("::")[2].split("$")[-1]
        name = urn.split("::")[-1]
        resources.append(
            Registered(urn, typ, name, reg.id, mocks.inputs.get((typ, name), {}), reg.state)
        )
    return Run(resources, resolved, resolved_extra)


def dig(data: Any, *path: str | int) -> Any:
    """data[path0][path1]... or None when any step is missing."""
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def walk_strings(data: Any) -> list[str]:
    """Every string anywhere inside nested dicts/lists (for 0.0.0.0/0 and password scans)."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, Mapping):
        return [s for v in data.values() for s in walk_strings(v)]
    if isinstance(data, list | tuple):
        return [s for v in data for s in walk_strings(v)]
    return []


def is_secret_input(value: Any) -> bool:
    """True when the engine received `value` wrapped as a secret."""
    from pulumi.runtime import rpc

    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret_input(value) else value
