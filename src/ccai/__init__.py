"""ccai: Collective Constitutional AI end to end.

consultation -> analysis -> constitution -> training -> evaluation. Each stage has one public entry
function returning one result object that keeps every intermediate; the CLI is a thin wrapper.
"""

import os as _os

__version__ = "0.1.0"

# The process boundary, set once: nothing in ccai may fetch models or data from a hub at run time, and
# tokenizers must not fork threads under our own process pools. Every entry point (the CLI, a library
# user, the spawned side-by-side run processes) imports this package before any model library.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Offline, the hub's and transformers' bars only report loading weights from disk ("Loading weights"), noise
# between ccai's own progress lines; a user can still turn them on with HF_HUB_DISABLE_PROGRESS_BARS=0.
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

__all__ = ["__version__"]
