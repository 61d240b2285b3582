"""The OPSML_TRACKING_URI the server reads, built from the created database."""

from __future__ import annotations

from urllib.parse import quote

import pulumi

POSTGRES_PORT = 5432


def format_tracking_uri(
    user: str, password: str, host: str, database: str, port: int = POSTGRES_PORT
) -> str:
    """`postgresql+pg8000://user:pass@host:port/db`, user and password URL-quoted.

    Quoting matters: generated passwords may hold characters that end the userinfo part.
    """
    return (
        f"postgresql+pg8000://{quote(user, safe='')}:{quote(password, safe='')}"
        f"@{host}:{port}/{quote(database, safe='')}"
    )


def tracking_uri(
    user: pulumi.Input[str],
    password: pulumi.Input[str],
    host: pulumi.Input[str],
    database: pulumi.Input[str],
    port: int = POSTGRES_PORT,
) -> pulumi.Output[str]:
    """The tracking URI as a secret Output, whatever the secrecy of its parts."""
    uri = pulumi.Output.all(user, password, host, database).apply(
        lambda parts: format_tracking_uri(parts[0], parts[1], parts[2], parts[3], port)
    )
    # Explicit: the URI embeds the password, so it must never reach state in plain text.
    return pulumi.Output.secret(uri)


def storage_uri(scheme: str, bucket: str, prefix: str) -> str:
    """`scheme://bucket[/prefix]`, the OPSML_STORAGE_URI form the server parses."""
    prefix = prefix.strip("/")
    return f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"
