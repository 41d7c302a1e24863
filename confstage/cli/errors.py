"""The CLI's exit statuses, its expected-failure exceptions (one line on stderr, no traceback), and the hints
that turn the common AWS failures into what to do about them."""

from __future__ import annotations

import click

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "Failed", "UsageFailed", "failure", "hint"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class Failed(click.ClickException):
    """An expected failure: one line on stderr and exit status 1."""

    exit_code = EXIT_FAILED


class UsageFailed(Failed):
    """A request that cannot work as given (bad source URL, no stage, no region): exit status 2."""

    exit_code = EXIT_USAGE


# botocore exceptions (by name) and AWS error codes -> (what to do, exit status).
_NO_REGION = ("no AWS region: pass --region REGION or set AWS_REGION", EXIT_USAGE)
_NO_CREDENTIALS = ("no AWS credentials: pass --profile NAME or set AWS_PROFILE (or AWS_ACCESS_KEY_ID)", EXIT_USAGE)
_BAD_CREDENTIALS = (
    "the AWS credentials are expired or invalid: refresh them (aws sso login, new keys) or pass --profile NAME",
    EXIT_FAILED,
)
_HINTS: dict[str, tuple[str, int]] = {
    "NoRegionError": _NO_REGION,
    "NoCredentialsError": _NO_CREDENTIALS,
    "PartialCredentialsError": _NO_CREDENTIALS,
    "ProfileNotFound": (
        "no such AWS profile: check --profile or AWS_PROFILE (aws configure list-profiles)",
        EXIT_USAGE,
    ),
    **dict.fromkeys(
        (
            "ExpiredToken",
            "ExpiredTokenException",
            "RequestExpired",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "InvalidSignatureException",
            "AuthFailure",
            "TokenRefreshRequired",
            "TokenRetrievalError",
            "SSOTokenLoadError",
            "UnauthorizedSSOTokenError",
            "CredentialRetrievalError",
        ),
        _BAD_CREDENTIALS,
    ),
}
# A missing resource, by service: what creates it.
_MISSING: dict[tuple[str, str], str] = {
    ("dynamodb", "ResourceNotFoundException"): "the table does not exist: confstage init creates it",
    ("s3", "NoSuchBucket"): "the bucket does not exist: confstage init creates it (versioned)",
    ("secretsmanager", "ResourceNotFoundException"): "the secret does not exist: confstage put creates it",
}


def hint(exc: BaseException) -> tuple[str, int] | None:
    """What to do about ``exc`` (no region, bad credentials, a missing table, bucket or secret), and the exit
    status; None when it is none of these. Reads the chain of causes: names and codes, never a message."""
    from confstage.transport import AwsError

    operation = str(getattr(exc, "operation", "") or "")
    seen: BaseException | None = exc
    while seen is not None:
        names = [type(seen).__name__]
        if isinstance(seen, AwsError):
            names.append(seen.code)
            operation = operation or seen.operation
        else:
            names.append(str(seen).partition(":")[0])  # a NetworkError names the botocore exception first
        for name in names:
            if name in _HINTS:
                return _HINTS[name]
            missing = _MISSING.get((operation.partition(":")[0], name))
            if missing is not None:
                return missing, EXIT_FAILED
        seen = seen.__cause__
    return None


def failure(exc: BaseException, text: str | None = None) -> Failed:
    """The one-line failure for ``exc`` (its message, or ``text``), led by its hint when it has one."""
    found = hint(exc)
    text = str(exc) if text is None else text
    if found is None:
        return Failed(text)
    advice, status = found
    return (UsageFailed if status == EXIT_USAGE else Failed)(f"{advice} ({text})")
