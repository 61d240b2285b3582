"""Pulumi entry point of the aws project; the program lives in opsml_infra.programs.aws."""

import sys
from pathlib import Path

# The shared components live one directory up (infra/opsml_infra), outside this project dir.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
from opsml_infra.programs import aws as program

for key, value in program.run().items():
    pulumi.export(key, value)
