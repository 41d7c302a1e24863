"""The chain of sources behind their caches, and the client's *views*: what ``Config`` reads through.

Reads come in two kinds:

* **Inside an invocation** (``@handler``, ``bind()``): freshness is decided when the invocation
  starts. The invocation holds a dict of what it has read (its snapshot, ``_context.Invocation``); a
  read is a lookup in it, and a key not yet in it is resolved once, as of the invocation's start, and
  added. A value refreshed meanwhile is seen by the next invocation.
* **Outside invocations**: the TTL is checked on every call, against the client's view of the stage
  (the values answered so far, the stage loads they came from, and when the first of them expires).

Views and snapshots only ever gain keys; a refresh that changes a value makes a new view, so a dict
an invocation holds never changes under it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ._context import EMPTY, FOREVER, MISSING, Invocation, Missing, own
from .cache import CachedSource, StageData
from .errors import KeyNotFoundError
from .metrics import COUNTERS

if TYPE_CHECKING:
    from .client import Config

__all__ = ["Chain", "Found", "View"]

_MAX_VIEWS = 4096  # distinct stages remembered; a flood of made-up names cannot grow memory
_NOT_THERE: Any = object()  # "no entry" in a view (MISSING is an entry: known absent)


class View(Invocation):
    """What the client has answered for one stage: values (``MISSING``: absent), their loads, and until when.

    A view is also the shared invocation of every invocation that starts while it is fresh: they read
    its ``values`` (freshness decided as of the view's making, from its pinned loads) without a thing
    of their own to create.
    """

    __slots__ = ("expires",)
    shared = True

    def __init__(
        self,
        client: Config,
        stage: str,
        values: dict[str, str | Missing],
        expires: float,
        pins: dict[int, StageData],
        at: float,
    ) -> None:
        super().__init__(client, stage, at, values, pins, {})
        self.expires = expires

    def fresh(self, now: float) -> bool:
        """The freshness test, written once (two copies inlined on the warm path say so: ``fresh(now)``, inlined).

        ``FOREVER`` is compared by identity first: an immutable stage (env vars) never needs the clock.
        """
        expires = self.expires
        return expires is FOREVER or expires > now


class Found(NamedTuple):
    """Where a key was found: its value, the URL of the first source holding it, and whether it is a secret."""

    value: str
    source: str
    secret: bool


def drop_oldest(table: dict[Any, Any]) -> None:
    """Remove the first (oldest) entry of a dict another thread may be changing too; a no-op when it is gone."""
    with contextlib.suppress(StopIteration, RuntimeError):  # emptied, or changed under the iterator
        table.pop(next(iter(table)), None)


class Chain:
    """Sources tried in order, each behind its cache layer, and the views of what they answered."""

    def __init__(self, client: Config, layers: list[CachedSource], clock: Callable[[], float]) -> None:
        self.client = client
        self.layers = layers
        # Never replaced: Config's warm path holds this very dict. Typed with None as a key (never one) so that the
        # warm path can look a stage of None up and find nothing, without a test of its own.
        self.views: dict[str | None, View] = {}
        self._clock = clock

    def urls(self) -> list[str]:
        return [layer.source.url for layer in self.layers]

    def open(self, stage: str | None, now: float) -> Invocation:
        """An invocation of ``stage``: the stage's view while it is fresh (shared), else a new one."""
        view = self.views.get(stage)
        if view is not None and view.fresh(now):
            return view
        return Invocation(self.client, stage, now, EMPTY, {}, EMPTY)

    def fresh_view(self, stage: str) -> View | None:
        """The stage's view while it is fresh, else None."""
        view = self.views.get(stage)
        return view if view is not None and view.fresh(self._clock()) else None

    # -- reading ---------------------------------------------------------------------------------

    def read(
        self, stage: str, keys: Sequence[str], max_age: float | None, newer_than: float | None
    ) -> dict[str, str | Missing]:
        """Answers outside invocations (``MISSING`` when absent): from the view while fresh, else resolved.

        ``newer_than``: a refresh; only data from fetches begun after this time will do.
        """
        forced = newer_than is not None or max_age is not None
        now = self._clock()
        view = self.views.get(stage)
        fresh = view is not None and view.fresh(now)
        if fresh and not forced:
            assert view is not None
            known = view.values
            if all(key in known for key in keys):
                return {key: known[key] for key in keys}
        pins = view.pins if view is not None and fresh and not forced else None
        answers, expires, used = self.resolve(stage, keys, pins=pins, max_age=max_age, newer_than=newer_than)
        self.remember(stage, answers, expires, used, now, replace=forced)
        return answers

    def read_in(
        self, invocation: Invocation, keys: Sequence[str], max_age: float | None, newer_than: float | None
    ) -> dict[str, str | Missing]:
        """Answers inside an invocation: from its snapshot, resolving (as of its start) what it has not read."""
        assert invocation.stage is not None
        stage = invocation.stage
        forced = newer_than is not None or max_age is not None
        if invocation.reads is not None:
            invocation.reads.update(keys)  # refresh_on's recording: what the call read
        values = invocation.values
        if not forced:
            unread = [key for key in keys if key not in values]
            if not unread:
                return {key: values[key] for key in keys}
        else:
            unread = list(keys)
        answers, expires, pins = self.resolve(
            stage,
            unread,
            at=None if forced else invocation.started,
            pins=None if forced else invocation.pins,
            max_age=max_age,
            newer_than=newer_than,
        )
        self.remember(stage, answers, expires, pins, self._clock(), replace=forced)
        if forced:
            # An explicit refresh: this invocation sees the new values from now on (a copy: others keep theirs;
            # objects built from the old values, like settings, are left behind to be built again).
            invocation = own(invocation)
            invocation.values = values | answers
            invocation.pins = {**invocation.pins, **pins}
            invocation.built = {}
        elif values is EMPTY:
            view = self.views.get(stage)
            if view is not None and all(view.values.get(k, _NOT_THERE) is v for k, v in answers.items()):
                # Share the view (and what was built from it): later reads are free.
                invocation.values, invocation.pins, invocation.built = view.values, view.pins, view.built
            else:
                invocation.values, invocation.pins, invocation.built = dict(answers), dict(pins), {}
        else:
            for key, value in answers.items():
                values.setdefault(key, value)
            for index, data in pins.items():
                invocation.pins.setdefault(index, data)
        values = invocation.values
        return {key: values[key] for key in keys}

    def resolve(
        self,
        stage: str,
        keys: Sequence[str],
        *,
        at: float | None = None,
        pins: Mapping[int, StageData] | None = None,
        max_age: float | None = None,
        newer_than: float | None = None,
    ) -> tuple[dict[str, str | Missing], float, dict[int, StageData]]:
        """Walk the chain: a key missing from one source is asked of the next; failures raise.

        Returns every key's answer (``MISSING`` when no source has it), until when all of them are
        fresh, and the stage loads they came from.
        """
        found: dict[str, str] = {}
        remaining = list(keys)
        expires = math.inf
        used: dict[int, StageData] = {}
        for index, layer in enumerate(self.layers):
            if not remaining:
                break
            values, fresh_until, data = layer.lookup(
                stage,
                remaining,
                at=at,
                pin=pins.get(index) if pins else None,
                max_age=max_age,
                newer_than=newer_than,
            )
            if data is not None:
                used[index] = data
            expires = min(expires, fresh_until)
            found.update(values)
            remaining = [k for k in remaining if k not in values]
        answers: dict[str, str | Missing] = {key: found.get(key, MISSING) for key in keys}
        return answers, FOREVER if expires == math.inf else expires, used

    def remember(
        self,
        stage: str,
        answers: dict[str, str | Missing],
        expires: float,
        pins: dict[int, StageData],
        now: float,
        *,
        replace: bool,
    ) -> None:
        """Record answers in the view of the stage, never changing a value a snapshot may hold."""
        if not (expires is FOREVER or expires > now):  # View.fresh's test, of a view not made yet
            return  # stale already (an old invocation's pinned read, a stale answer): nothing to share
        view = self.views.get(stage)
        if view is None or not view.fresh(now):
            if view is not None:
                self.views.pop(stage, None)  # re-added last: the views' order is that of their last refresh
            elif len(self.views) >= _MAX_VIEWS:
                drop_oldest(self.views)  # the least recently refreshed view goes
            self.views[stage] = View(self.client, stage, dict(answers), expires, dict(pins), now)
            return
        same_loads = all(view.pins.get(index, data) is data for index, data in pins.items())
        changed = any(view.values.get(key, value) is not value for key, value in answers.items())
        if changed or not same_loads:
            if replace:  # a refresh: a new view (snapshots holding the old dict keep their values and objects)
                self.views[stage] = View(
                    self.client, stage, view.values | answers, min(view.expires, expires), {**view.pins, **pins}, now
                )
            return
        values = view.values
        for key, value in answers.items():
            values.setdefault(key, value)
        if expires < view.expires:
            view.expires = expires

    # -- control ---------------------------------------------------------------------------------

    def find(self, stage: str, key: str) -> Found:
        """The first source holding ``key`` of ``stage``, read through its cache layer; ``KeyNotFoundError`` else."""
        for layer in self.layers:
            values, _, _ = layer.lookup(stage, (key,))
            if key in values:
                return Found(values[key], layer.source.url, layer.is_secret(stage, key))
        raise KeyNotFoundError(key, stage, self.urls())

    def expire(self) -> None:
        """Every cached value, in memory and in /tmp, is stale from now (kept for stale-on-error)."""
        self.views.clear()
        for layer in self.layers:
            layer.expire()

    def clear(self) -> None:
        """Forget every value held in memory."""
        self.views.clear()
        for layer in self.layers:
            layer.clear()

    def stats(self, more: Sequence[CachedSource] = ()) -> dict[str, Any]:
        """Counters per source URL and in total, ``more`` layers (``get_path``'s) included; ``cached_keys`` counts
        the keys of the views."""
        per_source = {layer.source.url: layer.stats.as_dict() for layer in (*self.layers, *more)}
        totals = {name: sum(s[name] for s in per_source.values()) for name in COUNTERS}
        cached = sum(len(view.values) for view in list(self.views.values()))
        return {"sources": per_source, "total": totals, "cached_keys": cached}
