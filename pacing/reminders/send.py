"""Sending: SMTP through aiosmtplib (one reused connection per batch), or a Maildir outbox when no
SMTP server is configured. Each message's outcome is reported as soon as the server answers."""

from __future__ import annotations

import copy
import io
import logging
import mailbox
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from email.policy import SMTP, SMTPUTF8, EmailPolicy
from email.policy import default as DEFAULT
from pathlib import Path
from typing import Any, Literal, Protocol

from pacing.core.errors import DataError, Problem, one_line
from pacing.reminders import headers

log = logging.getLogger("pacing.reminders")
Outcome = Literal["sent", "retry", "failed"]
Report = Callable[[int, Outcome, str], None]  # index in the batch, outcome, error text


class Sender(Protocol):
    address: str

    def describe(self) -> str: ...

    # `stop()` is asked before each message, in order, once the previous one was reported.
    async def send(
        self, messages: Sequence[Message], report: Report, stop: Callable[[], bool]
    ) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    tls: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    address: str = "pacing@localhost"
    timeout: float = 30.0
    ca_file: str | None = None  # a private CA for the server's certificate

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, config_file: Path | None = None
    ) -> SmtpConfig | None:
        """PACING_SMTP_HOST, _PORT, _TLS (starttls|tls|none), _USER, _PASSWORD, _TIMEOUT,
        _CA_FILE and PACING_MAIL_FROM; or the [smtp] table of a TOML config file (host, port,
        tls, user, timeout, ca_file, from) with the password still from PACING_SMTP_PASSWORD.
        None when no host is configured. A bad value is a ConfigError naming the variable it
        came from (or the file and its key)."""
        e = dict(os.environ if env is None else env)
        origin: dict[str, tuple[str, str]] = {}  # variable -> (file, key) when from the file
        if config_file is not None and config_file.exists():
            from pacing.adapters.files import read_toml

            data, _ = read_toml(config_file)
            table = data.get("smtp", {})
            if not isinstance(table, dict):
                raise ConfigError(str(config_file), "smtp", "must be a table ([smtp])")
            names = {"from": "PACING_MAIL_FROM"}
            for key, value in table.items():
                name = names.get(key, f"PACING_SMTP_{key.upper()}")
                if name not in e:
                    e[name] = str(value)
                    origin[name] = (str(config_file), f"smtp.{key}")

        def bad(name: str, message: str) -> ConfigError:
            file, field = origin.get(name, ("environment", name))
            return ConfigError(file, field, message)

        host = e.get("PACING_SMTP_HOST")
        if not host:
            return None
        tls = e.get("PACING_SMTP_TLS", "starttls")
        if tls not in ("starttls", "tls", "none"):
            raise bad("PACING_SMTP_TLS", f"must be starttls, tls or none, not {_shown(tls)}")
        default_port = {"starttls": 587, "tls": 465, "none": 25}[tls]
        port_text = e.get("PACING_SMTP_PORT", str(default_port)).strip()
        if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text[:6]) <= 65535):
            raise bad(
                "PACING_SMTP_PORT", f"must be a port number (1-65535), not {_shown(port_text)}"
            )
        timeout_text = e.get("PACING_SMTP_TIMEOUT", "30")
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 3600:  # NaN too
            raise bad(
                "PACING_SMTP_TIMEOUT", f"must be seconds (0-3600), not {_shown(timeout_text)}"
            )
        return cls(
            host=host,
            port=int(port_text),
            tls=tls,  # type: ignore[arg-type]
            user=e.get("PACING_SMTP_USER") or None,
            password=e.get("PACING_SMTP_PASSWORD") or None,
            address=e.get("PACING_MAIL_FROM", "pacing@localhost"),
            timeout=timeout,
            ca_file=e.get("PACING_SMTP_CA_FILE") or None,
        )


