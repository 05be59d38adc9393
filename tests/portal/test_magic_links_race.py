"""One link opened by several browsers at the same moment opens once (the nonce's unique
row decides, not timing): PostgreSQL and MariaDB/MySQL, each request its own transaction."""

import threading

import pytest
from django.db import connections
from django.test import Client

from tests.api.conftest import make_tenant
from tests.test_postgres import SERVER_DATABASE
from webhooks.models import PortalLinkUse
from webhooks.portal import magic_link

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.skipif(not SERVER_DATABASE, reason="needs DATABASE_URL=postgres://… or mysql://…"),
    pytest.mark.django_db(transaction=True),
]


def test_a_link_opened_by_four_browsers_at_once_opens_once():
    link = magic_link(make_tenant("Acme").scope)
    start = threading.Barrier(4)
    statuses = []

    def open_it():
        try:
            start.wait()
            statuses.append(Client().get(link).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [303, 410, 410, 410]
    assert PortalLinkUse.objects.count() == 1
