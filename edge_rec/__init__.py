"""edge-rec: sequential recommendation models from an interaction log to a smart speaker or TV.

Importing this package never imports TensorFlow; the training and conversion modules do, and
are imported only where they are used.
"""

from device_runtime.version import RUNTIME_VERSION as __version__

__all__ = ["__version__"]
