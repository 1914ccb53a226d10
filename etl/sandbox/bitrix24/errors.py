"""The portal's error envelope: `{"error": CODE, "error_description": TEXT[, extra]}` (reference §1.4, §3)."""
from __future__ import annotations

from typing import Any


class RestError(Exception):
    """A method failure as the portal reports it. Legacy CRM errors have an empty code and HTTP 400."""

    def __init__(self, description: str, code: str = "", status: int = 400, **extra: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra

    def payload(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


def crm_error(description: str) -> RestError:
    """`throw new RestException($msg)` in the CRM module: empty code, 400."""
    return RestError(description)


def core_error(description: str) -> RestError:
    """A CApplicationException surfaced by RestException::setApplicationException: ERROR_CORE, 400."""
    return RestError(description, "ERROR_CORE")


QUERY_LIMIT_EXCEEDED = RestError("Too many requests", "QUERY_LIMIT_EXCEEDED", 503)
OPERATION_TIME_LIMIT = RestError("Method is blocked due to operation time limit.", "OPERATION_TIME_LIMIT", 429)
INVALID_CREDENTIALS = RestError("Invalid request credentials", "INVALID_CREDENTIALS", 401)
NO_AUTH_FOUND = RestError("Wrong authorization data", "NO_AUTH_FOUND", 401)
INVALID_TOKEN = RestError("The access token provided is invalid.", "invalid_token", 401)
METHOD_NOT_FOUND = RestError("Method not found!", "ERROR_METHOD_NOT_FOUND", 404)
INTERNAL_SERVER_ERROR = RestError("Internal server error", "INTERNAL_SERVER_ERROR", 500)
BATCH_LENGTH_EXCEEDED = RestError("Max batch length exceeded", "ERROR_BATCH_LENGTH_EXCEEDED", 400)
BATCH_METHOD_NOT_ALLOWED = RestError("Method is not allowed for batch usage", "ERROR_BATCH_METHOD_NOT_ALLOWED", 405)
