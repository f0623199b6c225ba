"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts and can misbehave."""

from __future__ import annotations

import email
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Sink:
    """Accepts mail; `refuse` addresses get 550 at RCPT; `busy` answers 451 to DATA while > 0;
    `close_next` answers 421 and hangs up, while > 0."""

    messages: list[Message] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    busy: int = 0
    close_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:  # fmt: skip
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.close_next > 0:
                self.close_next -= 1
                return "421 4.3.2 Service not available, closing channel"
            if self.busy > 0:
                self.busy -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)


class SmtpServer:
    """aiosmtpd on a free 127.0.0.1 port; `sink` takes the messages, `utf8` offers SMTPUTF8."""

    def __init__(self, sink: Sink | None = None, utf8: bool = False) -> None:
        self.sink = sink or Sink()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port,
                                     enable_SMTPUTF8=utf8)  # fmt: skip

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)
