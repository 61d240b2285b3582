"""The OpsML server on Kubernetes: the project's own Helm chart, wired to the cloud resources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .chart_values import (
    TRACKING_SECRET_KEY,
    ChartWiring,
    Cloud,
    build_chart_values,
    service_host,
)


@dataclass
class AppArgs:
    """Where and how to install the chart; the cloud fields come from the other components."""

    kubeconfig: pulumi.Input[str]
    cloud: Cloud
    tracking_uri: pulumi.Input[str]
    storage_uri: pulumi.Input[str]
    chart_path: str
    namespace: str = "opsml"
    create_namespace: bool = True
    release_name: str = "opsml-server"
    service_account_name: str = "opsml-server"
    pool_size: int = 10
    max_overflow: int = 5
    gcp_service_account: pulumi.Input[str] = ""
    aws_role_arn: pulumi.Input[str] = ""
    aws_region: pulumi.Input[str] = ""
    azure_client_id: pulumi.Input[str] = ""
    azure_tenant_id: pulumi.Input[str] = ""
    azure_storage_account_name: pulumi.Input[str] = ""
    image_repository: str = ""
    image_tag: str = ""
    replica_count: int | None = None
    # Seconds Helm waits for the migration Job and the Deployment to become ready.
    timeout_seconds: int = 900


class App(pulumi.ComponentResource):
    """Kubernetes provider, namespace, tracking-URI Secret and the Helm release."""

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:app:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Explicit provider: never the ambient kubeconfig of whoever runs `pulumi up`.
        self.provider: k8s.Provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=args.kubeconfig,
            opts=child,
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)

        depends: list[pulumi.Resource] = []
        if args.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace),
                opts=k8s_opts,
            )
            depends.append(ns)
            namespace: pulumi.Output[str] = ns.metadata.apply(lambda m: m.name or args.namespace)
        else:
            namespace = pulumi.Output.from_input(args.namespace)

        # The whole URI in one Secret key, as the chart expects (database.existingSecret); the
        # chart values never hold the password.
        self.secret: k8s.core.v1.Secret = k8s.core.v1.Secret(
            f"{name}-tracking",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{args.release_name}-tracking",
                namespace=namespace,
                labels={"app.kubernetes.io/part-of": "opsml-server"},
            ),
            type="Opaque",
            string_data={TRACKING_SECRET_KEY: pulumi.Output.secret(args.tracking_uri)},
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=depends)),
        )
        secret_name = self.secret.metadata.apply(lambda m: m.name or "")

        def _values(resolved: dict[str, Any]) -> dict[str, Any]:
            return build_chart_values(
                ChartWiring(
                    cloud=args.cloud,
                    release_name=args.release_name,
                    service_account_name=args.service_account_name,
                    storage_uri=resolved["storage_uri"],
                    tracking_secret_name=resolved["secret_name"],
                    pool_size=args.pool_size,
                    max_overflow=args.max_overflow,
                    gcp_service_account=resolved["gcp_service_account"],
                    aws_role_arn=resolved["aws_role_arn"],
                    aws_region=resolved["aws_region"],
                    azure_client_id=resolved["azure_client_id"],
                    azure_tenant_id=resolved["azure_tenant_id"],
                    azure_storage_account_name=resolved["azure_storage_account_name"],
                    image_repository=args.image_repository,
                    image_tag=args.image_tag,
                    replica_count=args.replica_count,
                )
            )

        self.values: pulumi.Output[dict[str, Any]] = pulumi.Output.all(
            storage_uri=args.storage_uri,
            secret_name=secret_name,
            gcp_service_account=args.gcp_service_account,
            aws_role_arn=args.aws_role_arn,
            aws_region=args.aws_region,
            azure_client_id=args.azure_client_id,
            azure_tenant_id=args.azure_tenant_id,
            azure_storage_account_name=args.azure_storage_account_name,
        ).apply(_values)

        # helm.v3.Release rather than Chart v4: Helm itself owns upgrades and rollbacks, and
        # `atomic` undoes a release whose pods never become ready.
        self.release: k8s.helm.v3.Release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name=args.release_name,
                chart=args.chart_path,
                namespace=namespace,
                values=self.values,
                wait_for_jobs=True,
                atomic=True,
                cleanup_on_fail=True,
                timeout=args.timeout_seconds,
            ),
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=[self.secret, *depends])
            ),
        )

        self.namespace: pulumi.Output[str] = self.release.namespace.apply(
            lambda ns: ns or args.namespace
        )
        self.service_name: pulumi.Output[str] = pulumi.Output.from_input(args.release_name)
        self.url: pulumi.Output[str] = self.namespace.apply(
            lambda ns: f"http://{service_host(args.release_name, ns)}"
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_name": self.service_name,
                "url": self.url,
                "values": self.values,
            }
        )
