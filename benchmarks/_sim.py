"""The machinery of the fleet simulation: a virtual clock, a throttled service, and the SDK's retries.

::

    EventLoop          a heap of (time, sequence, callback); run() pops them in time order
    ├── wait(start)    blocks the calling callback (real code inside a fetch) until an event wakes it
    TokenBucket        ``rate`` tokens a second up to ``burst``; a request takes one or is throttled
    Service            one AWS operation behind a token bucket, with a latency; counts requests per second
    Retries            botocore's standard retry mode: attempts, jittered exponential delays, retry quota
    Call               one paginated SDK call: pages one after another, each retried as ``Retries`` says

Nothing here knows confstage: ``fleet.py`` puts real ``Config`` objects on top of it.

``EventLoop.wait`` is what lets synchronous code (confstage's cache calling ``Source.fetch``) take
virtual time: the callback's thread blocks, another thread carries on running events, and the
event that ends the wait hands control back. Exactly one thread runs at any moment, so the
simulation stays deterministic and needs no locks.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import greenlet

__all__ = ["Call", "EventLoop", "Retries", "Service", "TokenBucket"]


class EventLoop:
    """A virtual clock and a heap of events; ``loop()`` is the current virtual time (an injectable clock)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()  # ties run in the order they were scheduled
        self._root: Any = None  # the greenlet that called run()
        self._spawner: Any = None  # makes new drivers from a shallow stack (a greenlet inherits its starter's depth)
        self._parked: list[Any] = []  # greenlets that ran the loop, ready to run it again
        self._waiting = 0  # callbacks inside wait()
        self._drivers = 0
        self._finished = False
        self._error: BaseException | None = None

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"EventLoop(now={self.now:.3f}, pending={len(self._heap)})"

    @property
    def drivers(self) -> int:
        """Greenlets started so far to keep the loop running while callbacks wait."""
        return self._drivers

    def at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at virtual time ``when`` (never in the past)."""
        if when < self.now:
            raise ValueError(f"cannot schedule at {when} before now ({self.now})")
        heapq.heappush(self._heap, (when, next(self._sequence), callback))

    def after(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` ``delay`` seconds from now."""
        self.at(self.now + delay, callback)

    def run(self) -> None:
        """Run events in time order until none is left; re-raises the first exception a callback raised."""
        if self._root is not None:
            raise RuntimeError("an event loop runs once")
        self._root = greenlet.getcurrent()
        self._spawner = greenlet.greenlet(self._spawn)
        self._spawner.switch()
        self._drive()
        self._parked.clear()  # their stacks hold nothing but the loop: collected, they unwind harmlessly
        if self._error is not None:
            raise self._error

    def wait(self, start: Callable[[Callable[[], None]], None]) -> None:
        """Block this callback until ``wake`` runs; ``start(wake)`` must arrange for an event to call it.

        Meanwhile another greenlet runs the loop; the event that calls ``wake`` switches back here, and
        the greenlet that ran it is parked until the loop needs it again.
        """
        me = greenlet.getcurrent()
        waiting = False
        woken = False

        def wake() -> None:
            nonlocal woken
            woken = True
            if not waiting:  # called from start() itself: there is nothing to switch back to
                return
            self._parked.append(greenlet.getcurrent())
            me.switch()

        start(wake)
        if woken:
            return
        waiting = True
        self._waiting += 1
        (self._parked.pop() if self._parked else self._spawner).switch()
        self._waiting -= 1
        if not woken:
            raise RuntimeError("the simulation ended while this callback waited") from self._error

    def _spawn(self) -> None:
        # Python counts the recursion depth of a greenlet from where it was first switched to: drivers
        # started from waiting callbacks would each start deeper than the last, so they start from here.
        self._root.switch()
        while True:
            self._drivers += 1
            greenlet.greenlet(self._drive, parent=self._root).switch()

    def _drive(self) -> None:
        heap = self._heap
        while not self._finished:
            if not heap:
                if self._waiting:
                    self._error = RuntimeError(f"{self._waiting} callbacks wait for events that never come")
                self._finished = True
                break
            when, _, callback = heapq.heappop(heap)
            self.now = when
            try:
                callback()
            except Exception as exc:  # handed to run(), which re-raises it (the first one: the cause)
                if self._error is None:
                    self._error = exc
                self._finished = True
                break
        if greenlet.getcurrent() is not self._root:
            self._root.switch()  # wherever run()'s greenlet stands, it returns to its loop, which ends


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; starts full. A throttled request takes no token."""

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and room for at least one token")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst}, tokens={self.tokens:.2f})"

    def take(self, now: float) -> bool:
        """Whether a request at ``now`` is admitted (it then takes a token)."""
        if now < self.updated:
            raise ValueError(f"time went backwards: {now} < {self.updated}")
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Service:
    """One AWS operation behind a token bucket: every request is admitted or throttled when sent.

    Requests are counted per whole second of virtual time (``sent`` includes ``throttled``).
    """

    def __init__(self, bucket: TokenBucket, latency: float) -> None:
        self.bucket = bucket
        self.latency = latency
        self.sent: list[int] = []
        self.throttled: list[int] = []

    def __repr__(self) -> str:
        return f"Service({self.bucket!r}, latency={self.latency})"

    def request(self, now: float) -> bool:
        """Send one request at ``now``: True when admitted, False when throttled."""
        second = int(now)
        if second >= len(self.sent):
            grow = second + 1 - len(self.sent)
            self.sent.extend([0] * grow)
            self.throttled.extend([0] * grow)
        self.sent[second] += 1
        if self.bucket.take(now):
            return True
        self.throttled[second] += 1
        return False


class Retries:
    """botocore's ``standard`` retry mode for one client: how many attempts, how long between them.

    A throttled attempt is retried after ``rand * min(2^(n-1), 20)`` seconds while attempts remain and
    the client's retry quota (500, a throttled retry costs 5, a first-try success gives 1 back) allows.
    """

    BASE = 1.0  # seconds: botocore's base scale for throttling errors
    CAP = 20.0
    QUOTA = 500
    RETRY_COST = 5
    SUCCESS_REFUND = 1

    def __init__(self, attempts: int, random: Callable[[], float]) -> None:
        if attempts < 1:
            raise ValueError("at least one attempt")
        self.attempts = attempts
        self.quota = self.QUOTA
        self._random = random

    def __repr__(self) -> str:
        return f"Retries(attempts={self.attempts}, quota={self.quota})"

    def retry_after(self, attempt: int) -> float | None:
        """Seconds before retrying after throttled attempt number ``attempt`` (1-based); None: give up."""
        if attempt >= self.attempts or self.quota < self.RETRY_COST:
            return None
        self.quota -= self.RETRY_COST
        return self._random() * min(self.BASE * 2.0 ** (attempt - 1), self.CAP)

    def succeeded(self, attempt: int) -> None:
        """An attempt was answered: the quota gets back what the retry took, or 1 for a first try."""
        refund = self.SUCCESS_REFUND if attempt == 1 else self.RETRY_COST
        self.quota = min(self.QUOTA, self.quota + refund)


class Call:
    """One paginated SDK call: ``pages`` requests one after another, each retried per ``retries``.

    ``done(ok, at)`` runs when the last page is answered (``ok``; ``at``: when the first page was admitted,
    the time the values are as of) or when a page is throttled past its last attempt (``ok`` False).
    """

    __slots__ = ("_attempt", "_done", "_loop", "_page", "_retries", "_service", "at", "pages", "requests")

    def __init__(
        self,
        loop: EventLoop,
        service: Service,
        retries: Retries,
        pages: int,
        done: Callable[[bool, float], None],
    ) -> None:
        self._loop = loop
        self._service = service
        self._retries = retries
        self._done = done
        self.pages = pages
        self._page = 0
        self._attempt = 1
        self.requests = 0
        self.at = math.nan
        self._send()

    def _send(self) -> None:
        self.requests += 1
        admitted = self._service.request(self._loop.now)
        if admitted and self._page == 0:
            self.at = self._loop.now
        self._loop.after(self._service.latency, self._answered if admitted else self._throttled)

    def _answered(self) -> None:
        self._retries.succeeded(self._attempt)
        self._page += 1
        self._attempt = 1
        if self._page == self.pages:
            self._done(True, self.at)
        else:
            self._send()

    def _throttled(self) -> None:
        delay = self._retries.retry_after(self._attempt)
        if delay is None:
            self._done(False, math.nan)
            return
        self._attempt += 1
        self._loop.after(delay, self._send)
