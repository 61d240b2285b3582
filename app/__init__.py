"""opsml-server: an OpsML 2.x-compatible registry server."""
