"""A bounded HTTP/1.1 load generator, used only when wrk is not installed.

``python -m benchmarks.loadgen --url http://127.0.0.1:PORT/path --header "Name: value"``
keeps ``--connections`` keep-alive connections busy with GET requests for ``--duration``
seconds or ``--max-requests`` requests, whichever ends first, and prints one JSON object
(the fields of ``over_http.LoadResult``). Loopback URLs only. Being Python, it saturates a
server less than wrk does: compare its numbers only with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Tally:
    remaining: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the server closes the connection."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split()[1])
    length = 0
    chunked = closes = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            closes = value == "close"
    if chunked:
        await _read_chunks(reader)
    else:
        await reader.readexactly(length)
    return status, closes


async def _read_chunks(reader: asyncio.StreamReader) -> None:
    """Read a chunked body (uvicorn sends one when the response has no Content-Length)."""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            break
        await reader.readexactly(size + 2)  # the chunk and its CRLF
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # trailers


async def _client(host: str, port: int, request: bytes, deadline: float, tally: Tally) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while tally.remaining > 0 and time.perf_counter() < deadline:
        tally.remaining -= 1
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, port)
            reader, writer = connection
            start = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status, closes = await _read_response(reader)
            tally.latencies.append(time.perf_counter() - start)
            if not 200 <= status < 400:
                tally.failures += 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            tally.failures += 1
            closes = True
        if closes and connection is not None:
            connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def generate(
    url: str, header: str, connections: int, duration: float, max_requests: int
) -> dict[str, float | int]:
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise SystemExit(f"loadgen only loads loopback URLs with a port, not {url!r}")
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"{header}\r\nConnection: keep-alive\r\n\r\n"
    ).encode("latin-1")
    tally = Tally(remaining=max_requests)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _client(parts.hostname, parts.port, request, start + duration, tally)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    latencies = sorted(tally.latencies)
    return {
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "requests": len(latencies),
        "failures": tally.failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--header", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    arguments = parser.parse_args()
    result = asyncio.run(
        generate(
            arguments.url,
            arguments.header,
            arguments.connections,
            min(arguments.duration, 30.0),
            arguments.max_requests,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
