"""HTTP handlers, one module per resource family; each stays thin (parse, call, serialise)."""
