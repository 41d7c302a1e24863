"""Stage resolution: ARN parsing, alias mapping, and the bound stage across threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import confstage
from confstage import ConfigurationError, StageError, parse_arn, stage_from_arn
from confstage.stage import parse_aliases

ARN = "arn:aws:lambda:us-east-1:123456789012:function:helloStagedWorld"


def context(qualifier: str | None = None) -> Any:
    return SimpleNamespace(invoked_function_arn=f"{ARN}:{qualifier}" if qualifier else ARN)


@pytest.mark.parametrize(
    ("partition", "region"),
    [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1"), ("aws-iso-b", "us-isob-east-1")],
)
def test_parse_arn_every_partition(partition: str, region: str) -> None:
    """Every AWS partition parses into its parts."""
    arn = parse_arn(f"arn:{partition}:lambda:{region}:123456789012:function:fn-1_a:PRD")
    assert arn.alias == "PRD"
    assert arn == (partition, region, "123456789012", "fn-1_a", "PRD")


@pytest.mark.parametrize(
    ("qualifier", "expected"), [("DEV", "DEV"), ("$LATEST", None), ("7", None), (None, None), ("v2", "v2")]
)
def test_stage_from_arn_only_aliases_name_a_stage(qualifier: str | None, expected: str | None) -> None:
    """An alias is a stage; $LATEST, version numbers and unqualified ARNs are not."""
    arn = f"{ARN}:{qualifier}" if qualifier else ARN
    assert stage_from_arn(arn) == expected


def test_alias_map_applies_and_unmapped_alias_is_the_stage() -> None:
    """CONFSTAGE_ALIASES maps an alias; an alias not in the map is the stage itself."""
    aliases = parse_aliases("live=PRD, test=TST")
    assert stage_from_arn(f"{ARN}:live", aliases) == "PRD"
    assert stage_from_arn(f"{ARN}:DEV", aliases) == "DEV"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
        "arn:aws:lambda:us-east-1:12345:function:fn",
        "arn:aws:lambda:us-east-1:123456789012:function:fn:a:b",
        "not an arn",
    ],
)
def test_malformed_arn_raises_stage_error_saying_what_was_expected(bad: str) -> None:
    """Anything that is not a Lambda function ARN raises StageError describing the expected form."""
    with pytest.raises(StageError, match="expected arn:PARTITION:lambda"):
        parse_arn(bad)


def test_non_string_arn_raises_stage_error() -> None:
    """A non-string ARN is a StageError, not a TypeError."""
    with pytest.raises(StageError, match="got int"):
        parse_arn(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["live", "live=", "=PRD", "a=b,c"])
def test_bad_alias_mapping_is_a_configuration_error(bad: str) -> None:
    """A malformed CONFSTAGE_ALIASES names the bad pair."""
    with pytest.raises(ConfigurationError, match="alias=STAGE"):
        parse_aliases(bad)


names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
aliases = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,40}", fullmatch=True)


@given(
    partition=st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-eusc"]),
    region=st.from_regex(r"[a-z]{2}(-[a-z]+)+-[0-9]", fullmatch=True),
    account=st.from_regex(r"[0-9]{12}", fullmatch=True),
    function=names,
    alias=aliases,
)
def test_parse_arn_round_trips(partition: str, region: str, account: str, function: str, alias: str) -> None:
    """Any well-formed aliased function ARN parses back into exactly its parts, and the alias is the stage."""
    arn = f"arn:{partition}:lambda:{region}:{account}:function:{function}:{alias}"
    assert parse_arn(arn) == (partition, region, account, function, alias)
    assert stage_from_arn(arn) == alias


@given(version=st.integers(min_value=1, max_value=10**9))
def test_version_numbers_never_name_a_stage(version: int) -> None:
    """A numeric qualifier is a published version, never a stage."""
    assert stage_from_arn(f"{ARN}:{version}") is None


def test_handler_binds_the_alias_and_falls_back_for_latest_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """@handler binds the alias's stage; $LATEST, versions and unqualified ARNs use CONFSTAGE_STAGE."""
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")
    monkeypatch.setenv("CONFSTAGE_ALIASES", "live=PRD")

    @confstage.handler
    def lambda_handler(event: Any, ctx: Any) -> str:
        return confstage.current_stage()

    assert lambda_handler({}, context("live")) == "PRD"
    assert lambda_handler({}, context("TST")) == "TST"
    assert lambda_handler({}, context("$LATEST")) == "DEV"
    assert lambda_handler({}, context("12")) == "DEV"
    assert lambda_handler({}, context()) == "DEV"
    assert lambda_handler({}, None) == "DEV"


def test_handler_with_arguments_and_unbinds_after_the_call() -> None:
    """@handler(...) works with arguments, and the stage is unbound once the call returns."""

    @confstage.handler()
    def lambda_handler(event: Any, ctx: Any) -> str:
        return confstage.current_stage()

    assert lambda_handler({}, context("PRD")) == "PRD"
    with pytest.raises(StageError, match="CONFSTAGE_STAGE"):
        confstage.current_stage()


def test_handler_rejects_a_malformed_arn() -> None:
    """A context whose ARN is not a Lambda function ARN raises StageError before the handler runs."""
    called = []

    @confstage.handler
    def lambda_handler(event: Any, ctx: Any) -> None:
        called.append(1)

    with pytest.raises(StageError):
        lambda_handler({}, SimpleNamespace(invoked_function_arn="arn:aws:s3:::bucket"))
    assert called == []


def test_no_stage_error_says_what_was_tried() -> None:
    """Without binding, alias or CONFSTAGE_STAGE, StageError names all three."""
    with pytest.raises(StageError) as info:
        confstage.current_stage()
    message = str(info.value)
    assert "@confstage.handler" in message
    assert "alias" in message
    assert "CONFSTAGE_STAGE" in message


def test_bind_accepts_a_stage_an_arn_or_a_context() -> None:
    """bind() takes a stage name, an invoked ARN or a Lambda context."""
    with confstage.bind("TST") as stage:
        assert stage == "TST" == confstage.current_stage()
    with confstage.bind(f"{ARN}:PRD"):
        assert confstage.current_stage() == "PRD"
    with confstage.bind(context("DEV")):
        assert confstage.current_stage() == "DEV"
    with pytest.raises(StageError):
        confstage.bind(3.5).__enter__()


def test_threads_never_see_each_others_stage() -> None:
    """Stages bound in concurrent threads stay private to each thread."""
    seen: dict[str, str] = {}
    barrier = threading.Barrier(8)

    def work(stage: str) -> None:
        with confstage.bind(stage):
            barrier.wait(timeout=10)  # every thread is bound at once
            seen[stage] = confstage.current_stage()

    threads = [threading.Thread(target=work, args=(f"S{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {f"S{i}": f"S{i}" for i in range(8)}


def test_asyncio_tasks_never_see_each_others_stage() -> None:
    """Concurrent asyncio handlers each see the stage of their own invocation."""

    @confstage.handler
    async def lambda_handler(event: Any, ctx: Any) -> str:
        await asyncio.sleep(0)  # let the other tasks bind theirs
        return confstage.current_stage()

    async def main() -> list[str]:
        return list(await asyncio.gather(*(lambda_handler({}, context(s)) for s in ["DEV", "TST", "PRD"])))

    assert asyncio.run(main()) == ["DEV", "TST", "PRD"]
