"""``Config``: the client — built from its settings, binding stages to invocations, controlling its caches.

How a call reads (the getters, typed settings, files) is in ``getters``; snapshots per invocation, views
and the walk down the chain of sources in ``chain``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from . import variables
from ._state import (
    CURRENT,
    EMPTY,
    FOREVER,
    Invocation,
    enter,
    leave,
)
from .cache import Backoff, CachedSource
from .chain import Chain, drop_oldest
from .disk import DiskCache
from .errors import StageError
from .getters import Getters
from .names import validate_stage
from .sources import Source, build_sources
from .stage import parse_aliases, stage_from_arn, stage_of

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["Config"]

_MAX_ARNS = 4096  # distinct invoked ARNs remembered; a flood of made-up ones cannot grow memory


class Config(Getters):
    """A configuration client: sources tried in order, behind a memory and a /tmp cache.

    Arguments left as None come from the ``CONFSTAGE_*`` environment variables, then from the
    built-in defaults (``env://``, TTL 300 s less up to 10% of jitter, max stale 3600 s and 900 s for
    secrets, ``/tmp/confstage``, a fetch deadline of 10 s and a 1 s wait for a refresh when a stale
    value is in hand). ``transport``: what the sources' AWS calls go through (None: the runtime's,
    ``CONFSTAGE_TRANSPORT``).
    """

    def __init__(
        self,
        sources: str | Iterable[str | Source] | None = None,
        *,
        stage: str | None = None,
        aliases: str | Mapping[str, str] | None = None,
        ttl: float | None = None,
        max_stale: float | None = None,
        cache_dir: str | None = None,
        cache_kms_key: str | None = None,
        fetch_timeout: float | None = None,
        refresh_timeout: float | None = None,
        ttl_jitter: float | None = None,
        secret_max_stale: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        run: Callable[[Callable[[], None]], None] | None = None,
        random: Callable[[], float] | None = None,
        transport: Transport | None = None,
    ) -> None:
        given = variables.resolve(
            environ,
            sources=sources,
            stage=stage,
            aliases=aliases,
            ttl=ttl,
            max_stale=max_stale,
            secret_max_stale=secret_max_stale,
            fetch_timeout=fetch_timeout,
            refresh_timeout=refresh_timeout,
            ttl_jitter=ttl_jitter,
            cache_dir=cache_dir,
            cache_kms_key=cache_kms_key,
        )
        if stage is None and given.stage is not None:
            _check_setting("CONFSTAGE_STAGE", given.stage)
        self.stage = validate_stage(given.stage) if given.stage is not None else None
        self.aliases = parse_aliases(given.aliases)
        self.ttl = given.ttl
        self.max_stale = given.max_stale
        self._clock = clock
        self.clock = clock  # this client's clock of ages, monotonic (a test injects its own)
        self._cache_dir = given.cache_dir
        # /tmp files hold wall-clock times (they compare across processes); an injected clock stands for both.
        wall = time.time if clock is time.monotonic else clock
        self._disk = (
            DiskCache(given.cache_dir, kms_key=given.cache_kms_key, transport=transport, clock=clock, wall=wall)
            if given.cache_dir
            else None
        )
        self._layer_options: dict[str, Any] = {
            "ttl": given.ttl,
            "max_stale": given.max_stale,
            "clock": clock,
            "refresh_timeout": given.refresh_timeout,
            "backoff": backoff,
            "run": run,
            "ttl_jitter": given.ttl_jitter,
            "random": random,
            "disk": self._disk,
        }
        layers = [
            CachedSource(
                source,
                fetch_timeout=given.fetch_timeout,
                secret_max_stale=given.secret_max_stale,
                **self._layer_options,
            )
            for source in build_sources(given.sources, transport=transport)
        ]
        self._chain = Chain(self, layers, clock)
        self._views = self._chain.views  # the warm path reads the chain's views directly
        self._file_layers: list[CachedSource] | None = None  # get_path's, made on first use
        self._arn_stages: dict[str | None, str | None] = {}
        self.emitter: Any = None  # a CloudWatch EMF emitter when CONFSTAGE_METRICS=emf (read by @handler)
        if given.metrics == "emf":
            from .emf import Emitter

            self.emitter = Emitter(self.stats, environ=environ)

    def __repr__(self) -> str:
        return f"Config(sources=[{', '.join(self._urls())}], stage={self.stage!r}, ttl={self.ttl})"

    @property
    def sources(self) -> list[Source]:
        """The sources of the chain, in order."""
        return [layer.source for layer in self._chain.layers]

    # -- stage -------------------------------------------------------------------------------

    def current_stage(self) -> str:
        """The stage in force: this invocation's, the running invocation's (worker threads), else this client's."""
        return self._stage_for(None, CURRENT.get())

    def stage_for(self, target: Any) -> str | None:
        """The stage a stage name, ARN or Lambda context maps to through this client's aliases (validated)."""
        stage = stage_of(target, self.aliases)
        return validate_stage(stage) if stage is not None else None

    @contextmanager
    def bind(self, target: Any) -> Iterator[str]:
        """Bind the stage of ``target`` (stage, ARN or context) for the block, as one invocation; yields it."""
        stage = self.stage_for(target)
        invocation = self._chain.open(stage if stage is not None else self.stage, self._clock())
        in_force = self._stage_for(None, invocation)  # StageError, saying what was tried, when there is none
        token = enter(invocation)
        try:
            yield in_force
        finally:
            leave(invocation, token)

    def begin(self, arn: str | None) -> Invocation:
        """The invocation of an invoked ARN (None: a call without a Lambda context).

        The stage of each distinct ARN is worked out once and remembered. While the client's view of that
        stage is fresh, the view itself is the invocation (shared, nothing to make, its reads dict lookups);
        otherwise a new invocation starts empty and reads as of now.
        """
        try:
            stage = self._arn_stages[arn]
        except KeyError:
            stage = stage_from_arn(arn, self.aliases) if arn is not None else None
            stage = validate_stage(stage) if stage is not None else self.stage
            if len(self._arn_stages) >= _MAX_ARNS:
                drop_oldest(self._arn_stages)  # the oldest ARN first; a hit costs no reordering
            self._arn_stages[arn] = stage
        view = self._views.get(stage)  # type: ignore[arg-type]  # None is never a key: no view, as wanted
        now = self._clock()
        if view is not None and (view.expires is FOREVER or view.expires > now):  # Chain.open, inlined: hot
            return view  # the shared invocation of its stage: nothing to make
        return Invocation(self, stage, now, EMPTY, {})

    # -- cache control and stats -------------------------------------------------------------

    def prefetch(
        self, keys: Iterable[str] | None = None, *, stage: str | None = None, manifest: Any = None
    ) -> dict[str, str]:
        """Load the stage now (init time, warm-up): every whole-stage source, then ``keys`` if given.

        With ``keys``, fails fast with one ``KeyNotFoundError`` that lists every missing key. With
        ``manifest`` (a manifest file's path, a settings class: see ``confstage.manifest``), every key it
        requires is checked (present, of its type, matching) and one ``ManifestError`` names every problem.
        Returns the values of ``keys`` (empty without them).
        """
        stage = self._stage_for(stage, CURRENT.get())
        for layer in self._chain.layers:
            layer.load(stage)
        if manifest is not None:
            from .manifest import require

            require(self, manifest, stage)
        return self.get_many(keys, stage=stage) if keys is not None else {}

    def expire(self) -> None:
        """Treat every cached value, in memory and in /tmp, as stale (after a SnapStart restore):
        refetched on next use, still served if that refresh fails within ``max_stale``."""
        self._chain.expire()
        for layer in self._file_layers or ():
            layer.expire()

    def clear(self) -> None:
        """Forget every value held in memory (the next get fetches, or reads a fresh /tmp snapshot)."""
        self._chain.clear()
        for layer in self._file_layers or ():
            layer.clear()

    def stats(self) -> dict[str, Any]:
        """Counters per source URL (hits, misses, fetches, errors, throttled, stale, latency) and in total.

        A source's ``hits`` are lookups its cache layer answered from memory. Reads answered by an
        invocation's snapshot or the client's view are dict lookups and are not counted.
        """
        return self._chain.stats()


def _check_setting(name: str, stage: str) -> None:
    try:
        validate_stage(stage)
    except StageError as exc:
        raise StageError(f"{name}: {exc}") from exc  # the same message, with the variable named
