"""Which transport the runtime's reads use: ``CONFSTAGE_TRANSPORT=auto|botocore|lite`` (CONTRACT §7).

``auto`` (the default) picks ``lite`` only inside Lambda, with the credentials and the region in the
environment, and when nothing is configured that only botocore honours::

    outside Lambda (AWS_LAMBDA_FUNCTION_NAME unset)          → botocore
    no AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, and no
      container credentials endpoint (SnapStart, ECS)        → botocore (its chain finds other credentials)
    no key variables, AWS_WEB_IDENTITY_TOKEN_FILE + ROLE_ARN → botocore (web identity comes before containers)
    a container endpoint over http to another host           → botocore (which refuses it too)
    no AWS_REGION / AWS_DEFAULT_REGION                       → botocore
    a profile (AWS_PROFILE, AWS_DEFAULT_PROFILE)             → botocore (profiles, SSO, assume-role)
    shared config files (AWS_CONFIG_FILE, ~/.aws/config, …)  → botocore (settings lite does not read)
    FIPS or dual-stack endpoints                             → botocore
    a custom CA bundle (AWS_CA_BUNDLE, REQUESTS_CA_BUNDLE)   → botocore
    an HTTP(S) proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)     → botocore
    AWS_ACCOUNT_ID (account-based DynamoDB endpoints)        → botocore
    an S3 directory bucket or Outposts alias in the sources  → botocore (S3 Express, s3-outposts)
    otherwise                                                → lite

Credentials are botocore's first two providers: the key variables, else the container credentials endpoint
(``AWS_CONTAINER_CREDENTIALS_FULL_URI`` or ``_RELATIVE_URI``, see ``container.py``). ``lite`` forced is refused
with ``ConfigurationError`` when it cannot do what was asked (neither kind of credentials, a container endpoint
on a host botocore refuses, no region, FIPS, dual-stack, a proxy); a CA bundle is honoured. The admin CLI and every
write keep botocore whatever this says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import NamedTuple

from confstage.errors import ConfigurationError

from .sigv4 import Credentials

__all__ = [
    "CHOICES",
    "Choice",
    "choose",
    "credentials_blocker",
    "environment_credentials",
    "environment_region",
    "lite_blocker",
]

CHOICES = ("auto", "botocore", "lite")
_PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class Choice(NamedTuple):
    """The transport to use (``"lite"`` or ``"botocore"``) and why, for logs and tests."""

    name: str
    reason: str


def environment_credentials(environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, or None."""
    env = os.environ if environ is None else environ
    access_key, secret_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    return Credentials(access_key, secret_key, env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN"))


def environment_region(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_DEFAULT_REGION``, else ``AWS_REGION`` (the order ``confstage.aws`` gives botocore), or None."""
    env = os.environ if environ is None else environ
    return env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None


def _true(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() == "true"


def credentials_blocker(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the lite transport has no credentials to sign with here, or None: the key variables, else (as
    botocore's chain, once a web identity is ruled out) a container endpoint on a host botocore allows."""
    env = os.environ if environ is None else environ
    if environment_credentials(env) is not None:
        return None
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN ask for assume-role-with-web-identity"
    from .container import container_uri, uri_problem

    uri = container_uri(env)
    if uri is None:
        return (
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set, "
            "nor AWS_CONTAINER_CREDENTIALS_FULL_URI or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
        )
    return uri_problem(uri)


def lite_blocker(environ: Mapping[str, str] | None = None) -> str | None:
    """Why the lite transport cannot serve this environment at all, or None."""
    env = os.environ if environ is None else environ
    problem = credentials_blocker(env)
    if problem is not None:
        return problem
    if environment_region(env) is None:
        return "neither AWS_REGION nor AWS_DEFAULT_REGION is set"
    for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
        if _true(env, name):
            return f"{name}=true asks for endpoints it does not resolve"
    for name in _PROXIES:
        if env.get(name):
            return f"{name} asks for a proxy it does not speak"
    return None


def _profile(env: Mapping[str, str]) -> str | None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        if env.get(name):
            return f"{name} selects a profile"
    return None


def _config_files(env: Mapping[str, str]) -> str | None:
    home = env.get("HOME") or os.path.expanduser("~")
    for name, default in (("AWS_CONFIG_FILE", "config"), ("AWS_SHARED_CREDENTIALS_FILE", "credentials")):
        if env.get(name):
            return f"{name} names a shared config file"
        if os.path.exists(os.path.join(home, ".aws", default)):
            return f"~/.aws/{default} exists"
    return None


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        if env.get(name):
            return f"{name} sets a custom CA bundle"
    return None


def _account_endpoints(env: Mapping[str, str]) -> str | None:
    if env.get("AWS_ACCOUNT_ID") and env.get("AWS_ACCOUNT_ID_ENDPOINT_MODE", "").lower() != "disabled":
        return "AWS_ACCOUNT_ID asks for account-based DynamoDB endpoints"
    return None


def _special_buckets(env: Mapping[str, str]) -> str | None:
    from .protocols import SPECIAL_BUCKET_SUFFIXES

    for url in env.get("CONFSTAGE_SOURCES", "").replace(",", " ").split():
        if url.startswith("s3://") and url[5:].split("/", 1)[0].split("?", 1)[0].endswith(SPECIAL_BUCKET_SUFFIXES):
            return "an S3 directory bucket or Outposts alias in CONFSTAGE_SOURCES needs botocore"
    return None


_AUTO_CHECKS: tuple[Callable[[Mapping[str, str]], str | None], ...] = (
    lite_blocker,
    _profile,
    _config_files,
    _ca_bundle,
    _account_endpoints,
    _special_buckets,
)


def choose(environ: Mapping[str, str] | None = None) -> Choice:
    """The transport ``CONFSTAGE_TRANSPORT`` and the environment call for; ``ConfigurationError`` when impossible."""
    env = os.environ if environ is None else environ
    wanted = (env.get("CONFSTAGE_TRANSPORT") or "auto").strip().lower()
    if wanted not in CHOICES:
        raise ConfigurationError(
            f"CONFSTAGE_TRANSPORT must be one of {', '.join(CHOICES)}, got {env.get('CONFSTAGE_TRANSPORT')!r}"
        )
    if wanted == "botocore":
        return Choice("botocore", "CONFSTAGE_TRANSPORT=botocore")
    if wanted == "lite":
        problem = lite_blocker(env)
        if problem is not None:
            raise ConfigurationError(f"CONFSTAGE_TRANSPORT=lite, but {problem}; use auto or botocore")
        return Choice("lite", "CONFSTAGE_TRANSPORT=lite")
    if not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Choice("botocore", "outside Lambda (AWS_LAMBDA_FUNCTION_NAME is not set)")
    for check in _AUTO_CHECKS:
        reason = check(env)
        if reason is not None:
            return Choice("botocore", reason)
    if environment_credentials(env) is None:
        return Choice("lite", "inside Lambda, container credentials and a region, nothing needs botocore")
    return Choice("lite", "inside Lambda, credentials and region in the environment, nothing needs botocore")
