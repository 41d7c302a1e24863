"""Regional failover: an AWS source read from the next region when its home region fails.

::

    failover(source, url, regions, transport)       build_source, for ?fallback_regions= / CONFSTAGE_FALLBACK_REGIONS
    └── FailoverSource.fetch(stage, keys)           home first (unless resting), then each fallback region in order
        ├── home: the source as built, on the transport as given
        └── a fallback: the same URL rebuilt ({region} filled in), on RegionTransport(transport, region)

A fetch fails over only when the home region could not answer: a network error or timeout, a 5xx, throttling
after the transport's retries (``worth_failing_over``). Never on an answer: a key absent at home is absent
(not-found is an answer, not an error), and AccessDenied, a missing table or bucket, a document that does not
parse raise as they would without failover. The whole fetch moves, never a page of it: page tokens belong to
the region that issued them.

After a failover the home region rests (``Backoff``: 30 s, doubling to 5 min, jittered) and fetches go to the
fallbacks first; the first fetch after the rest tries home again, and a success there ends the rest. While a
fallback region is still to be tried, the home region gets half the time left of the fetch's deadline
(``_context.DEADLINE``), so a hanging home leaves the fallback time to answer: the lite transport keeps every
request within it, and a fetch still running past it (botocore's clients end a hanging call only after their
read timeout on every attempt) is left to finish in its thread while the next region is asked.

What a fallback served is counted (``stats()``'s ``fallback``, EMF's ``FallbackReads``: the cache layer counts a
``RegionalFetched``), and its /tmp file is named by the region it came from (``identity``).

Per service: a Secrets Manager replica secret, a DynamoDB global table and an AppConfig application deployed in each
region have the same name in every region (AppConfig through the Lambda extension, ``via=agent``, has nothing to
fail over: the extension reads its own region); an S3 bucket is per region, so its name carries ``{region}``
(``s3://config-{region}/app``); SSM parameters are whatever the user keeps in both. An envelope (``cs1:``) opens in
a fallback region when its KMS key is a multi-Region key (``mrk-…``) replicated there, or when the home region
opened it before (data keys stay cached in memory); a single-Region key's envelopes cannot be opened while its
region is down (KMS refuses the key there: the fetch fails with an error naming the fallback region and what home
did).
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from confstage import _context, aws
from confstage import _log as log
from confstage._backoff import Backoff
from confstage.errors import ConfigurationError, ConfstageError, SourceError
from confstage.transport import THROTTLING_CODES, AwsError, AwsRequest, NetworkError

from .base import REGIONAL_SCHEMES, Fetched, ObjectSource

if TYPE_CHECKING:
    from confstage.transport import Transport

    from .base import ObjectBody, Source

__all__ = [
    "PLACEHOLDER",
    "REGIONAL_SCHEMES",
    "FailoverSource",
    "ObjectFailoverSource",
    "RegionTransport",
    "RegionalFetched",
    "check_regions",
    "failover",
    "worth_failing_over",
]

T = TypeVar("T")

PLACEHOLDER = "{region}"  # in an S3 bucket name: the region the bucket serves
REST = Backoff(base=30.0, cap=300.0)  # how long the home region rests after the n-th failover in a row
_GRACE = 0.2  # seconds past its share a region's fetch is waited for (the lite transport's own error comes first)
_SERVER_CODES = frozenset(
    {"InternalServerError", "InternalFailure", "InternalServiceError", "ServiceUnavailable", "InternalError"}
)


def check_regions(names: Sequence[str], *, what: str, home: str | None = None) -> tuple[str, ...]:
    """``names`` as regions, in order, duplicates dropped; ``ConfigurationError`` naming the first that is not one,
    or, given the ``home`` region, that lies in another partition (a read cannot move there: other credentials,
    other endpoints)."""
    from confstage.transport.endpoints import PARTITIONS, partition

    seen: list[str] = []
    for name in names:
        known = any(
            (name in p.regions and not name.endswith("-global")) or re.match(p.region_regex, name) for p in PARTITIONS
        )
        if not known:
            raise ConfigurationError(f"{what}: {name!r} is not an AWS region (e.g. us-west-2, eu-central-1)")
        if home is not None and not home.startswith("${") and partition(name).name != partition(home).name:
            raise ConfigurationError(
                f"{what}: {name!r} is in the partition {partition(name).name}, the home region {home!r} in "
                f"{partition(home).name}: a read cannot fail over to another partition"
            )
        if name not in seen:
            seen.append(name)
    return tuple(seen)


def worth_failing_over(error: BaseException) -> bool:
    """Whether a failed fetch says the region could not answer (network, 5xx, throttling after retries).

    Not-found never gets here (it is an answer); AccessDenied and every other 4xx, and a broken document, are
    the same in every region and raise as they are.
    """
    if getattr(error, "throttled", False):
        return True
    cause = error.__cause__
    if isinstance(cause, NetworkError):
        return True
    if isinstance(cause, AwsError):
        return cause.status >= 500 or cause.code in _SERVER_CODES or cause.code in THROTTLING_CODES
    return False


class RegionTransport:
    """A transport whose every request goes to ``region``; ``inner`` does the call (None: the runtime's)."""

    def __init__(self, inner: Transport | None, region: str) -> None:
        self.inner = inner
        self.region = region
        self.name = f"{getattr(inner, 'name', 'runtime')}@{region}"

    def __repr__(self) -> str:
        return f"RegionTransport({self.inner!r}, {self.region!r})"

    def call(self, request: AwsRequest) -> dict[str, Any]:
        return (self.inner or aws.runtime_transport()).call(request._replace(region=self.region))

    def identity(self, service: str) -> str:
        """The inner transport's ``endpoint_identity`` with this region in place of its own."""
        from confstage.aws import endpoint_identity

        found = endpoint_identity(service, transport=self.inner)
        words = [f"region={self.region}" if word.startswith("region=") else word for word in found.split()]
        if not any(word.startswith("region=") for word in words):
            words.insert(0, f"region={self.region}")
        return " ".join(words)


class RegionalFetched(Fetched):
    """What a fallback region served: a ``Fetched`` that names its ``region`` (the cache layer counts it)."""

    __slots__ = ("region",)

    def __init__(self, fetched: Fetched, region: str) -> None:
        super().__init__(dict(fetched), secret=fetched.secret, errors=fetched.errors, version=fetched.version)
        self.region = region

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, region={self.region!r})"


