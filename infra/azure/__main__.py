"""Pulumi entry point of the azure project; the program lives in opsml_infra.programs.azure."""

import sys
from pathlib import Path

# The shared components live one directory up (infra/opsml_infra), outside this project dir.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
from opsml_infra.programs import azure as program

for key, value in program.run().items():
    pulumi.export(key, value)
