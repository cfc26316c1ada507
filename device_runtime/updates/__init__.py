"""Signed over-the-air bundle updates on the device, with python-tuf (The Update Framework).

    from device_runtime import Recommender
    from device_runtime.updates import DeviceTrust

    rec = Recommender.load("/data/edge-rec/current", trust=DeviceTrust("/data/edge-rec", "root.json"))
    result = rec.update_from("https://updates.example.com/speaker/", trust_root="root.json",
                             dest="/data/edge-rec", profile="smart-speaker")

python-tuf is the ``update`` extra (``pip install 'edge-rec[update]'``); the modules that need it
import it when used, so ``device_runtime`` itself never requires it. ``docs/updates.md`` is the
guide: the repository, key custody, rotation, and each attack with the check that stops it.
"""

from device_runtime.updates.client import UpdateClient, UpdateResult
from device_runtime.updates.errors import (
    FreezeError,
    IncompatibleReleaseError,
    InstallError,
    RepositoryUnavailableError,
    RollbackError,
    TamperedDownloadError,
    UnsignedBundleError,
    UntrustedMetadataError,
    UpdateError,
    UpdateSetupError,
)
from device_runtime.updates.release import Release
from device_runtime.updates.trust import DeviceTrust

__all__ = [
    "DeviceTrust",
    "FreezeError",
    "IncompatibleReleaseError",
    "InstallError",
    "Release",
    "RepositoryUnavailableError",
    "RollbackError",
    "TamperedDownloadError",
    "UnsignedBundleError",
    "UntrustedMetadataError",
    "UpdateClient",
    "UpdateError",
    "UpdateResult",
    "UpdateSetupError",
]
