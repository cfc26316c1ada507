"""What a signed release says about its bundle: the custom fields of a TUF target, one home for
the publisher that writes them and the device that reads them.

A release is a bundle archive published as a TUF target. Its ``custom`` field holds one object
under :data:`CUSTOM_KEY`; TUF signs it with the rest of the targets metadata, so a device can
trust these fields before it downloads a byte of the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from device_runtime.bundle_schema import SCHEMA_VERSION
from device_runtime.version import RUNTIME_VERSION, parse_version, runtime_can_serve

#: The key of the target's ``custom`` object that holds a :class:`Release`.
CUSTOM_KEY = "edge_rec"
#: Where releases live in the repository's target paths: ``bundles/<profile>/<name>``.
TARGET_PREFIX = "bundles/"
#: The profile segment of a release for every device.
ANY_PROFILE = "any"


class ReleaseFieldError(ValueError):
    """A target's ``custom.edge_rec`` object is missing a field or holds a wrong value."""


@dataclass(frozen=True)
class Release:
    """One published bundle as its signed target describes it.

    - ``model_version``: an integer that grows with every release of the repository; a device
      installs only a version newer than the one it runs;
    - ``bundle_schema`` / ``min_reader_schema``: the bundle manifest's ``schema_version`` and the
      oldest reader schema that serves it (:mod:`device_runtime.bundle_schema`);
    - ``min_runtime_version``: the oldest ``device_runtime`` version that serves it;
    - ``device_profile``: the device profile it was built for, or None for every device;
    - ``manifest_sha256``: the bundle manifest's digest, which covers every bundle file, so a
      bundle directory unpacked from the archive is still tied to this signed release;
    - ``target_path``: the target's path in the repository (not stored in ``custom``).
    """

    model_version: int
    bundle_schema: int
    min_reader_schema: int
    min_runtime_version: str
    device_profile: str | None
    manifest_sha256: str
    target_path: str = ""

    def to_custom(self) -> dict[str, Any]:
        """The target's ``custom`` object: ``{CUSTOM_KEY: {...fields but target_path}}``."""
        fields = asdict(self)
        del fields["target_path"]
        return {CUSTOM_KEY: fields}

    @classmethod
    def from_custom(cls, custom: Mapping[str, Any], target_path: str) -> Release:
        """Read and check the fields a publisher wrote; :class:`ReleaseFieldError` names the
        target and the field otherwise."""
        where = f"target {target_path!r}: custom.{CUSTOM_KEY}"
        fields = custom.get(CUSTOM_KEY) if isinstance(custom, Mapping) else None
        if not isinstance(fields, Mapping):
            raise ReleaseFieldError(f"{where} is missing: not an edge-rec release")
        values: dict[str, Any] = {}
        for name, kind in (("model_version", int), ("bundle_schema", int), ("min_reader_schema", int),
                           ("min_runtime_version", str), ("manifest_sha256", str)):
            value = fields.get(name)
            if type(value) is not kind or (kind is int and value < 1):
                expected = "an integer >= 1" if kind is int else "a string"
                raise ReleaseFieldError(f"{where}.{name} is {str(value)[:40]!r}, expected {expected}")
            values[name] = value
        try:
            parse_version(values["min_runtime_version"], where=f"{where}.min_runtime_version")
        except ValueError as exc:
            raise ReleaseFieldError(str(exc)) from None
        digest = values["manifest_sha256"]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ReleaseFieldError(f"{where}.manifest_sha256 must be 64 lowercase hex digits")
        profile = fields.get("device_profile")
        if profile is not None and (not isinstance(profile, str) or not profile):
            raise ReleaseFieldError(f"{where}.device_profile must be a profile name or null")
        return cls(device_profile=profile, target_path=target_path, **values)

    def serves_profile(self, profile: str | None) -> bool:
        """True for a release made for ``profile`` or for every device (any release when
        ``profile`` is None)."""
        return profile is None or self.device_profile in (None, profile)

    def problem_running(self, runtime_version: str = RUNTIME_VERSION,
                        reader_schema: int = SCHEMA_VERSION) -> str | None:
        """Why this runtime cannot serve the release (None when it can)."""
        if self.min_reader_schema > reader_schema:
            return (f"release {self.model_version} ({self.target_path}) needs a bundle reader of "
                    f"schema {self.min_reader_schema}; this runtime reads up to {reader_schema}: "
                    "upgrade edge-rec's device runtime")
        if not runtime_can_serve(self.min_runtime_version, runtime_version):
            return (f"release {self.model_version} ({self.target_path}) needs device runtime "
                    f"{self.min_runtime_version} or newer; this is {runtime_version}: upgrade "
                    "edge-rec's device runtime")
        return None


def releases_in(targets: Any) -> dict[str, Release]:
    """Every edge-rec release a TUF ``Targets`` payload lists, by target path: targets under
    :data:`TARGET_PREFIX` with valid ``custom.edge_rec`` fields (others are skipped)."""
    found: dict[str, Release] = {}
    for path, target in targets.targets.items():
        if path.startswith(TARGET_PREFIX):
            try:
                found[path] = Release.from_custom(target.custom, path)
            except ReleaseFieldError:
                continue
    return found


def target_path_for(profile: str | None, model_version: int) -> str:
    """The repository path of a release: ``bundles/<profile or any>/bundle-v<N>.tar.gz``."""
    return f"{TARGET_PREFIX}{profile or ANY_PROFILE}/bundle-v{model_version}.tar.gz"