class ConfigError(DataError):
    """A bad SMTP setting: one line naming the variable (or the config file and its key)."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__([Problem(file, field, message)])


def _shown(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def classify(error: BaseException) -> tuple[Outcome, str]:
    """Temporary (4xx, refused connection, timeout) is retried; permanent (5xx) is not."""
    import aiosmtplib

    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
        return ("retry" if all(400 <= c < 500 for c in codes) else "failed"), text
    if isinstance(error, aiosmtplib.SMTPResponseException):
        outcome: Outcome = "retry" if 400 <= error.code < 500 else "failed"
        return outcome, f"{error.code} {error.message}"
    if isinstance(error, aiosmtplib.SMTPNotSupported):  # SMTPUTF8 for a non-ASCII address
        return "failed", f"the server cannot take this message: {error}"
    return "retry", f"{type(error).__name__}: {error}"


def _reason(text: str) -> str:
    """An outcome's error text: one line, not too long (a server's answer can be several)."""
    text = one_line(" ".join(text.split()))
    return text if len(text) <= 300 else text[:297] + "..."


class Unsendable(Exception):
    """This message cannot be written out (a header that cannot be encoded, not an address):
    it fails on its own, the rest of the batch goes on."""


def addresses(message: Message) -> tuple[str, list[str]]:
    """The envelope: the sender's addr-spec (Sender, else From: "Ana Peña <a@x.org>" gives
    a@x.org) and the recipients' (To, Cc, Bcc)."""
    try:
        field = "Sender" if message["Sender"] is not None else "From"
        if message[field] is None:
            raise ValueError("no From header")
        sender = headers.address(str(message[field]))
        recipients = [headers.addr_spec(a) for name in ("To", "Cc", "Bcc")
                      for value in message.get_all(name, [])
                      for a in headers.parse_addresses(str(value))]  # fmt: skip
    except Exception as e:
        raise Unsendable(f"cannot read the addresses: {type(e).__name__}: {e}") from None
    if not recipients:
        raise Unsendable("no recipient (To, Cc)")
    return sender, recipients


def ascii_address(spec: str) -> str | None:
    """The address in ASCII (a non-ASCII domain in IDNA), None when its local part is not
    ASCII (it needs SMTPUTF8)."""
    try:
        return headers.addr_spec(headers.parse_addresses(spec)[0], utf8=False)
    except ValueError:
        return None


def flatten(message: Message, policy: EmailPolicy[Any]) -> bytes:
    """The message's bytes, without any Bcc; an Unsendable naming the header that cannot be
    encoded ("cannot encode header Subject: ...") or what else failed."""
    try:
        copied = copy.copy(message)
        del copied["Bcc"]
        buffer = io.BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(copied)
        return buffer.getvalue()
    except Exception as error:
        failed = f"{type(error).__name__}: {error}"
        for part in message.walk():
            for name, value in part.items():
                try:
                    policy.fold_binary(name, value)
                except Exception as e:
                    raise Unsendable(f"cannot encode header {name}: {type(e).__name__}: {e}") \
                        from None  # fmt: skip
        raise Unsendable(f"cannot encode the message: {failed}") from None


