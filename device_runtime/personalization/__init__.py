"""On-device personalization: a small per-user head learns from its user's feedback beside the
shipped model, and the data stays on the device.

    rec = Recommender.load("bundle", state_dir="/data/edge-rec/users")
    rec.feedback("alice", "show-12", "like")        # play | skip | like | dislike | a number
    rec.recommend(history, k=10, user="alice")       # the shipped ranking, adjusted by alice's head
    rec.forget("alice")                              # every trace of alice is deleted

``docs/personalization.md`` is the guide: the design and why, the bounds, privacy, the measured
effect on real logs.
"""

from device_runtime.personalization.head import (
           KIND_WEIGHTS,
           PersonalizationConfig,
           UserHead,
           event_weight,
)
from device_runtime.personalization.personalizer import Personalizer
from device_runtime.personalization.state_store import (
           MAX_STATE_BYTES,
           StateFileError,
           UserStateStore,
)

__all__ = ["KIND_WEIGHTS", "MAX_STATE_BYTES", "PersonalizationConfig", "Personalizer", "StateFileError",
           "UserHead", "UserStateStore", "event_weight"]
