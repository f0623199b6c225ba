"""The per-user state dir and the feed secrets kept there (no database import: cheap)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def state_dir() -> Path:
    """PACING_STATE_DIR, else the per-user state dir (created on first use with mode 0700,
    for its owner only; an existing dir keeps its mode)."""
    configured = os.environ.get("PACING_STATE_DIR")
    if configured:
        path = Path(configured)
    else:
        import platformdirs

        path = Path(platformdirs.user_state_dir("pacing", appauthor=False))
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is masked by the umask
    return path


def feed_secrets(directory: Path | None = None) -> list[bytes]:
    """The secrets feed tokens derive from: the current one (generated once, mode 0600) and,
    while a rotation is under way, the previous one (`feed-secret.previous`)."""
    folder = directory or state_dir()
    path = folder / "feed-secret"
    if not path.exists():
        write_secret(path)
    found = [bytes.fromhex(path.read_text().strip())]
    previous = folder / "feed-secret.previous"
    if previous.exists():
        found.append(bytes.fromhex(previous.read_text().strip()))
    return found


def write_secret(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    tmp.replace(path)


def rotate_secret(directory: Path | None = None) -> None:
    """New feed URLs; the old ones keep working until `feed-secret.previous` is removed."""
    folder = directory or state_dir()
    feed_secrets(folder)
    (folder / "feed-secret").replace(folder / "feed-secret.previous")
    write_secret(folder / "feed-secret")


def database_exists() -> bool:
    """Whether a state store may hold anything (lets read-only commands skip it)."""
    return bool(os.environ.get("PACING_DB")) or (state_dir() / "pacing.db").exists()
