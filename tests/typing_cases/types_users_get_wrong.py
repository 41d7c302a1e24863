"""Mistakes a user's code must be told about: each line below is a type error of exactly the code it ignores.

``--warn-unused-ignores`` turns an ignore that nothing needed into an error, so a mistake mypy stops
seeing (a ``**kwargs: Any`` swallowing a misspelt keyword, a getter typed ``Any``) fails the test.
"""

from __future__ import annotations

import confstage
from confstage import Config


def misspelt_keywords(config: Config) -> None:
    confstage.get_int("port", defualt=1)  # type: ignore[call-overload]
    confstage.get("db_url", stag="PRD")  # type: ignore[call-overload]
    confstage.get_float("ratio", maxage=1)  # type: ignore[call-overload]
    confstage.get_bool("feature_x", forse=True)  # type: ignore[call-overload]
    confstage.get_json("limits", stages="PRD")  # type: ignore[call-arg]
    confstage.get_many(["db_url"], forse=True)  # type: ignore[call-arg]
    confstage.configure(sourcez=["env://"])  # type: ignore[call-arg]
    confstage.configure(["env://"], tll=60)  # type: ignore[call-arg]
    confstage.prefetch(["db_url"], stages="PRD")  # type: ignore[call-arg]
    confstage.handler(confg=config)  # type: ignore[call-overload]
    Config(sourcez=["env://"])  # type: ignore[call-arg]
    config.get_int("port", defualt=1)  # type: ignore[call-overload]
    config.get_many(["db_url"], max_ag=1)  # type: ignore[call-arg]


def a_default_of_another_type_is_in_the_result(config: Config) -> None:
    maybe_url = confstage.get("db_url", None)
    url: str = maybe_url  # type: ignore[assignment]
    maybe_port = confstage.get_int("port", None)
    port: int = maybe_port  # type: ignore[assignment]
    maybe_ratio = config.get_float("ratio", None)
    ratio: float = maybe_ratio  # type: ignore[assignment]
    maybe_on = config.get_bool("feature_x", "unknown")
    on: bool = maybe_on  # type: ignore[assignment]
    print(url, port, ratio, on)


def wrong_argument_types() -> None:
    confstage.get("db_url", stage=1)  # type: ignore[call-overload]
    confstage.settings("AppSettings")  # type: ignore[arg-type]
