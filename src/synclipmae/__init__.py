"""synclipmae: synchronization-aware, factorized talking-face representations (SyncLipMAE).

Public API only: `SyncLipMAE`, `create_model`, `load_model`, `__version__`. The model module (and so
torch) is imported on first use, so `import synclipmae.data.synth` stays light.
"""
from synclipmae.version import __version__

__all__ = ["SyncLipMAE", "create_model", "load_model", "__version__"]


def __getattr__(name):
    if name in ("SyncLipMAE", "create_model", "load_model"):
        from synclipmae.models import synclipmae as _model

        return getattr(_model, name)
    raise AttributeError(f"module 'synclipmae' has no attribute {name!r}")
