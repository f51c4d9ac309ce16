"""A loopback HTTP/1.1 load generator: raw asyncio streams over several keep-alive connections, requests prepared
as bytes before the clock starts, so that the client costs a few tens of microseconds of CPU per request (an HTTP
client library costs several times that, and on a 2-core machine the client shares the cores with the server).

- ``open_loop``: requests at a fixed rate whatever the answers (the n-th is due at start + n / rate), each on the
  first idle connection. Latency is counted from the moment a request is written; the lag of each write behind its
  due time is recorded too, so a server (or client) that cannot keep the rate shows as lag, not as a lower rate
  with good latencies.
- ``closed_loop``: every connection sends its next request as soon as the answer to the last one is in: the most
  the server answers (requests/s) at that concurrency.
- ``fetch_all``: each request of a list once, answers kept (status, ETag): warming up and priming a cache.

The client's own CPU time is measured per run (``process_time``), to show that it is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

try:  # the faster event loop where installed (uvicorn's standard extra brings it)
    import uvloop

    _LOOP_FACTORY: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover
    _LOOP_FACTORY = asyncio.new_event_loop


# Stamps come from perf_counter: uvloop's loop.time() counts whole milliseconds, too coarse for a 2 ms target.
clock = time.perf_counter


def get(path: str, host: str, headers: dict[str, str] | None = None) -> bytes:
    """A GET request's bytes."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection failed
    etag: str | None


@dataclass
class Run:
    """What one run measured; latencies in seconds."""

    seconds: float
    latencies: np.ndarray
    lags: np.ndarray
    statuses: Counter[int]
    client_cpu_seconds: float
    due: int = 0  # requests the open loop was to send
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return int(self.latencies.size)

    @property
    def rps(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies.size else None

    def lag_ms(self, q: float) -> float | None:
        return float(np.percentile(self.lags, q) * 1000) if self.lags.size else None

    @property
    def client_cpu_us_per_request(self) -> float | None:
        return self.client_cpu_seconds / self.completed * 1e6 if self.completed else None


class Connection:
    """One keep-alive connection; reopened after the server closes it or it fails."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, payload: bytes) -> Answer:
        try:
            if self.writer is None:
                await self._open()
            assert self.reader is not None and self.writer is not None
            self.writer.write(payload)
            return await self._answer(self.reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return Answer(0, None)

    async def _answer(self, reader: asyncio.StreamReader) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, etag, close = 0, False, None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"etag":
                etag = value.strip().decode("latin-1")
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        if close:
            self.close()
        return Answer(status, etag)


def _freeze_heap() -> None:
    """Leave the heap this process has so far (the seeding's libraries) out of collections while the clock runs: a
    full collection of it stalled the client ~80 ms, counted as the server's latency."""
    gc.collect()
    gc.freeze()


def _run(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=_LOOP_FACTORY) as runner:
        return runner.run(coroutine_factory())


def open_loop(
    host: str, port: int, payloads: Sequence[bytes], rate: float, seconds: float, connections: int, grace: float = 2.0
) -> Run:
    """``rate`` requests a second for ``seconds``, cycling through ``payloads``, over up to ``connections``. A server
    slower than the rate builds a backlog: ``grace`` seconds after the last request was due the run ends, and what
    was not sent or not answered by then is counted (``extra``: unsent, unanswered), not waited for."""
    due_count = max(1, int(rate * seconds))

    async def go() -> Run:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        latencies = np.empty(due_count)
        lags = np.empty(due_count)
        statuses: Counter[int] = Counter()
        done = 0
        pool = [Connection(host, port) for _ in range(connections)]
        for conn in pool:  # connected before the clock starts
            await conn._open()

        async def produce(start: float) -> None:
            for i in range(due_count):
                due = start + i / rate
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.put_nowait((due, payloads[i % len(payloads)]))

        async def work(conn: Connection) -> None:
            nonlocal done
            while True:
                due, payload = await queue.get()
                sent = clock()
                answer = await conn.request(payload)
                latencies[done] = clock() - sent
                lags[done] = sent - due
                done += 1
                statuses[answer.status] += 1
                queue.task_done()

        _freeze_heap()
        cpu = time.process_time()
        start = clock() + 0.01
        workers = [asyncio.create_task(work(conn)) for conn in pool]
        await produce(start)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.join(), timeout=max(0.0, start + seconds + grace - clock()))
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for conn in pool:
            conn.close()
        unsent = queue.qsize()
        extra = {"unsent": float(unsent), "unanswered": float(due_count - done - unsent)}
        return Run(elapsed, latencies[:done], lags[:done], statuses, cpu, due=due_count, extra=extra)

    return _run(go)


def closed_loop(host: str, port: int, payloads: Sequence[bytes], seconds: float, connections: int) -> Run:
    """Back-to-back requests on ``connections`` connections for ``seconds``, cycling through ``payloads``."""

    async def go() -> Run:
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        pool = [Connection(host, port) for _ in range(connections)]
        for conn in pool:
            await conn._open()
        start = clock()
        stop = start + seconds
        counter = iter(range(1 << 62))

        async def work(conn: Connection) -> None:
            while (now := clock()) < stop:
                answer = await conn.request(payloads[next(counter) % len(payloads)])
                latencies.append(clock() - now)
                statuses[answer.status] += 1

        _freeze_heap()
        cpu = time.process_time()
        await asyncio.gather(*(work(conn) for conn in pool))
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        for conn in pool:
            conn.close()
        return Run(elapsed, np.array(latencies), np.zeros(0), statuses, cpu)

    return _run(go)


def fetch_all(host: str, port: int, payloads: Sequence[bytes], connections: int) -> list[Answer]:
    """Each request once, ``connections`` at a time; the answers in the requests' order."""

    async def go() -> list[Answer]:
        answers: list[Answer | None] = [None] * len(payloads)
        indexes = iter(range(len(payloads)))
        pool = [Connection(host, port) for _ in range(max(1, min(connections, len(payloads))))]

        async def work(conn: Connection) -> None:
            for i in indexes:
                answers[i] = await conn.request(payloads[i])
            conn.close()

        await asyncio.gather(*(work(conn) for conn in pool))
        return [a or Answer(0, None) for a in answers]

    return _run(go)
