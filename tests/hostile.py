"""Hostile receivers: raw-socket HTTP servers on 127.0.0.1 that misbehave on purpose.

Each reads the request, counts it, then behaves as its ``behaviour`` says. They stop by
themselves when ``stop()`` is called (every open connection is closed).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import NamedTuple

BEHAVIOURS = (
    "nul_body",  # 200 with NUL bytes in the body
    "nul_error",  # 500 with NUL bytes in the body
    "nul_header",  # 500 with a NUL in a header value
    "binary",  # 500 with an image/png-ish body
    "invalid_utf8",  # 500 with bytes that are not UTF-8, declared as UTF-8 text
    "drip_headers",  # the status line at once, then the headers one byte a second
    "drip_body",  # headers at once, then the body one byte a second
    "drip_handshake",  # (https) reads the TLS hello, then drips a TLS record
    "never_answers",  # accepts, reads the request, says nothing
    "closes_mid_response",  # half the headers, then closes
    "stall_5s",  # answers 503 after 5 seconds
)

#: How an answer says what becomes of its connection.
CLOSINGS = (
    "keep-alive",  # HTTP/1.1, nothing said: the connection stays open
    "close",  # HTTP/1.1 with ``Connection: close``
    "http/1.0",  # an HTTP/1.0 status line: the connection closes after the answer
)
#: How ``drip_body`` delimits its body.
FRAMINGS = (
    "length",  # Content-Length
    "until_close",  # no length: the body ends when the connection closes
    "chunked",  # one-byte chunks, one a second
    "endless_chunk",  # one chunk announcing a gigabyte, its bytes one a second
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
# A TLS handshake record announcing 16 KiB: a client waits for all of it.
TLS_RECORD = b"\x16\x03\x03\x40\x00" + bytes(16384)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Request(NamedTuple):
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class HostileReceiver:
    """``closing`` and ``framing`` shape the drips' answers (see CLOSINGS, FRAMINGS);
    ``tls``: a server ``ssl.SSLContext`` to speak HTTPS with; ``warm_up``: answer the first
    request on each connection at once and keep it open, so the hostile answer comes on a
    reused connection."""

    def __init__(
        self,
        behaviour: str,
        *,
        drip_interval: float = 1.0,
        closing: str = "keep-alive",
        framing: str = "length",
        tls: ssl.SSLContext | None = None,
        warm_up: bool = False,
    ) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        assert closing in CLOSINGS and framing in FRAMINGS, (closing, framing)
        self.behaviour = behaviour
        self.drip_interval = drip_interval
        self.closing = closing
        self.framing = framing
        self.tls = tls
        self.warm_up = warm_up
        self.requests = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connections: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        scheme = "https" if tls is not None or behaviour == "drip_handshake" else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except OSError:
                    pass
        self._server.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> Request | None:
        """The next request on ``conn``; None when the client closed it."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = int(headers.get("content-length", 0))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        with self._lock:
            self.requests += 1
        parts = lines[0].split(b" ")
        path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        return Request(path, headers, body)

    def behaviour_for(self, request: Request) -> str:
        return self.behaviour

    def _drip(self, conn: socket.socket, data: bytes, *, chunked: bool = False) -> None:
        """Send ``data`` one byte per ``drip_interval`` (as one-byte chunks if ``chunked``)."""
        for byte in data:
            if self._stopped.is_set():
                return
            piece = bytes([byte])
            conn.sendall(b"1\r\n" + piece + b"\r\n" if chunked else piece)
            time.sleep(self.drip_interval)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.behaviour == "drip_handshake":
                conn.recv(65536)  # the client's hello
                self._drip(conn, TLS_RECORD)
                return
            if self.tls is not None:
                conn = self._wrap(conn)
            answered = 0
            while not self._stopped.is_set():
                request = self._read_request(conn)
                if request is None:
                    break
                if self.warm_up and not answered:
                    conn.sendall(OK)
                else:
                    self._answer(conn, self.behaviour_for(request), request)
                    if self.closing != "keep-alive":
                        return  # as announced; also ends an ``until_close`` body
                answered += 1
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _wrap(self, conn: socket.socket) -> ssl.SSLSocket:
        wrapped = self.tls.wrap_socket(conn, server_side=True)
        with self._lock:  # ``stop`` closes the TLS socket (``conn`` is detached now)
            self._connections.append(wrapped)
        return wrapped

    def _head(self, status: str, *headers: bytes) -> bytes:
        version = "HTTP/1.0" if self.closing == "http/1.0" else "HTTP/1.1"
        lines = [f"{version} {status}".encode(), *headers]
        if self.closing == "close":
            lines.insert(1, b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _response(self, status: str, body: bytes, *headers: bytes) -> bytes:
        return self._head(status, *headers, b"Content-Length: %d" % len(body)) + body

    def _answer(self, conn: socket.socket, b: str, request: Request) -> None:
        response = self._response
        if b == "nul_body":
            conn.sendall(
                response(
                    "200 OK", b"ok \x00 a text answer with one NUL", b"Content-Type: text/plain"
                )
            )
        elif b == "nul_error":
            conn.sendall(
                response("500 Oops", b"error \x00\x00\x00 in text", b"Content-Type: text/plain")
            )
        elif b == "nul_header":
            conn.sendall(response("500 Oops", b"bad", b"X-Trace: a\x00b"))
        elif b == "binary":
            conn.sendall(response("500 Oops", PNG, b"Content-Type: image/png"))
        elif b == "invalid_utf8":
            body = b"caf\xe9 au lait, \xff and a longer readable answer"
            conn.sendall(response("500 Oops", body, b"Content-Type: text/plain; charset=utf-8"))
        elif b == "drip_headers":
            head = response("200 OK", b"ok", b"X-Slow: " + b"z" * 200)
            slow = head.index(b"X-Slow")  # the status line (and Connection header) at once
            conn.sendall(head[:slow])
            self._drip(conn, head[slow:])
        elif b == "drip_body":
            self._drip_body(conn, b"x" * 60)
        elif b == "never_answers":  # until the client gives up and closes
            conn.settimeout(0.5)
            while not self._stopped.is_set():
                try:
                    if not conn.recv(1024):
                        return
                except TimeoutError:
                    continue
        elif b == "closes_mid_response":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf an ans")
            conn.close()
        elif b == "stall_5s":
            self._stopped.wait(5)
            conn.sendall(response("503 Busy", b"busy"))

    def _drip_body(self, conn: socket.socket, body: bytes) -> None:
        if self.framing == "length":
            conn.sendall(self._head("200 OK", b"Content-Length: %d" % len(body)))
            self._drip(conn, body)
        elif self.framing == "until_close":
            conn.sendall(self._head("200 OK"))
            self._drip(conn, body)
        elif self.framing == "chunked":
            conn.sendall(self._head("200 OK", b"Transfer-Encoding: chunked"))
            self._drip(conn, body, chunked=True)
        else:  # endless_chunk
            conn.sendall(self._head("200 OK", b"Transfer-Encoding: chunked") + b"40000000\r\n")
            self._drip(conn, body)


class SharedHost(HostileReceiver):
    """Many receivers behind one host:port, told apart by their paths, as customers' URLs
    on one automation platform or chat service: the last segment of the path names the
    behaviour (``/c1/never_answers``), and ``healthy`` answers 204 at once and logs each
    request as ``bench.receiver`` does (arrival, path, webhook-id, status, 1, data.title),
    so ``bench.harness.read_log`` reads it. Its signatures are not checked."""

    def __init__(self, *, log: Path, **kwargs) -> None:
        super().__init__("nul_error", **kwargs)  # the behaviour is chosen per request
        self.log = open(log, "a", buffering=1)

    def url_for(self, name: str, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/{behaviour}"

    def behaviour_for(self, request: Request) -> str:
        behaviour = request.path.rstrip("/").rsplit("/", 1)[-1]
        return behaviour if behaviour in BEHAVIOURS or behaviour == "healthy" else "nul_error"

    def _answer(self, conn: socket.socket, b: str, request: Request) -> None:
        if b != "healthy":
            super()._answer(conn, b, request)
            return
        arrived = time.time()
        conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        try:
            title = json.loads(request.body)["data"].get("title", "")
        except (ValueError, KeyError, AttributeError, TypeError):
            title = ""
        msg_id = request.headers.get("webhook-id", "")
        with self._lock:
            if not self.log.closed:  # a request answered while stopping is not logged
                self.log.write(f"{arrived:.6f}\t{request.path}\t{msg_id}\t204\t1\t{title}\n")

    def stop(self) -> None:
        super().stop()
        with self._lock:
            self.log.close()
