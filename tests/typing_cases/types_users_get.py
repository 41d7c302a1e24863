"""What a user's code may rely on: the type each public function and ``Config`` method gives (checked, not run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typing_extensions import assert_type

import confstage
from confstage import Config


@dataclasses.dataclass
class AppSettings:
    db_url: str
    port: int = 5432


def module_functions() -> None:
    assert_type(confstage.get("db_url"), str)
    assert_type(confstage.get("db_url", None), str | None)
    assert_type(confstage.get("db_url", "sqlite://"), str)
    assert_type(confstage.get("db_url", default=None, stage="PRD", max_age=1.0, force=True), str | None)
    assert_type(confstage.get("db_url", confstage.MISSING), str)
    assert_type(confstage.get_int("port"), int)
    assert_type(confstage.get_int("port", 5432), int)
    assert_type(confstage.get_int("port", default=None), int | None)
    assert_type(confstage.get_int("port", stage="PRD", max_age=0, force=False), int)
    assert_type(confstage.get_float("ratio"), float)
    assert_type(confstage.get_float("ratio", 0.5), float)
    assert_type(confstage.get_float("ratio", None), float | None)
    assert_type(confstage.get_bool("feature_x"), bool)
    assert_type(confstage.get_bool("feature_x", default=False), bool)
    assert_type(confstage.get_bool("feature_x", None), bool | None)
    assert_type(confstage.get_json("limits"), Any)
    assert_type(confstage.get_json("limits", {}, stage="PRD"), Any)
    assert_type(confstage.get_many(["db_url", "db_user"], stage="PRD", max_age=5, force=True), dict[str, str])
    assert_type(confstage.prefetch(["db_url"], stage="PRD"), dict[str, str])
    assert_type(confstage.settings(AppSettings), AppSettings)
    assert_type(confstage.get_path("model.bin", stage="PRD"), Path)
    assert_type(confstage.current_stage(), str)
    assert_type(confstage.stats(), dict[str, Any])
    with confstage.bind("PRD") as stage:
        assert_type(stage, str)
    assert_type(confstage.configure(["env://"], stage="PRD", ttl=60, max_stale=600, cache_dir=""), Config)
    assert_type(confstage.configure(sources="env://", aliases={"live": "PRD"}, environ={}), Config)


def config_methods(config: Config) -> None:
    assert_type(config.get("db_url"), str)
    assert_type(config.get("db_url", None), str | None)
    assert_type(config.get("db_url", "sqlite://", stage="PRD", max_age=1.0, force=True), str)
    assert_type(config.get_int("port"), int)
    assert_type(config.get_int("port", None), int | None)
    assert_type(config.get_float("ratio", default=None), float | None)
    assert_type(config.get_bool("feature_x", False), bool)
    assert_type(config.get_bool("feature_x", None), bool | None)
    assert_type(config.get_json("limits"), Any)
    assert_type(config.get_many(["db_url"], force=True), dict[str, str])
    assert_type(config.settings(AppSettings, stage="PRD"), AppSettings)
    assert_type(config.get_path("model.bin"), Path)
    assert_type(config.refresh(["db_url"], stage="PRD"), dict[str, str])


Handler = Callable[[dict[str, Any], object], dict[str, str]]


def decorators(handler: Handler) -> None:
    assert_type(confstage.handler(handler), Handler)
    with_options = confstage.handler(config=Config("env://", stage="PRD"), warmup=True, warmup_keys=["db_url"])
    assert_type(with_options(handler), Handler)
    assert_type(confstage.refresh_on(ConnectionError, keys=["db_password"])(handler), Handler)