def _needs_utf8(sender: str, recipients: Sequence[str]) -> bool:
    return any(ascii_address(a) is None for a in [sender, *recipients])


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.address = config.address

    def describe(self) -> str:
        c = self.config
        return f"SMTP {c.host}:{c.port} ({c.tls})"

    async def _connect(self) -> object:
        import aiosmtplib

        c = self.config
        client = aiosmtplib.SMTP(
            hostname=c.host, port=c.port, timeout=c.timeout, use_tls=c.tls == "tls",
            start_tls=c.tls == "starttls", cert_bundle=c.ca_file,
        )  # fmt: skip
        await client.connect()
        if c.user and c.password:
            await client.login(c.user, c.password)
        return client

    async def send(
        self, messages: Sequence[Message], report: Report, stop: Callable[[], bool]
    ) -> None:
        """Each message encoded and sent on its own: one that cannot be encoded, or that the
        server refuses for good, is reported failed and the batch goes on."""
        import aiosmtplib

        client: aiosmtplib.SMTP | None = None
        for index, message in enumerate(messages):
            if stop():
                break  # what was not sent goes back to the ledger
            try:  # the message itself: its envelope and its bytes
                sender, recipients = addresses(message)
                utf8 = _needs_utf8(sender, recipients)
                if not utf8:
                    sender = ascii_address(sender) or sender
                    recipients = [ascii_address(a) or a for a in recipients]
                data = flatten(message, SMTPUTF8 if utf8 else SMTP)
            except Exception as error:  # Unsendable, or anything else about this message
                report(index, "failed", _reason(str(error) if isinstance(error, Unsendable)
                                                else f"{type(error).__name__}: {error}"))  # fmt: skip
                continue
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()  # type: ignore[assignment]
                assert client is not None
                options = await _utf8_options(client) if utf8 else []
                await client.sendmail(sender, recipients, data, mail_options=options)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
                outcome, text = classify(error)
                report(index, outcome, _reason(text))
                if unreachable(error):  # one stuck server costs one timeout, not one per message
                    log.warning("SMTP server unreachable (%s): %d messages back to the ledger",
                                _reason(text), len(messages) - index - 1)  # fmt: skip
                    for rest in range(index + 1, len(messages)):
                        report(rest, "retry", f"not attempted: {_reason(text)}")
                    break
                if not isinstance(error, (aiosmtplib.SMTPRecipientsRefused,
                                          aiosmtplib.SMTPNotSupported)):  # fmt: skip
                    await _close(client)
                    client = None
                continue
            except Exception as error:  # an address aiosmtplib will not write, anything else
                report(index, "failed", _reason(f"cannot send: {type(error).__name__}: {error}"))
                await _close(client)
                client = None
                continue
            report(index, "sent", "")
        await _close(client)


async def _utf8_options(client: object) -> list[str]:
    """MAIL options for a message with a non-ASCII address: SMTPUTF8 (aiosmtplib raises
    SMTPNotSupported when the server does not offer it), 8BITMIME when offered."""
    import aiosmtplib

    assert isinstance(client, aiosmtplib.SMTP)
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            await client.helo()
    return ["SMTPUTF8"] + (["BODY=8BITMIME"] if client.supports_extension("8bitmime") else [])


def unreachable(error: BaseException) -> bool:
    """A connection that timed out or was refused (not an answer from the server): the rest
    of the batch would wait for the same timeout."""
    import aiosmtplib

    connect = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError,
               aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPReadTimeoutError)  # fmt: skip
    return isinstance(error, (TimeoutError, ConnectionRefusedError, *connect))


async def _close(client: object) -> None:
    try:
        if client is not None:
            await client.quit()  # type: ignore[attr-defined]
    except Exception:  # the connection may already be gone
        pass


class MaildirSender:
    """The embedded default: a Maildir outbox any mail client can open (delivery is atomic)."""

    def __init__(self, folder: Path, address: str = "pacing@localhost") -> None:
        self.folder = folder
        self.address = address

    def describe(self) -> str:
        return f"Maildir outbox {self.folder} (no SMTP server configured)"

    async def send(
        self, messages: Sequence[Message], report: Report, stop: Callable[[], bool]
    ) -> None:
        """Each message written on its own as bytes (RFC 2047-encoded headers; UTF-8 ones
        only for a non-ASCII address): one that cannot be encoded is reported failed, a disk
        that cannot take it (full, read-only) is a retry."""
        box: mailbox.Maildir | None = None
        for index, message in enumerate(messages):
            if stop():
                return
            try:
                sender, recipients = addresses(message)
                utf8 = _needs_utf8(sender, recipients)
                data = flatten(message, DEFAULT.clone(utf8=utf8))
            except Exception as error:
                report(index, "failed", _reason(str(error) if isinstance(error, Unsendable)
                                                else f"{type(error).__name__}: {error}"))  # fmt: skip
                continue
            try:
                if box is None:
                    box = mailbox.Maildir(self.folder, create=True)
                box.add(data)
            except OSError as error:  # full, read-only: it may work later
                report(index, "retry", _reason(f"cannot write to {self.folder}: {error}"))
                continue
            except Exception as error:
                report(index, "failed", _reason(f"cannot write to {self.folder}: "
                                                f"{type(error).__name__}: {error}"))  # fmt: skip
                continue
            report(index, "sent", "")
