"""Real mail servers on 127.0.0.1 for the e-mail tests: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator

import pytest

from connectors.email.devservers import LocalDovecot, LocalSmtp

_boxes = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[LocalDovecot]:
    if shutil.which("dovecot") is None and not os.path.exists("/usr/sbin/dovecot"):
        pytest.fail(
            "dovecot is not installed: run scripts/bootstrap.sh (Debian package dovecot-imapd)"
        )
    with LocalDovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: LocalDovecot) -> str:
    """A fresh mailbox per test, so tests never see each other's mail."""
    name = f"T{next(_boxes)}"
    client = dovecot.client()
    try:
        client.create(f'"{name}"')
    finally:
        client.logout()
    return name


@pytest.fixture
def smtp() -> Iterator[LocalSmtp]:
    with LocalSmtp() as server:
        yield server
