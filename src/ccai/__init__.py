"""ccai: Collective Constitutional AI end to end.

consultation -> analysis -> constitution -> training -> evaluation. Each stage has one public entry
function returning one result object that keeps every intermediate; the CLI is a thin wrapper.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
