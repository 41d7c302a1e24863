"""``confstage demo``: the whole story on an embedded local AWS endpoint, no AWS account needed.

1. start a moto server on 127.0.0.1 (the ``demo`` extra) and point this process at it with fake
   credentials;
2. seed DEV and PRD values into every kind of source: env vars, a ``kms-env://`` ciphertext made
   as the Lambda console makes it, DynamoDB (one value envelope-encrypted), S3, SSM and Secrets
   Manager, all through their stores;
3. invoke ``examples/handler.py`` under the DEV and PRD aliases, twice each (cold, then warm);
4. print what each stage resolved, from which source, and how long each read took;
5. deploy an AppConfig profile to a DEV and a PRD environment of the AppConfigData emulator
   (``confstage.testing.AppConfigServer``: moto has no AppConfigData) and read it through ``appconfig://``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from confstage.cli.errors import Failed
from confstage.cli.lambda_kms import encrypt_for_lambda
from confstage.cli.options import ConfstageCommand, Settings
from confstage.cli.output import MASK, emit_json, message, table

__all__ = ["demo", "find_handler"]

FUNCTION = "helloStagedWorld"
ACCOUNT = "123456789012"
REGION = "us-east-1"
STAGES = ("DEV", "PRD")

TABLE = "dynamodb://confstage-demo"
BUCKET = "s3://confstage-demo-config/app"
SSM = "ssm:///confstage-demo"
SECRETS = "secretsmanager://confstage-demo"
KMS_ENV = "kms-env://?keys=api_key&template=SECRET_{STAGE}_{key}&fallback=false"
ENV = "env://?template=APP_{STAGE}_{key}&fallback=false"
CHAIN = (KMS_ENV, ENV, TABLE, BUCKET, SSM, SECRETS)
APPCONFIG = "appconfig://confstage-demo/settings"

# The AppConfig profile deployed to each stage's environment (``dev``, ``prd``: the template's default, lower case).
APPCONFIG_SEED: dict[str, dict[str, Any]] = {
    "DEV": {"banner": "Welcome to DEV", "max_items": 100, "maintenance": False, "limits": {"rps": 50}},
    "PRD": {"banner": "Welcome", "max_items": 25, "maintenance": False, "limits": {"rps": 500}},
}

# What each stage holds, by source; the handler reads every one of these keys.
SEED: dict[str, dict[str, str]] = {
    "DEV": {
        "greeting": "Hello from DEV",
        "api_key": "dev-api-key-0000",
        "db_url": "postgres://dev-db.internal:5432/app",
        "timeout_ms": "5000",
        "stripe_key": "sk_test_dev_4eC39HqLyjWDarjtT1zdp7dc",
        "feature_flags": '{"new_checkout": true, "dark_mode": true}',
        "log_level": "DEBUG",
        "db_password": "dev-password-not-secret",
    },
    "PRD": {
        "greeting": "Hello from PRD",
        "api_key": "prd-api-key-9f8e7d6c",
        "db_url": "postgres://prd-db.internal:5432/app",
        "timeout_ms": "1500",
        "stripe_key": "sk_live_51Hq8ZxLkN2pQ7rT0yW3vU",
        "feature_flags": '{"new_checkout": false, "dark_mode": true}',
        "log_level": "WARNING",
        "db_password": "prd-S3cure-P@ssw0rd!",
    },
}


def find_handler() -> Path:
    """``examples/handler.py``: from the source checkout, else the copy the wheel ships (``Failed`` when neither)."""
    import confstage

    package = Path(confstage.__file__).resolve().parent
    candidates = (package.parent / "examples" / "handler.py", package / "cli" / "example_handler.py")
    for path in candidates:
        if path.is_file():
            return path
    raise Failed(
        f"the demo runs the example handler, found neither at {candidates[0]} nor at {candidates[1]}; "
        "reinstall confstage or run `confstage demo` from a source checkout"
    )


def _load_handler(path: Path) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("confstage_demo_handler", path)
    if spec is None or spec.loader is None:
        raise Failed(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.lambda_handler
    return handler


@contextmanager
def _local_aws() -> Iterator[str]:
    """A moto server on 127.0.0.1 and this process pointed at it with fake credentials."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise Failed(
            "confstage demo needs moto: run make demo, or pip install -e '.[demo]' from a checkout of confstage"
        ) from None
    from confstage import aws

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on stderr
    saved = dict(os.environ)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name in list(os.environ):
            if name.startswith(("AWS_", "CONFSTAGE_")):
                del os.environ[name]
        os.environ.update(
            AWS_ACCESS_KEY_ID="demo",
            AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - fake credentials for the local endpoint
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=endpoint,
            AWS_LAMBDA_FUNCTION_NAME=FUNCTION,  # kms-env:// decrypts with this encryption context
        )
        aws.reset()
        yield endpoint
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


def _seed() -> None:
    """Write SEED into every source, each through its store."""
    from confstage.aws import Caller
    from confstage.stores import Store, build_store

    created = Caller("demo").call("kms:CreateKey", {"Description": "confstage demo"})
    kms_key: str = created["KeyMetadata"]["KeyId"]
    stores: dict[str, Store] = {}
    for url in (TABLE, BUCKET, SSM, SECRETS):
        store = build_store(url)
        assert store is not None
        store.init()
        stores[url] = store
    for stage, values in SEED.items():
        os.environ[f"APP_{stage}_greeting"] = values["greeting"]
        os.environ[f"SECRET_{stage}_api_key"] = encrypt_for_lambda(
            values["api_key"], kms_key=kms_key, function=FUNCTION
        )
        stores[TABLE].put_many(stage, {"db_url": values["db_url"], "timeout_ms": values["timeout_ms"]})
        stores[TABLE].put(stage, "stripe_key", values["stripe_key"], kms_key=kms_key)
        stores[BUCKET].put(stage, "feature_flags", values["feature_flags"])
        stores[SSM].put(stage, "log_level", values["log_level"])
        stores[SECRETS].put_many(stage, {"db_password": values["db_password"]})


