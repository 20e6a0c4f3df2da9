"""Language-model backends shared by the constitution, training and evaluation stages.

Why a package of its own: the LM rewriter (constitution), the CAI loop (training) and the benchmarks
(evaluation) all talk to a model through one protocol, and none of those stages may import another's
internals. Here live the protocol and its implementations (:mod:`ccai.models.backends`: local transformers,
any OpenAI-compatible server), model preparation (:mod:`ccai.models.prepare`: the bundled SmolLM2 GGUF turned
into a cached transformers folder, tiny test models) and the OpenAI-compatible server that serves several
models with micro-batching (:mod:`ccai.models.serve`, :mod:`ccai.models.batching`; docs/serving.md). Heavy
libraries load only when used.
"""

from ccai.models.backends import Backend, OpenAIBackend, TransformersBackend, make_backend
from ccai.models.prepare import load_causal_lm, prepare_smollm2, resolve_model, tiny_model_dir

__all__ = [
    "Backend",
    "OpenAIBackend",
    "TransformersBackend",
    "load_causal_lm",
    "make_backend",
    "prepare_smollm2",
    "resolve_model",
    "tiny_model_dir",
]
