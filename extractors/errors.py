"""The error every source raises when it cannot be read."""
from __future__ import annotations


class SourceError(Exception):
    """A source cannot be read (unreachable, refused, broken mid-stream, damaged).

    The message names the source (host/db or file) and the fix, and never a password.
    """


class SourceUnavailable(SourceError):
    """The source's server went away mid-read and did not come back within the reconnect attempts:
    the run stops as "unreachable" (exit 3), not as a damaged source; a rerun finishes the job."""
