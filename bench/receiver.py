"""A fast webhook receiver for benchmarks and chaos tests: asyncio, HTTP/1.1 keep-alive,
one process of its own (so it does not compete for the GIL with what it measures).

    python -m bench.receiver --ports 3 --delay 0.2 --log /tmp/r.log --secrets /tmp/s.json

It listens on ``--ports`` ports of ``--host`` (127.0.0.1) and prints ``PORTS p1 p2 …`` once
ready. Every request is verified against the secret of its path (``{"/hook/0": "whsec_…"}``)
and logged as one tab-separated line: arrival time, path, webhook-id, answer status (0 when
it reset the connection or let the client time out), signature ok (1/0), ``data.title``,
and with ``--log-peer`` the sender's address (to tell senders apart, e.g. per netns host).

Faults (chaos): ``--fail`` answers 500 to that fraction of requests, ``--hang`` holds that
fraction longer than the sender's timeout, ``--reset`` drops that fraction without an
answer; a webhook-id is failed at most ``--max-faults`` times, so every delivery lands once
the sender retries enough.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import random
import socket
import struct
import sys
import time
from collections import Counter


def verify(secret: str, msg_id: str, timestamp: str, signatures: str, body: bytes) -> bool:
    """Standard Webhooks, written here independently of ``webhooks.signing``."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        if abs(time.time() - int(timestamp)) > 300:
            return False
    except ValueError:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in signatures.split())


class Receiver:
    def __init__(self, args) -> None:
        self.args = args
        self.secrets: dict[str, str] = {}
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.faults: Counter[str] = Counter()
        self.random = random.Random(args.seed)

    def secret(self, path: str) -> str | None:
        """The secret of ``path``; the file is (re)read when a path is not known yet, so it may
        be written after the receiver started (its URLs are needed to subscribe)."""
        if not self.args.secrets:
            return None
        if path not in self.secrets:
            try:
                with open(self.args.secrets) as f:
                    self.secrets = json.load(f)
            except (OSError, ValueError):
                pass
        return self.secrets.get(path, "")

    def fault(self, msg_id: str) -> str:
        a = self.args
        if not msg_id or self.faults[msg_id] >= a.max_faults:
            return ""
        roll = self.random.random()
        kind = ""
        if roll < a.fail:
            kind = "fail"
        elif roll < a.fail + a.hang:
            kind = "hang"
        elif roll < a.fail + a.hang + a.reset:
            kind = "reset"
        if kind:
            self.faults[msg_id] += 1
        return kind

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = ""
        if self.args.log_peer:
            peer = "\t" + str((writer.get_extra_info("peername") or ("",))[0])
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                arrived = time.time()
                msg_id = headers.get("webhook-id", "")
                secret = self.secret(path)
                sig_ok = (
                    secret is None
                    or bool(secret)
                    and verify(
                        secret,
                        msg_id,
                        headers.get("webhook-timestamp", ""),
                        headers.get("webhook-signature", ""),
                        body,
                    )
                )
                kind = self.fault(msg_id)
                status = {"fail": 500, "hang": 0, "reset": 0}.get(kind, 204)
                if self.log is not None:
                    try:
                        title = json.loads(body)["data"].get("title", "")
                    except (ValueError, KeyError, AttributeError, TypeError):
                        title = ""
                    self.log.write(
                        f"{arrived:.6f}\t{path}\t{msg_id}\t{status}\t{int(sig_ok)}\t{title}{peer}\n"
                    )
                if kind == "hang":
                    await asyncio.sleep(self.args.hang_seconds)
                    break
                if kind == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if self.args.delay:
                    await asyncio.sleep(self.args.delay)
                reason = b"No Content" if status == 204 else b"Internal Server Error"
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n" % (status, reason))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main(args) -> None:
    receiver = Receiver(args)
    servers = []
    for _ in range(args.ports):
        servers.append(await asyncio.start_server(receiver.handle, args.host, 0, backlog=1024))
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print("PORTS " + " ".join(map(str, ports)), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=1)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--log-peer", action="store_true", help="log the sender's address too")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    p.add_argument("--log", default="")
    p.add_argument("--secrets", default="")
    p.add_argument("--fail", type=float, default=0.0)
    p.add_argument("--hang", type=float, default=0.0)
    p.add_argument("--hang-seconds", type=float, default=3.0)
    p.add_argument("--reset", type=float, default=0.0)
    p.add_argument("--max-faults", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        import uvloop  # noqa: F401 - optional

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(main(parse()))
    except KeyboardInterrupt:
        sys.exit(0)
