"""Offline identifier checks (inn) and the EGRUL registry gate (egrul)."""
