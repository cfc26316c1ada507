"""The publishing side of signed over-the-air updates (TUF, with python-tuf and cryptography):
make a repository's keys and metadata, rotate or revoke keys, publish bundles. The device side
is :mod:`device_runtime.updates`; ``docs/updates.md`` is the guide."""

from edge_rec.signing.errors import SigningError
from edge_rec.signing.keys import (
           KeyChange,
           init_repository,
           replace_keys,
           revoke_key,
           trust_root_path,
)
from edge_rec.signing.publish import publish_bundle, published_releases

__all__ = ["KeyChange", "SigningError", "init_repository", "publish_bundle", "published_releases",
           "replace_keys", "revoke_key", "trust_root_path"]
