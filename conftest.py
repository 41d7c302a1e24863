"""Fixtures for the documentation's code blocks (README.md and docs/*.md), run by pytest-markdown-docs.

Each page starts on an empty local AWS account (a moto server on 127.0.0.1) and its blocks run in
order against it, as a reader would type them. A block names the fixtures it needs in its fence,
e.g. ```` ```console fixture:terminal fixture:app_kms_key ````; each is defined below and says what
it stands for. Nothing here writes a value a block reads: the blocks create their own state.

Why pytest-markdown-docs: see ``[tool.pytest.ini_options]`` in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._motoserver import threaded_moto
from tests.doc_blocks import Shell, console_fences, copy_checkout

ROOT = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def pytest_markdown_docs_markdown_it() -> Any:
    """The Markdown parser for pytest-markdown-docs: CommonMark, with ``console`` fences collected too."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    parser.core.ruler.push("confstage_console_fences", console_fences)
    return parser


# Blocks that show what the code will do once a change lands, and fail until then: the fence carries
# ``xfail:NAME``; strict, so the block fails CI as soon as it passes and the mark must go.
EXPECTED_FAILURES: dict[str, str] = {}  # NAME -> why the block fails, and which change will fix it


def _fence_options(item: pytest.Item) -> list[str]:
    """The words after the language on the fence line of a documentation block."""
    line = int(getattr(item, "start_line", 0))
    lines = Path(str(item.path)).read_text(encoding="utf-8").splitlines()
    for index in range(min(line, len(lines) - 1), -1, -1):
        if lines[index].lstrip().startswith("```"):
            return lines[index].strip().lstrip("`").split()[1:]
    return []


# Test modules marked ``slow``: subprocesses of the CLI or of whole benchmarks, real timeouts, second moto
# servers, pip downloads, and the two heaviest integration modules (S3 and partial writes: 20 s of worker time).
# CI runs every test once on one Python and the rest on the other Pythons tox.ini lists, which keeps its two
# slots even; nothing here is skipped, only scheduled.
SLOW_MODULES = frozenset(
    {
        "test_bench.py",
        "test_cli_store.py",
        "test_cli.py",
        "test_cli_writes.py",
        "test_cold_path.py",
        "test_deadlines.py",
        "test_demo.py",
        "test_disk_identity.py",
        "test_examples.py",
        "test_faults.py",
        "test_files_s3.py",
        "test_fleet.py",
        "test_garbage.py",
        "test_layer.py",
        "test_lite_faults.py",
        "test_lite_iam.py",
        "test_managed_instances.py",
        "test_partial_writes.py",
        "test_iam_enforced.py",
        "test_s3.py",
        "test_testing.py",
        "test_transports.py",
        "test_walkthrough.py",
    }
)