def _appconfig() -> list[dict[str, Any]]:
    """Deploy APPCONFIG_SEED to the AppConfigData emulator and read each stage through ``appconfig://``, cold (a
    session and a poll) then warm (memory); a row per key."""
    from confstage import Config
    from confstage.testing import AppConfigServer

    rows: list[dict[str, Any]] = []
    with AppConfigServer() as server:
        os.environ["AWS_ENDPOINT_URL_APPCONFIGDATA"] = server.endpoint  # restored by _local_aws
        for stage, document in APPCONFIG_SEED.items():
            server.deploy("confstage-demo", stage.lower(), "settings", document)
        for stage, document in APPCONFIG_SEED.items():
            client = Config(APPCONFIG, stage=stage, cache_dir="")
            start = time.perf_counter()
            values = client.get_many(list(document))
            cold_ms = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            client.get_many(list(document))
            warm_ms = (time.perf_counter() - start) * 1000
            for key, value in values.items():
                rows.append(
                    {
                        "stage": stage,
                        "key": key,
                        "value": value,
                        "cold_ms": round(cold_ms, 2),
                        "warm_ms": round(warm_ms, 3),
                    }
                )
    return rows


def _origin(stage: str, keys: list[str]) -> dict[str, tuple[str, bool]]:
    """Which source of the chain answers each key, and whether the value is secret."""
    from confstage import Config, KeyNotFoundError

    client = Config(list(CHAIN), stage=stage, cache_dir="")
    origins: dict[str, tuple[str, bool]] = {}
    for key in keys:
        try:
            found = client.find(key)
        except KeyNotFoundError:
            continue
        origins[key] = (found.source.split(":", 1)[0], found.secret)
    return origins


def _invoke(handler: Callable[[dict[str, Any], Any], dict[str, Any]], stage: str) -> tuple[dict[str, Any], ...]:
    """A cold invocation (new client, empty caches) then a warm one, through the alias ``stage``."""
    import confstage
    from confstage import aws, crypto
    from confstage.testing import lambda_context

    aws.reset()
    crypto.clear_data_keys()
    confstage.configure(sources=list(CHAIN), cache_dir="")
    context = lambda_context(stage, function=FUNCTION, region=REGION, account=ACCOUNT)
    results = []
    for _ in ("cold", "warm"):
        start = time.perf_counter()
        result = handler({"source": "confstage-demo"}, context)
        result["total_ms"] = (time.perf_counter() - start) * 1000
        results.append(result)
    return tuple(results)


def _shown(value: Any, secret: bool) -> str:
    if secret:
        return MASK
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


@click.command(cls=ConfstageCommand)
@click.pass_obj
def demo(options: Settings) -> None:
    """Seed every source on an embedded local AWS endpoint and run the example handler under DEV and PRD."""
    began = time.perf_counter()
    handler_path = find_handler()
    rows: list[dict[str, Any]] = []
    totals: list[tuple[str, float, float]] = []
    with _local_aws() as endpoint:
        message(f"local AWS endpoint: {endpoint} (moto, 127.0.0.1)")
        _seed()
        message("seeded DEV and PRD into env://, kms-env://, dynamodb://, s3://, ssm:// and secretsmanager://")
        handler = _load_handler(handler_path)
        for stage in STAGES:
            cold, warm = _invoke(handler, stage)
            if cold["stage"] != stage:
                raise Failed(f"the handler invoked through alias {stage} resolved stage {cold['stage']}")
            keys = list(cold["values"])
            origin = _origin(stage, keys)
            for key in keys:
                source, secret = origin.get(key, ("?", False))
                rows.append(
                    {
                        "stage": stage,
                        "key": key,
                        "value": _shown(cold["values"][key], secret),
                        "source": source,
                        "cold_ms": round(cold["timings_ms"][key], 2),
                        "warm_ms": round(warm["timings_ms"][key], 3),
                    }
                )
            totals.append((stage, cold["total_ms"], warm["total_ms"]))
        appconfig_rows = _appconfig()
    elapsed = time.perf_counter() - began
    if options.json:
        emit_json(
            {
                "rows": rows,
                "invocations": [{"stage": s, "cold_ms": round(c, 2), "warm_ms": round(w, 3)} for s, c, w in totals],
                "appconfig": appconfig_rows,
                "seconds": round(elapsed, 2),
            }
        )
        return
    table(
        ("stage", "key", "value", "source", "cold ms", "warm ms"),
        [(r["stage"], r["key"], r["value"], r["source"], f"{r['cold_ms']:.2f}", f"{r['warm_ms']:.3f}") for r in rows],
        title=f"examples/handler.py invoked as {FUNCTION}:DEV and {FUNCTION}:PRD",
    )
    for stage, cold_ms, warm_ms in totals:
        message(f"{stage}: whole invocation {cold_ms:.1f} ms cold, {warm_ms:.2f} ms warm")
    table(
        ("stage", "key", "value", "cold ms", "warm ms"),
        [(r["stage"], r["key"], r["value"], f"{r['cold_ms']:.2f}", f"{r['warm_ms']:.3f}") for r in appconfig_rows],
        title=f"{APPCONFIG}, deployed to dev and prd of the AppConfigData emulator (whole stage per read)",
    )
    message(f"demo finished in {elapsed:.1f} s; secrets are masked (the handler never returns them)")
