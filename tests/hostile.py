"""Hostile receivers: raw-socket HTTP servers on 127.0.0.1 that misbehave on purpose.

Each reads the request, counts it, then behaves as its ``behaviour`` says. They stop by
themselves when ``stop()`` is called (every open connection is closed).
"""

from __future__ import annotations

import socket
import threading
import time

BEHAVIOURS = (
    "nul_body",  # 200 with NUL bytes in the body
    "nul_error",  # 500 with NUL bytes in the body
    "nul_header",  # 500 with a NUL in a header value
    "binary",  # 500 with an image/png-ish body
    "invalid_utf8",  # 500 with bytes that are not UTF-8, declared as UTF-8 text
    "drip_headers",  # the status line and headers, one byte a second
    "drip_body",  # headers at once, then the body one byte a second
    "never_answers",  # accepts, reads the request, says nothing
    "closes_mid_response",  # half the headers, then closes
    "stall_5s",  # answers 503 after 5 seconds
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


class HostileReceiver:
    def __init__(self, behaviour: str, *, drip_interval: float = 1.0) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour
        self.drip_interval = drip_interval
        self.requests = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connections: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
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
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bool:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            body += chunk
        with self._lock:
            self.requests += 1
        return True

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        for byte in data:
            if self._stopped.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(self.drip_interval)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stopped.is_set() and self._read_request(conn):
                self._answer(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, conn: socket.socket) -> None:
        b = self.behaviour

        def response(status: str, body: bytes, *headers: bytes) -> bytes:
            lines = [f"HTTP/1.1 {status}".encode(), *headers, b"Content-Length: %d" % len(body)]
            return b"\r\n".join(lines) + b"\r\n\r\n" + body

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
            self._drip(conn, response("200 OK", b"ok", b"X-Slow: " + b"z" * 200))
        elif b == "drip_body":
            body = b"x" * 200
            conn.sendall(response("200 OK", b"")[: -len(b"0\r\n\r\n")] + b"%d\r\n\r\n" % len(body))
            self._drip(conn, body)
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
