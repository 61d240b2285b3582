"""The generated database password shared by the three clouds."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def database_password(name: str, opts: pulumi.ResourceOptions) -> random.RandomPassword:
    """32 characters with every class present (Azure demands three of four classes).

    The specials are URL-unreserved and allowed by RDS (which rejects / @ " and space), so the
    URI stays readable; it is quoted anyway. `result` is a secret output of pulumi-random.
    """
    return random.RandomPassword(
        name,
        length=32,
        special=True,
        override_special="-_.~",
        min_lower=1,
        min_upper=1,
        min_numeric=1,
        min_special=1,
        opts=opts,
    )
