"""Two customers of the example platform (Pro organisations), each with a webhook manager."""

from __future__ import annotations

import pytest

from tests.api.conftest import make_tenant


@pytest.fixture
def acme(db):
    return make_tenant("Acme")


@pytest.fixture
def globex(db):
    return make_tenant("Globex")
