"""Header values that pacing folds itself, for `email.message.EmailMessage` (email.policy.SMTP).

The policy's own folder (Python 3.11) loses, doubles or adds spaces around RFC 2047 encoded
words, and leaves text that looks like an encoded word ("=?utf-8?q?...?=") for the reader to
decode. These values fold so that a reader unfolds and decodes exactly the text given:

- words are separated by single spaces, and a fold is a CRLF put before one of them;
- plain words (printable ASCII, no "=?", not too long) come first, as they are;
- from the first word that is not plain to the end, the text is RFC 2047 encoded words
  (UTF-8, Q or B, at most 75 characters each, whole characters), whose separating spaces a
  reader drops; so every non-ASCII value is encoded, whatever its length, and no line is
  longer than 998 bytes.

Each value is a `str` (the text itself) with the `name` and `fold(policy=...)` that the policy
calls (`EmailPolicy.header_store_parse` keeps such an object, `fold` uses its `fold`). Values
are one line: control characters are escaped (`one_line`), so no value can inject a header.
"""

from __future__ import annotations

import re
import unicodedata
from email import base64mime, quoprimime
from email.headerregistry import Address, HeaderRegistry
from typing import Any, Self

from pacing.core.errors import one_line

EW_MAX = 75  # RFC 2047: an encoded word is at most 75 characters
EW_PREFIX = "=?utf-8?q?"  # (and "=?utf-8?b?"): with "?=", 12 characters around the text
LINE_MAX = 998  # RFC 5322: bytes in a line, CRLF not counted
WIDTH = 78  # RFC 5322's recommended line length
PLAIN_WORD = 66  # a longer word in a text header is encoded (it fits no 78-character line)
_PLAIN = re.compile(r"[!-~]+")  # printable ASCII, no space
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+( [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_Q_SAFE = frozenset(b"-!*+/ abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REGISTRY = HeaderRegistry()


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks (and joined emoji) kept together."""
    out: list[str] = []
    for ch in text:
        joined = out and (unicodedata.category(ch)[0] == "M" or ch in "\u200d\ufe0e\ufe0f"
                          or out[-1].endswith("\u200d"))  # fmt: skip
        if joined:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _q_cost(data: bytes) -> int:
    return sum(1 if b in _Q_SAFE else 3 for b in data)


def _b_cost(data: bytes) -> int:
    return (len(data) + 2) // 3 * 4


def encoded_words(text: str, first: int = EW_MAX, phrase: bool = False) -> list[str]:
    """`text` as RFC 2047 encoded words (UTF-8; Q when it is shorter, else B), each at most
    75 characters (the first at most `first`) and whole characters (a character and its
    combining marks together when they fit): a reader decodes them, dropping the spaces
    between them, to exactly `text`. In a `phrase` (a display name) words are split after a
    space when one is in the word being filled: Python's address parser (3.11) keeps the
    space between two encoded words where RFC 2047 drops it, so a name fitting one encoded
    word reads the same in both, and a longer one is split where a space is anyway."""
    data = text.encode("utf-8")
    q = _q_cost(data) <= _b_cost(data)
    cost, encode = (_q_cost, quoprimime.header_encode) if q else (_b_cost, base64mime.header_encode)
    around = len(EW_PREFIX) + len("?=")
    room = min(first, EW_MAX) - around
    words: list[str] = []
    chunk = ""
    for cluster in _clusters(text):
        for piece in [cluster] if cost(cluster.encode("utf-8")) <= room else list(cluster):
            if chunk and cost((chunk + piece).encode("utf-8")) > room:
                cut = chunk.rfind(" ") + 1 if phrase else 0
                cut = cut if 0 < cut < len(chunk) else len(chunk)
                words.append(chunk[:cut])
                chunk, room = chunk[cut:], EW_MAX - around
            chunk += piece
    if chunk:
        words.append(chunk)
    return [encode(word.encode("utf-8"), "utf-8") for word in words]


class _Encoded(str):
    """Text that `_fold` writes as encoded words."""


class _Phrase(_Encoded):
    """A display name's words that `_fold` writes as encoded words."""


def _text_tokens(text: str, longest: int) -> list[str]:
    """The plain words first, then the rest of `text` (from the first word that is not plain:
    non-ASCII, too long, empty (a doubled space), or with "=?" in it) to be encoded."""
    words = text.split(" ")
    plain = 0
    for word in words:
        if not (word and len(word) <= longest and _PLAIN.fullmatch(word) and "=?" not in word):
            break
        plain += 1
    if plain < len(words) and words[plain:] == [""]:  # a trailing space: encoded with its word
        plain -= 1
    rest = " ".join(words[plain:]) if plain < len(words) else ""
    return words[:plain] + ([_Encoded(rest)] if rest else [])


def _fold(name: str, tokens: list[str], policy: Any) -> str:
    """ "Name: token token ..." on lines of at most the policy's width (a token longer than a
    line gets one of its own), each fold a CRLF before the single space between two tokens;
    an `_Encoded` token becomes encoded words, the first filling the line when it can."""
    width = getattr(policy, "max_line_length", None) or WIDTH
    head = f"{name}:"
    lines = [head]

    def add(token: str) -> None:
        if lines[-1] != head and len(lines[-1]) + 1 + len(token) > width:
            lines.append("")
        lines[-1] += " " + token

    for token in tokens:
        if isinstance(token, _Phrase):  # never split to fill a line (see encoded_words)
            for word in encoded_words(token, EW_MAX, phrase=True):
                add(word)
        elif isinstance(token, _Encoded):
            room = width - len(lines[-1]) - 1
            if room < 24:  # too little for a useful encoded word: the next line
                lines.append("")
                room = width - 1
            for word in encoded_words(token, room):
                add(word)
        else:
            add(token)
    charset = "utf-8" if getattr(policy, "utf8", False) else "ascii"
    for line in lines:
        if len(line.encode(charset)) > LINE_MAX:  # (UnicodeEncodeError when not ASCII)
            raise ValueError(f"a line of {len(line.encode(charset))} bytes (SMTP allows 998)")
    linesep: str = getattr(policy, "linesep", "\n")
    return linesep.join(lines) + linesep


class _Value(str):
    name: str

    def __new__(cls, name: str, value: str) -> Self:
        made = super().__new__(cls, one_line(value))
        made.name = name
        return made

    def __reduce__(self) -> tuple[Any, ...]:  # copy.deepcopy, pickle
        return type(self), (self.name, str(self))

    def tokens(self, policy: Any) -> list[str]:
        raise NotImplementedError

    def fold(self, *, policy: Any) -> str:
        """What email.policy's fold calls for a header object (through `name`)."""
        return _fold(self.name, self.tokens(policy), policy)


class Text(_Value):
    """Unstructured text (Subject): plain words as they are, the rest encoded words."""

    longest = PLAIN_WORD

    def tokens(self, policy: Any) -> list[str]:
        return _text_tokens(str(self), self.longest)


class Token(Text):
    """An identifier (X-Pacing-Key): left as it is, on a line over 78 characters if need be,
    unless it is not ASCII or too long for any SMTP line."""

    longest = 900


class Urls(_Value):
    """A list of <URL> (List-Unsubscribe, RFC 2369): never encoded (no reader would decode
    it there); percent-encode anything that is not printable ASCII before."""

    def tokens(self, policy: Any) -> list[str]:
        words = str(self).split(" ")
        if not all(_PLAIN.fullmatch(w) for w in words):
            raise ValueError(f"not ASCII URLs: {str(self)[:80]!r}")
        return words


class Addresses(_Value):
    """An address list (From, To, Cc): display names as plain words, a quoted string or
    encoded words; addr-specs as they are (a non-ASCII domain as IDNA unless the policy is
    utf8; a non-ASCII local part only with utf8, that is SMTPUTF8)."""

    def tokens(self, policy: Any) -> list[str]:
        utf8 = bool(getattr(policy, "utf8", False))
        out: list[str] = []
        for address in parse_addresses(str(self)):
            spec = addr_spec(address, utf8)
            name = address.display_name
            if not name:
                words = [spec]
            elif _ATOMS.fullmatch(name) and "=?" not in name:
                words = [*name.split(" "), f"<{spec}>"]
            elif name.isascii() and name.isprintable() and name == " ".join(name.split()) \
                    and "=?" not in name:  # fmt: skip
                quoted = name.replace("\\", "\\\\").replace('"', '\\"')
                words = [*f'"{quoted}"'.split(" "), f"<{spec}>"]
            else:
                words = [*_phrase(name), f"<{spec}>"]
            if out:
                out[-1] += ","
            out += words
        return out


def _phrase(name: str) -> list[str]:
    """A display name: its atoms as they are, each run of other words as encoded words (one
    run, spaces and all, when the name is not single-spaced)."""
    if "" in name.split(" "):  # a doubled, leading or trailing space
        return [_Phrase(name)]
    out: list[str] = []
    run: list[str] = []
    for word in name.split(" "):
        if _ATOMS.fullmatch(word) and "=?" not in word and len(word) <= PLAIN_WORD:
            if run:
                out.append(_Phrase(" ".join(run)))
                run = []
            out.append(word)
        else:
            run.append(word)
    if run:
        out.append(_Phrase(" ".join(run)))
    return out


def parse_addresses(value: str) -> list[Address]:
    """The addresses of an address header's value ("Ana Peña <a@x.org>, b@y.org"); a
    ValueError when one is not an address."""
    header: Any = _REGISTRY("To", one_line(value))
    found = list(header.addresses)
    if not found or any(not a.username or not a.domain for a in found):
        raise ValueError(f"not an email address: {one_line(value)[:80]!r}")
    return found


def addr_spec(address: Address, utf8: bool = True) -> str:
    """ "local@domain", with a non-ASCII domain in IDNA when not `utf8`; a ValueError for a
    non-ASCII local part without utf8 (SMTPUTF8)."""
    domain = address.domain
    if not utf8 and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise ValueError(f"cannot write the domain {domain!r} in ASCII: {e}") from None
    spec = Address(username=address.username, domain=domain).addr_spec
    if not utf8 and not spec.isascii():
        raise ValueError(f"the address {spec} is not ASCII: it needs SMTPUTF8")
    return spec


def address(value: str) -> str:
    """The addr-spec of the first address in `value` ("Ana Peña <a@x.org>" -> "a@x.org")."""
    return addr_spec(parse_addresses(value)[0])