# Test modules whose module-scoped fixture is costly: a server process of their own, seeded; a benchmark run; a
# layer or wheel build. Under ``pytest -n 2`` each is one unit of work for one worker, so the fixture is built
# once rather than once on each worker that happens to get one of its tests; every other test is scheduled alone.
GROUPED_MODULES = frozenset(
    {
        "test_bench.py",
        "test_disk_identity.py",
        "test_fleet.py",
        "test_iam_enforced.py",
        "test_layer.py",
        "test_lite_iam.py",
        "test_packaging.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n`` (pytest-xdist's ``--dist load``) with GROUPED_MODULES kept whole; any other ``--dist`` as asked.

    xdist's own ``--dist loadgroup`` would do this from ``xdist_group`` marks, but it renames items through
    ``Item._nodeid``, which pytest 9 no longer reads: the marks are silently ignored.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type information
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if Path(module).name in GROUPED_MODULES else nodeid

    return Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow modules are marked ``slow``; every documentation block runs with ``docs_env``, and a block
    marked ``xfail:NAME`` is expected to fail."""
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("markdown-docs") is None:
            continue
        item.add_marker(pytest.mark.usefixtures("docs_env"))
        for option in _fence_options(item):
            if option.startswith("xfail:"):
                reason = EXPECTED_FAILURES[option.removeprefix("xfail:")]
                item.add_marker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture(scope="session", name="docs_aws_server")
def fixture_docs_aws_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (random port) for the documentation's blocks; yields its URL."""
    with threaded_moto() as url:
        yield url


class _Pages:
    """What one page's blocks share while they run in order: its account and its terminal."""

    def __init__(self) -> None:
        self.page: Path | None = None
        self.shell: Shell | None = None
        self.state: dict[str, Any] = {}


@pytest.fixture(scope="session", name="_pages")
def fixture_pages() -> _Pages:
    """The page whose blocks are running, and what they share."""
    return _Pages()


@pytest.fixture(name="docs_env")
def fixture_docs_env(
    request: pytest.FixtureRequest,
    docs_aws_server: str,
    _pages: _Pages,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A block runs against the local endpoint with fake credentials; a new page starts on an empty account."""
    import confstage
    from confstage import aws, crypto

    page = Path(str(request.node.path))
    if _pages.page != page:
        request_ = urllib.request.Request(f"{docs_aws_server}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request_, timeout=10) as response:  # noqa: S310 - the loopback moto server
            assert response.status == 200
        _pages.page, _pages.shell, _pages.state = page, None, {}
    for name in list(os.environ):
        if name.startswith(("CONFSTAGE_", "AWS_")):
            monkeypatch.delenv(name)
    if "cache" not in _pages.state:
        _pages.state["cache"] = tmp_path_factory.mktemp("cache")
    cache: Path = _pages.state["cache"]
    for name, value in {
        **FAKE_CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": docs_aws_server,
        "CONFSTAGE_CACHE_DIR": str(cache),
    }.items():
        monkeypatch.setenv(name, value)
    confstage.reset()
    aws.reset()
    crypto.clear_data_keys()
    yield docs_aws_server
    confstage.reset()
    aws.reset()


@pytest.fixture(name="terminal")
def fixture_terminal(docs_env: str, _pages: _Pages, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """The page's terminal: bash with fake credentials, AWS_ENDPOINT_URL at the local endpoint, an empty directory.

    Its exported variables and working directory carry over from block to block of the page.
    """
    if _pages.shell is None:
        home = tmp_path_factory.mktemp("home")
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),  # no ~/.aws of the machine's user
            "LANG": "C.UTF-8",
            "COLUMNS": "120",
            **FAKE_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": docs_env,
            "CONFSTAGE_CACHE_DIR": str(home / "cache"),
        }
        _pages.shell = Shell(tmp_path_factory.mktemp("work"), env)
    return _pages.shell


@pytest.fixture(name="checkout")
def fixture_checkout(terminal: Shell, _pages: _Pages, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The terminal starts in a fresh copy of this repository (what ``git clone`` gives), with pip kept offline.

    pip builds the wheel with the hatchling already installed here instead of fetching it (PIP_NO_INDEX,
    and PIP_NO_BUILD_ISOLATION=0, which pip reads as --no-build-isolation): the tests reach no network.
    """
    if "checkout" not in _pages.state:
        clone = copy_checkout(ROOT, tmp_path_factory.mktemp("clone") / "confstage")
        terminal.cwd = clone
        terminal.env.update({"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        _pages.state["checkout"] = clone
    checkout: Path = _pages.state["checkout"]
    return checkout


@pytest.fixture(name="app_kms_key")
def fixture_app_kms_key(docs_env: str, _pages: _Pages) -> str:
    """A KMS key of the account with the alias ``alias/app``, as a team that encrypts its configuration has one."""
    if "app_kms_key" not in _pages.state:
        import boto3

        kms = boto3.client("kms", endpoint_url=docs_env, region_name=REGION)
        key_id: str = kms.create_key(Description="app configuration")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
        _pages.state["app_kms_key"] = key_id
    key: str = _pages.state["app_kms_key"]
    return key


@pytest.fixture(scope="session", name="_appconfig_servers")
def fixture_appconfig_servers() -> Iterator[list[Any]]:
    """The AppConfig emulators the pages started, stopped at the end of the session."""
    servers: list[Any] = []
    yield servers
    for server in servers:
        server.close()


@pytest.fixture(name="appconfig")
def fixture_appconfig(
    terminal: Shell, _pages: _Pages, _appconfig_servers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``confstage.testing.AppConfigServer`` for the page (its deployments kept from block to block), with
    ``AWS_ENDPOINT_URL_APPCONFIGDATA`` at it in the process and in the page's terminal, as AWS would be."""
    from confstage.testing import AppConfigServer

    server = _pages.state.get("appconfig")
    if server is None:
        server = _pages.state["appconfig"] = AppConfigServer()
        server.start()
        _appconfig_servers.append(server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_APPCONFIGDATA", server.endpoint)
    terminal.env["AWS_ENDPOINT_URL_APPCONFIGDATA"] = server.endpoint
    return server


@pytest.fixture(name="app_config_table")
def fixture_app_config_table(docs_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``CONFSTAGE_SOURCES=dynamodb://app-config``: a stage-key table holding DEV's db_url, db_user and limits."""
    from confstage.stores import build_store

    url = "dynamodb://app-config"
    table = build_store(url)
    assert table is not None
    table.init()
    table.put_many("DEV", {"db_url": "postgres://dev-db/app", "db_user": "app", "limits": '{"rps": 100}'})
    monkeypatch.setenv("CONFSTAGE_SOURCES", url)
    return url
