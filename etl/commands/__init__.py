"""One module per CLI command (group); `etl.cli` only wires them together."""
