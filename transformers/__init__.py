"""Per-shop mapping of raw records to Company / Contact DTOs, and the shared cleaning helpers."""
