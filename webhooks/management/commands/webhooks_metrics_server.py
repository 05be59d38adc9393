"""Serve the webhooks metrics on a port of their own: for a host that runs only qcluster
(no web server to include the metrics URL in)."""

from __future__ import annotations

import ipaddress
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from webhooks.conf import conf
from webhooks.metrics import INSTALL_HINT, available
from webhooks.metrics.exposition import multiprocess_dir, render
from webhooks.metrics.views import token_allows


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # one line per scrape every few seconds is noise
        pass


def metrics_app(environ, start_response):
    """WSGI: the same answer as the metrics URL, for a bearer token only (no sessions here)."""
    if conf.METRICS_TOKEN and not token_allows(environ.get("HTTP_AUTHORIZATION")):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="webhooks"')],
        )
        return [b"Metrics need 'Authorization: Bearer <WEBHOOKS_METRICS_TOKEN>'.\n"]
    close_old_connections()
    try:
        body, content_type = render(environ.get("HTTP_ACCEPT"))
    finally:
        close_old_connections()
    start_response("200 OK", [("Content-Type", content_type)])
    return [body]


class Command(BaseCommand):
    help = (
        "Serve the webhooks Prometheus metrics on --addr:--port (for hosts that run only "
        "qcluster). Set PROMETHEUS_MULTIPROC_DIR to the workers' directory."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9464)

    def handle(self, *args, addr, port, **options):
        if not available():
            raise CommandError(INSTALL_HINT)
        try:
            loopback = ipaddress.ip_address(addr).is_loopback
        except ValueError:
            loopback = addr == "localhost"
        if not loopback and not conf.METRICS_TOKEN:
            raise CommandError(
                f"Serving metrics on {addr} (beyond this host) needs WEBHOOKS_METRICS_TOKEN: "
                "the figures cover every tenant."
            )
        if not multiprocess_dir():
            self.stderr.write(
                "PROMETHEUS_MULTIPROC_DIR is not set: only the backlog figures (read from the "
                "database) are served, not the workers' counters."
            )
        server = make_server(addr, port, metrics_app, handler_class=_Quiet)
        self.stdout.write(f"Serving webhooks metrics on http://{addr}:{server.server_port}/")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