class FailoverSource:
    """One AWS source read in its home region, or in the next fallback region when home cannot answer.

    Everything but ``fetch`` and ``identity`` (and, over S3, ``get_path``'s objects: ``ObjectFailoverSource``) is
    the home source's (its store, the CLI's writes): only the runtime's reads fail over.
    """

    def __init__(
        self,
        home: Source,
        fallbacks: Sequence[str],
        make: Callable[[str], Source],
        *,
        url: str | None = None,
        home_region: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        rest: Backoff = REST,
    ) -> None:
        self.__dict__["home"] = home  # before anything __getattr__ could look for
        self.url = url or home.url
        self.whole_stage = home.whole_stage
        self.persist = home.persist
        self.fallbacks = tuple(fallbacks)
        self.home_region = home_region
        self._make = make
        self._regional: dict[str, Source] = {}
        self.clock = clock  # monotonic; injectable (tests move it past a rest)
        self._rest = rest
        self._lock = threading.Lock()
        self._failures = 0  # failovers in a row: how long home rests
        self._resting_until = -float("inf")
        self._serving: Source = home

    def __repr__(self) -> str:
        return f"FailoverSource({self.url!r}, fallbacks={list(self.fallbacks)!r})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["home"], name)

    # The Source protocol: the home source's settings (build_source sets ttl after building).
    @property
    def ttl(self) -> float | None:
        ttl: float | None = self.home.ttl
        return ttl

    @ttl.setter
    def ttl(self, value: float | None) -> None:
        self.home.ttl = value
        for source in self._regional.values():
            source.ttl = value

    def identity(self) -> str:
        """The store of the region that served last: a fallback's /tmp file is named by its region."""
        serving = self._serving
        identity = getattr(serving, "identity", None)
        return str(identity()) if callable(identity) else serving.url

    @property
    def resting(self) -> bool:
        """Whether the home region is resting after a failover (fetches try the fallbacks first)."""
        return self.clock() < self._resting_until

    def regional(self, region: str) -> Source:
        """The source in a fallback region, built on first use."""
        with self._lock:
            source = self._regional.get(region)
            if source is None:
                source = self._regional[region] = self._make(region)
                source.ttl = self.home.ttl
            return source

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        fetched, region = self._first_answer(
            lambda source, share: self._fetch(source, stage, keys, share=share), what="fetch"
        )
        return fetched if region is None else RegionalFetched(fetched, region)

    def _first_answer(self, call: Callable[[Source, bool], T], *, what: str) -> tuple[T, str | None]:
        """``call(source, share)`` in the home region, then in each fallback while a region cannot answer (home
        last while it rests); the answer and the fallback region that gave it (None: home). ``share`` says that
        another region is still to be tried."""
        order: list[str | None] = [*self.fallbacks, None] if self.resting else [None, *self.fallbacks]
        failed: list[tuple[str, ConfstageError]] = []
        for index, region in enumerate(order):
            source = self.home if region is None else self.regional(region)
            try:
                answer = call(source, index < len(order) - 1)
            except SourceError as exc:
                if not worth_failing_over(exc):
                    if not failed:
                        raise
                    # An answer from a fallback (AccessDenied, a key KMS cannot use there): say where, and why there.
                    raise SourceError(
                        f"in fallback region {region or self.home_region or 'home'}: {_what(exc)} "
                        f"(after {', '.join(f'{name}: {_what(error)}' for name, error in failed)})",
                        source=self.url,
                        operation=getattr(exc, "operation", what),
                    ) from exc
                failed.append((region or self.home_region or "the home region", exc))
                if region is None:
                    self._home_failed(exc)
                continue
            if region is None:
                self._home_answered()
            else:
                self._serving = source
            return answer, region
        where = "; ".join(f"{name}: {_what(exc)}" for name, exc in failed)
        last = failed[-1][1]
        raise SourceError(
            f"every region failed ({where})",
            source=self.url,
            operation=getattr(last, "operation", what),
            throttled=all(getattr(exc, "throttled", False) for _, exc in failed),
        ) from last

    def _fetch(self, source: Source, stage: str, keys: Collection[str], *, share: bool) -> Fetched:
        """One region's fetch; with another region still to try, within half the time left of the deadline.

        The share is the fetch's deadline for its calls (the lite transport ends every request by it), and the
        fetch runs in a thread of its own that is given up on a moment after it: a transport that does not
        enforce deadlines (botocore, bounded only by its read timeout on every attempt) finishes in the
        background, its answer dropped, while the next region answers.
        """
        deadline = _context.DEADLINE.get()
        if not share or deadline is None:
            return source.fetch(stage, keys)
        now = time.monotonic()
        share_ends = now + max(0.0, deadline - now) / 2
        token = _context.DEADLINE.set(share_ends)
        try:
            copied = contextvars.copy_context()
        finally:
            _context.DEADLINE.reset(token)
        outcome: list[Fetched | BaseException] = []
        done = threading.Event()

        def run(outcome: list[Fetched | BaseException]) -> None:
            try:
                outcome.append(copied.run(source.fetch, stage, keys))
            except BaseException as exc:  # handed to the caller below, whatever it is
                outcome.append(exc)
            # The error's traceback holds this frame: without ``outcome`` it holds no way back to the error, so
            # a fetch nobody waits for any more leaves no cycle for the collector.
            del outcome
            done.set()

        threading.Thread(target=run, args=(outcome,), name="confstage-failover", daemon=True).start()
        if not done.wait(max(0.0, share_ends - time.monotonic()) + _GRACE):
            seconds = share_ends - now
            raise SourceError(
                f"no answer within {seconds:.1f} s, half the time left to the fetch",
                source=source.url,
                operation="fetch",
            ) from NetworkError(f"no answer within {seconds:.1f} s")
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _home_failed(self, error: SourceError) -> None:
        with self._lock:
            self._failures += 1
            rest = self._rest.delay(self._failures)
            self._resting_until = self.clock() + rest
        log.warning(
            "%s: the home region failed (%s); trying %s, and home again in %.0f s",
            self.url,
            _what(error),
            ", ".join(self.fallbacks),
            rest,
        )

    def _home_answered(self) -> None:
        with self._lock:
            if self._failures:
                log.debug("%s: the home region answers again", self.url)
            self._failures = 0
            self._resting_until = -float("inf")
            self._serving = self.home


