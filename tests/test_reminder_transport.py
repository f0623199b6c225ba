"""SMTP transport against real aiosmtpd servers: STARTTLS and implicit TLS with AUTH; the
config file; hostile text cannot inject headers; the Maildir outbox default."""

from __future__ import annotations

import asyncio
import datetime as dt
import mailbox
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from smtpd import Sink
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from serving import free_port

from pacing.adapters.files import bundled_guides
from pacing.core.errors import DataError
from pacing.core.timeline import expand
from pacing.reminders.bundle import compose
from pacing.reminders.ledger import Row
from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"cim", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(params=["starttls", "tls"])
def tls_server(request: pytest.FixtureRequest, certificate) -> Iterator[tuple[str, int, Sink]]:
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = Sink()
    port = free_port()
    common: dict[str, Any] = {"hostname": "127.0.0.1", "port": port,
                              "authenticator": authenticator, "auth_exclude_mechanism": ["LOGIN"],
                              "auth_require_tls": request.param == "starttls"}  # fmt: skip
    if request.param == "starttls":
        controller = Controller(sink, tls_context=context, require_starttls=True, **common)
    else:
        client = ssl.create_default_context(cafile=str(cert))
        controller = Controller(sink, ssl_context=context, **common)
        controller._trigger_server = lambda: _tls_probe(port, client)  # type: ignore[method-assign]
    controller.start()
    yield request.param, port, sink
    controller.stop()


def _tls_probe(port: int, context: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(1024)


def message(to: str = "lead@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "cim@pacing.test", to, "test"
    msg["Message-ID"] = "<abc@pacing>"
    msg.set_content("hello")
    return msg


def test_tls_and_auth(tls_server, certificate) -> None:
    mode, port, sink = tls_server
    _, cert = certificate
    results: list[tuple[int, str, str]] = []
    config = SmtpConfig(host="127.0.0.1", port=port, tls=mode, user="cim", password="s3cret",
                        ca_file=str(cert), timeout=10)  # fmt: skip
    asyncio.run(SmtpSender(config).send([message(), message("b@example.org")],
                                        lambda i, o, e: results.append((i, o, e)), lambda: False))  # fmt: skip
    assert [r[1] for r in results] == ["sent", "sent"], results
    assert len(sink.messages) == 2
    results.clear()
    wrong = SmtpConfig(host="127.0.0.1", port=port, tls=mode, user="cim", password="nope",
                       ca_file=str(cert), timeout=10)  # fmt: skip
    asyncio.run(SmtpSender(wrong).send([message()], lambda i, o, e: results.append((i, o, e)),
                                       lambda: False))  # fmt: skip
    assert results[0][1] == "failed" and "535" in results[0][2], results


def test_refused_connection_and_timeout_are_temporary() -> None:
    results: list[tuple[int, str, str]] = []
    config = SmtpConfig(host="127.0.0.1", port=free_port(), tls="none", timeout=2)
    asyncio.run(SmtpSender(config).send([message()], lambda i, o, e: results.append((i, o, e)),
                                        lambda: False))  # fmt: skip
    assert results[0][1] == "retry"


def test_config_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "pacing.toml"
    config.write_text('[smtp]\nhost = "mail.example.org"\ntls = "tls"\nuser = "cim"\n'
                      'from = "cim@example.org"\n')  # fmt: skip
    loaded = SmtpConfig.from_env({"PACING_SMTP_PASSWORD": "pw"}, config)
    assert loaded == SmtpConfig(host="mail.example.org", port=465, tls="tls", user="cim",
                                password="pw", address="cim@example.org")  # fmt: skip
    env = {"PACING_SMTP_HOST": "smtp.local", "PACING_SMTP_PORT": "2525"}
    assert SmtpConfig.from_env(env, config).host == "smtp.local"  # the environment wins
    assert SmtpConfig.from_env({}, tmp_path / "none.toml") is None
    with pytest.raises(DataError, match="PACING_SMTP_TLS"):
        SmtpConfig.from_env({"PACING_SMTP_HOST": "x", "PACING_SMTP_TLS": "ssl3"})


def test_hostile_text_cannot_inject_headers(make_lea) -> None:
    lea = make_lea("sunrise-usd")
    hostile = lea.model_copy(update={"name": "Evil USD\r\nBcc: attacker@example.org"})
    timeline = expand(bundled_guides(), hostile, dt.date(2024, 11, 20))
    item = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"
    key = "sunrise-usd|x\r\nBcc: attacker@example.org|due-14|lortega@sunrise.example.org"
    row = Row(key, "sunrise-usd", "due", (item,), dt.date(2024, 12, 4),
              "lortega@sunrise.example.org", (), dt.datetime(2024, 11, 20, 16, tzinfo=dt.UTC),
              "pending", 0, None)  # fmt: skip
    msg = compose(row, timeline, "cim@pacing.test", None, dt.datetime(2024, 11, 20, tzinfo=dt.UTC))
    raw = msg.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head and "Bcc" not in msg
    assert all("\n" not in str(v) and "\r" not in str(v) for v in msg.values())


def test_maildir_outbox(tmp_path: Path) -> None:
    sender = MaildirSender(tmp_path / "outbox")
    results: list[str] = []
    asyncio.run(sender.send([message()], lambda i, o, e: results.append(o), lambda: False))
    assert results == ["sent"]
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    assert [m["Message-ID"] for m in box] == ["<abc@pacing>"]
