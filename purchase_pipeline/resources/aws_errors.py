"""AWS errors as domain errors that carry the service's own message.

boto3 raises `ClientError`s whose text buries the code and the message the service sent;
callers want one line naming what failed (the key, the table, the query) and why.
"""

from botocore.exceptions import BotoCoreError, ClientError


def describe_aws_error(exc: Exception) -> str:
    """`Code: message` from the service for a ClientError, else the error's own text."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message") or exc.response.get("message") or str(exc)
        return f"{code}: {message}"
    if isinstance(exc, BotoCoreError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def error_code(exc: Exception) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
