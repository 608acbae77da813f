"""The vault key: 32 random bytes in a file of the node home, readable by its owner only.

The file is created once, atomically (written aside, then linked into place), so two
processes opening a new vault at once end up with the same key. It wraps every subject
key; losing it loses the vault, so it is backed up apart from the vault file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import nacl.secret
import nacl.utils

from seoulchain.vault.errors import WrongVaultKey

VAULT_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
VAULT_KEY_FILE_MODE = 0o600
VAULT_KEY_PREFIX = "seoulchain-vault-key:"


def create_vault_key(path: Path) -> None:
    """Write a new vault key to `path` (mode 0600) unless a key file is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = nacl.utils.random(VAULT_KEY_BYTES)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{VAULT_KEY_PREFIX}{key.hex()}\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        os.unlink(scratch)
    sync_directory(path.parent)


def load_vault_key(path: Path) -> bytes:
    """Return the vault key in `path`, refusing a file others can read or a malformed one."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text().strip()
    except OSError as exc:
        raise WrongVaultKey(f"cannot read the vault key {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise WrongVaultKey(f"vault key {path} has mode {mode:o}; run: chmod 600 {path}")
    try:
        key = bytes.fromhex(text.removeprefix(VAULT_KEY_PREFIX))
    except ValueError:
        key = b""
    if not text.startswith(VAULT_KEY_PREFIX) or len(key) != VAULT_KEY_BYTES:
        raise WrongVaultKey(f"{path} is not a vault key file ({VAULT_KEY_PREFIX}<64 hex "
                            f"digits>)")
    return key


def sync_directory(directory: Path) -> None:
    """Flush a directory's entries to disk, so a new file's name survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