class ObjectFailoverSource(FailoverSource):
    """A ``FailoverSource`` over a source that streams objects (S3): ``get_path``'s reads fail over too."""

    def read_object(
        self, stage: str, key: str, *, etag: str | None, consume: Callable[[ObjectBody | object | None], T]
    ) -> tuple[T, str | None]:
        """``consume`` of the object's ``open_object`` in the home region, then in each fallback while a region
        cannot answer; what ``consume`` gave, and the fallback region that answered (None: home). The whole read
        moves, its body included: a download that fails halfway starts again in the next region (``get_path``
        renames a file into place only once it is complete). Each request is bounded by the transport's timeouts,
        not by a share of a deadline: a download has minutes."""

        def read(source: Source, _: bool) -> T:
            return consume(cast(ObjectSource, source).open_object(stage, key, etag=etag))

        return self._first_answer(read, what="get_path")

    def open_object(self, stage: str, key: str, *, etag: str | None) -> ObjectBody | object | None:
        """``ObjectSource``'s opening of one object, failing over as ``fetch`` does (``read_object`` moves the read
        of its body too)."""
        return self.read_object(stage, key, etag=etag, consume=lambda opened: opened)[0]


def failover(
    source: Source,
    *,
    url: str,
    regions: Sequence[str] | None,
    transport: Transport | None,
    build: Callable[..., Source],
    environ: Mapping[str, str] | None = None,
) -> Source:
    """``source`` with failover to ``regions`` (None: ``CONFSTAGE_FALLBACK_REGIONS``), or as it is without any.

    ``build`` is ``sources.build_source`` (given, not imported: the registry imports this module).

    An S3 URL whose bucket holds ``{region}`` is rebuilt for the home region too (``AWS_REGION`` names it).
    """
    from confstage.transport.selection import environment_region
    from confstage.variables import fallback_regions

    from .base import SourceURL

    parsed = SourceURL(url)
    if getattr(source, "via", None) == "agent":
        return source  # appconfig:// through the Lambda extension: the extension reads its own region
    given = regions is not None
    home_region = environment_region(environ)
    names = check_regions(
        regions if regions is not None else fallback_regions(environ),
        what=f"fallback_regions of {url}" if given else "CONFSTAGE_FALLBACK_REGIONS",
        home=home_region,
    )
    placeholder = parsed.scheme == "s3" and PLACEHOLDER in parsed.netloc
    names = tuple(name for name in names if name != home_region)
    if not names and not placeholder:
        return source
    bare = _without(parsed.url, "fallback_regions")

    def rebuilt(region: str, on: Transport | None) -> Source:
        text = _in_region(bare, region) if placeholder else bare
        return build(text, transport=on, fallback_regions=())

    if placeholder:
        if home_region is None:
            raise ConfigurationError(f"{url}: {PLACEHOLDER} in the bucket needs the home region: set AWS_REGION")
        source = rebuilt(home_region, transport)
        if not names:
            return source
    kind = ObjectFailoverSource if isinstance(source, ObjectSource) else FailoverSource
    return kind(
        source,
        names,
        lambda region: rebuilt(region, RegionTransport(transport, region)),
        url=parsed.url,
        home_region=home_region,
    )


def _what(error: ConfstageError) -> str:
    """What went wrong, without the ``| source=… | operation=…`` a ``SourceError`` appends."""
    return str(error).partition(" | source=")[0]


def _without(url: str, name: str) -> str:
    """``url`` without the query parameter ``name``."""
    head, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_, fragment = query.partition("#")
    kept = [pair for pair in query.split("&") if pair and pair.partition("=")[0] != name]
    return head + ("?" + "&".join(kept) if kept else "") + hash_ + fragment


def _in_region(url: str, region: str) -> str:
    """``url`` with ``{region}`` in its bucket (netloc) filled in."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}{sep}{netloc.replace(PLACEHOLDER, region)}{slash}{tail}"
