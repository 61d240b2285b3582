"""HTTP routes, one module per resource; no logic beyond translating to services."""
