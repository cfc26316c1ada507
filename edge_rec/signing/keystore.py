"""The publisher's private keys: Ed25519 keys made by ``cryptography`` (through securesystemslib's
``CryptoSigner``), one PEM file each, grouped by TUF role.

    KEYS/<role>/<keyid>.pem     PKCS#8 PEM, mode 0600; encrypted with the passphrase in
                                $EDGE_REC_KEY_PASSPHRASE when that is set
    KEYS/revoked/<keyid>.pem    keys a rotation removed from the root (kept for the audit trail)

Only the roles' public keys go into the repository (in ``root.json``). The root keys sign only
key changes: keep ``KEYS/root`` offline (``docs/updates.md``) and bring it back for ``keys rotate``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge_rec.signing.errors import SigningError

PASSPHRASE_ENV = "EDGE_REC_KEY_PASSPHRASE"
REVOKED_DIR = "revoked"
KEY_SUFFIX = ".pem"


def _crypto() -> tuple[Any, Any]:
    """(CryptoSigner, cryptography's serialization module), or a :class:`SigningError` saying
    which extra to install."""
    try:
        from cryptography.hazmat.primitives import serialization
        from securesystemslib.signer import CryptoSigner
    except ImportError as exc:
        raise SigningError(f"publishing needs python-tuf and cryptography ({exc}); "
                           "install them with: pip install 'edge-rec[publish]'") from None
    return CryptoSigner, serialization


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


class KeyStore:
    """The private keys in folder ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def generate(self, role: str) -> Any:
        """Make a new Ed25519 key for ``role``, save its private half and return its signer."""
        crypto_signer, serialization = _crypto()
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        signer = crypto_signer(private)  # its public key (and key id) derived by securesystemslib
        passphrase = _passphrase()
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        pem = private.private_bytes(encoding=serialization.Encoding.PEM,
                                    format=serialization.PrivateFormat.PKCS8,
                                    encryption_algorithm=encryption)
        folder = self.root / role
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        path = folder / f"{signer.public_key.keyid}{KEY_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return signer

    def signer(self, role: str, key: Any) -> Any | None:
        """The signer for public ``key`` (a TUF ``Key``) of ``role``, or None when its private
        half is not in this store (for example an offline root key)."""
        path = self.root / role / f"{key.keyid}{KEY_SUFFIX}"
        if not path.is_file():
            return None
        crypto_signer, serialization = _crypto()
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), _passphrase())
        except (TypeError, ValueError) as exc:
            hint = (f"set {PASSPHRASE_ENV} to the passphrase it was made with"
                    if "password" in str(exc).lower() or "encrypted" in str(exc).lower()
                    else "the file is damaged")
            raise SigningError(f"{path}: cannot read the private key ({exc}); {hint}") from None
        return crypto_signer(private, key)

    def revoke(self, role: str, keyid: str) -> None:
        """Move ``keyid``'s private key out of ``role`` into ``KEYS/revoked`` (it signs no more)."""
        source = self.root / role / f"{keyid}{KEY_SUFFIX}"
        if source.is_file():
            target = self.root / REVOKED_DIR / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
