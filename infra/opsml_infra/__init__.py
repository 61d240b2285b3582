"""Pulumi components that give a platform engineer a running, wired OpsML server.

Layout: one module per cloud (`gcp`, `aws`, `azure`) holding that cloud's Database, Bucket and
Identity components; `app` installs the project's Helm chart; `chart_values` is the plain
function that turns the created resources into chart values (testable without Pulumi);
`programs/` holds the thin per-cloud programs that read `pulumi.Config` once.

Each cloud module imports only its own provider package, so a stack needs only the provider of
its cloud installed.
"""
