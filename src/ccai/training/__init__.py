"""Stage 4: Constitutional AI training (SL-CAI and RL-CAI) from any constitution.

Front door: :func:`train` (one constitution, one run folder), :func:`train_many` (one model per constitution,
same base/data/seeds), :func:`continue_rl`; the config model :class:`TrainingConfig`; the model backends the
evaluation stage shares (:class:`Backend`, :class:`TransformersBackend`, :class:`OpenAIBackend`); and model
preparation (:func:`prepare_smollm2`, :func:`tiny_model_dir`). Heavy libraries load only when used.
"""

from ccai.models.backends import Backend, OpenAIBackend, TransformersBackend, make_backend
from ccai.models.prepare import load_causal_lm, prepare_smollm2, tiny_model_dir
from ccai.training.config import TrainingConfig
from ccai.training.feedback import FeedbackLabeller
from ccai.training.parallel import train_many
from ccai.training.train import TrainingResult, continue_rl, train

__all__ = [
    "Backend",
    "FeedbackLabeller",
    "OpenAIBackend",
    "TrainingConfig",
    "TrainingResult",
    "TransformersBackend",
    "continue_rl",
    "load_causal_lm",
    "make_backend",
    "prepare_smollm2",
    "tiny_model_dir",
    "train",
    "train_many",
]
