"""The typed refusals of the signed-update path: one class per way an update is refused.

Every class is an :class:`UpdateError`; the message is one line saying what was refused and
why. :func:`refusal_from` turns python-tuf's exceptions (the engine that verifies) into these,
keeping the original as ``__cause__``. The table in ``docs/updates.md`` maps each attack to the
class that stops it.
"""

from __future__ import annotations

from device_runtime.bundle_schema import BundleError


class UpdateError(Exception):
    """An update was refused or could not run; the device keeps its current bundle."""


class UpdateSetupError(UpdateError):
    """The update path is not usable here: python-tuf missing, an unreadable trust root, or a
    state folder made for another repository."""


class UntrustedMetadataError(UpdateError):
    """Metadata lacks a threshold of valid signatures from the keys its parent role trusts:
    a wrong key, a revoked key or too few signatures."""


class RollbackError(UpdateError):
    """Metadata older than what the device already trusts, or metadata versions that do not
    belong together (mix-and-match)."""


class FreezeError(UpdateError):
    """Metadata past its expiry: the repository (or someone between it and the device) serves a
    stale view."""


class TamperedDownloadError(UpdateError):
    """A downloaded file's length or hashes differ from what the signed metadata says, or the
    download ran past the signed length."""


class IncompatibleReleaseError(UpdateError):
    """The newest release for this device needs a newer runtime or bundle reader."""


class InstallError(UpdateError):
    """The verified bundle failed its load-time self-check or its install; the previous bundle
    keeps serving."""


class RepositoryUnavailableError(UpdateError):
    """The repository could not be reached or answered with an error (no security decision)."""


class UnsignedBundleError(UpdateError, BundleError):
    """A bundle that no trusted release lists, offered while a trust root is configured (for
    example an unsigned sideload through ``reload``)."""


def refusal_from(exc: BaseException, what: str) -> UpdateError:
    """The :class:`UpdateError` for a python-tuf exception raised while doing ``what``."""
    from tuf.api import exceptions as tuf_errors  # the update extra; imported on use

    detail = f"{what}: {type(exc).__name__}: {exc}"
    kinds = (
        (tuf_errors.UnsignedMetadataError, UntrustedMetadataError),
        (tuf_errors.BadVersionNumberError, RollbackError),
        (tuf_errors.ExpiredMetadataError, FreezeError),
        (tuf_errors.LengthOrHashMismatchError, TamperedDownloadError),
        (tuf_errors.DownloadLengthMismatchError, TamperedDownloadError),
        (tuf_errors.DownloadError, RepositoryUnavailableError),
    )
    for tuf_kind, ours in kinds:
        if isinstance(exc, tuf_kind):
            return ours(detail)
    if isinstance(exc, tuf_errors.RepositoryError):  # e.g. a snapshot that drops a targets role
        return RollbackError(detail) if "rollback" in str(exc).lower() else UntrustedMetadataError(detail)
    return RepositoryUnavailableError(detail)
