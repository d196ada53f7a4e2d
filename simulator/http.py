"""Firmware downloads over HTTP(S) on the event loop, resumed with Range after an interruption.

One GET per attempt (HTTP/1.0 with `Connection: close`: the body ends with the connection or at
Content-Length, never chunked). An image is hashed as it arrives and never kept: the simulator
needs its SHA-256, not its bytes. After a broken connection the next request asks for
`Range: bytes=<received>-` with `If-Range: <ETag>`: a 206 continues the hash, a 200 (the file
changed) starts again. A 503 with Retry-After (a rollout's download cap) waits and asks again.
"""

import asyncio
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHUNK_BYTES = 16 * 1024
MAX_ATTEMPTS = 8  # broken connections in a row before giving up
MAX_BUSY_ANSWERS = 100  # 503s waited out before giving up
TIMEOUT_SECONDS = 60


class DownloadError(Exception):
    """The image could not be fetched whole (the reason is the message)."""


@dataclass
class Download:
    """Progress of one image: bytes so far and their running hash."""

    url: str
    size: int
    received: int = 0
    etag: str | None = None
    hasher: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    interrupted: int = 0  # connections that broke off
    resumed: int = 0  # 206 answers that continued a partial download
    busy: int = 0  # 503 answers waited out

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


Progress = Callable[[Download], Awaitable[None]]


async def fetch(
    download: Download,
    *,
    context: ssl.SSLContext | None = None,
    cut_at: int | None = None,
    on_progress: Progress | None = None,
    max_busy_wait: float = 60.0,
) -> Download:
    """Fetch the image whole; `cut_at` breaks the first connection off after that many bytes
    (a flaky link), and the next attempt resumes. DownloadError when it cannot be done."""
    failures = 0
    while download.received < download.size:
        cut = cut_at if not download.interrupted else None  # only the first connection breaks
        try:
            retry_after = await asyncio.wait_for(
                _attempt(download, context, cut, on_progress), TIMEOUT_SECONDS
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            download.interrupted += 1
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise DownloadError(f"gave up after {failures} broken attempts: {exc}") from exc
            continue
        if retry_after is not None:
            if download.busy > MAX_BUSY_ANSWERS:
                raise DownloadError(f"still busy after {download.busy} answers of 503")
            await asyncio.sleep(min(retry_after, max_busy_wait))
    if download.received > download.size:
        raise DownloadError(f"received {download.received} bytes, expected {download.size}")
    return download


async def _attempt(download, context, cut_at, on_progress) -> float | None:
    """One request; the seconds to wait when the server said to come back later (503)."""
    parts = urlsplit(download.url)
    secure = parts.scheme == "https"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"not an http(s) URL: {download.url!r}")
    port = parts.port or (443 if secure else 80)
    tls = (context or ssl.create_default_context()) if secure else None
    reader, writer = await asyncio.open_connection(
        parts.hostname,
        port,
        ssl=tls,
        server_hostname=parts.hostname if secure else None,
        limit=CHUNK_BYTES,
    )
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = [f"GET {target} HTTP/1.0", f"Host: {parts.netloc}", "Connection: close"]
        if download.received:
            headers.append(f"Range: bytes={download.received}-")
            if download.etag:
                headers.append(f"If-Range: {download.etag}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status, response = await _head(reader)
        if status == 503:
            download.busy += 1
            try:
                return max(float(response.get("retry-after", "15")), 0.1)
            except ValueError:
                return 15.0
        if status == 200:
            download.received, download.hasher = 0, hashlib.sha256()
        elif status == 206:
            start = _range_start(response.get("content-range", ""))
            if start != download.received:
                raise DownloadError(f"asked for byte {download.received}, got {start}")
            download.resumed += 1
        elif status == 416 and download.received == download.size:
            return None
        else:
            raise DownloadError(f"HTTP {status} from {download.url}")
        download.etag = response.get("etag", download.etag)
        await _body(download, reader, cut_at, on_progress)
        return None
    finally:
        writer.close()


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise DownloadError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _range_start(content_range: str) -> int:
    # "bytes 1000-2999/3000"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        raise DownloadError(f"bad Content-Range {content_range!r}") from None


async def _body(download, reader, cut_at, on_progress) -> None:
    while download.received < download.size:
        want = CHUNK_BYTES
        if cut_at is not None:
            want = min(want, cut_at - download.received)
            if want <= 0:
                raise ConnectionResetError("the link broke off (simulated)")
        chunk = await reader.read(want)
        if not chunk:
            raise ConnectionResetError(f"connection closed at byte {download.received}")
        download.hasher.update(chunk)
        download.received += len(chunk)
        if on_progress is not None:
            await on_progress(download)
