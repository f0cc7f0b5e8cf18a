"""``autograder.book.rope_scaling`` is a twin of Hugging Face Transformers' RoPE code: every ``rope_type`` on real
configurations (``autograder/data/rope_configs.json``, built here with Transformers' own config classes) and on every
RoPE row of the course's model table, frequencies and attention factor, relative difference below 1e-6.

Transformers is an independent oracle: it computes in float32 from its own parsing of the same ``config.json`` fields.
Nothing is downloaded: the configs are built from dicts, offline (``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from autograder import models
from autograder.book import rope_scaling as rs

os.environ["HF_HUB_OFFLINE"] = "1"  # set before transformers is first imported: no hub access, whatever a test does
os.environ["TRANSFORMERS_OFFLINE"] = "1"
transformers = importlib.import_module("transformers")
ROPE_INIT_FUNCTIONS = importlib.import_module("transformers.modeling_rope_utils").ROPE_INIT_FUNCTIONS

TOLERANCE = 1e-6
#: the Transformers model package of each config class (where its RotaryEmbedding module lives)
MODEL_PACKAGE = {
    "LlamaConfig": "llama",
    "MistralConfig": "mistral",
    "Qwen2Config": "qwen2",
    "DeepseekV3Config": "deepseek_v3",
    "GptOssConfig": "gpt_oss",
    "Phi3Config": "phi3",
    "PhiConfig": "phi",
    "Gemma3TextConfig": "gemma3",
    "GemmaConfig": "gemma",
}


def _hf_config(config_class: str, fields: dict):
    return getattr(transformers, config_class)(**fields)


def _rotary_module(config_class: str):
    package = MODEL_PACKAGE[config_class]
    module = importlib.import_module(f"transformers.models.{package}.modeling_{package}")
    (cls,) = [getattr(module, n) for n in dir(module) if n.endswith("RotaryEmbedding") and not n.startswith("_")]
    return cls


def _layer_types(hf_config) -> list[str | None]:
    params = hf_config.rope_parameters
    return [None] if "rope_theta" in params else sorted(params)


def _transformers(hf_config, config_class, seq_len, layer_type):
    """Transformers' (inv_freq, attention_factor): ROPE_INIT_FUNCTIONS, or the model's own default computation."""
    params = hf_config.rope_parameters if layer_type is None else hf_config.rope_parameters[layer_type]
    kwargs = {} if layer_type is None else {"layer_type": layer_type}
    if params["rope_type"] == "default":
        freqs, attention = _rotary_module(config_class).compute_default_rope_parameters(hf_config, **kwargs)
    else:
        freqs, attention = ROPE_INIT_FUNCTIONS[params["rope_type"]](hf_config, seq_len=seq_len, **kwargs)
    return freqs.double().numpy(), float(attention), params["rope_type"]


def _assert_twins(ours, theirs):
    (freqs, attention), (hf_freqs, hf_attention, rope_type) = ours, theirs
    assert freqs.shape == hf_freqs.shape, rope_type
    assert np.max(np.abs(freqs / hf_freqs - 1)) < TOLERANCE, rope_type
    assert abs(attention / hf_attention - 1) < TOLERANCE, rope_type


def _lengths(fields: dict) -> list[int | None]:
    """At construction, short, at and just past the original context, at and past the configured maximum."""
    scaling = fields.get("rope_scaling") or {}
    original = fields.get("original_max_position_embeddings") or scaling.get("original_max_position_embeddings")
    maximum = fields["max_position_embeddings"]
    edges = [original, original + 1] if original else []
    return [None, 1, *edges, maximum, maximum + 1, 3 * maximum]


CASES = [
    (name, layer, seq_len)
    for name in rs.rope_config_names()
    for layer in _layer_types(_hf_config(rs.rope_config(name)["config_class"], rs.rope_config(name)["config"]))
    for seq_len in _lengths(rs.rope_config(name)["config"])
]


@pytest.mark.parametrize("name,layer_type,seq_len", CASES, ids=[f"{n}-{lt}-{s}" for n, lt, s in CASES])
def test_real_configs_match_transformers(name, layer_type, seq_len):
    entry = rs.rope_config(name)
    hf = _hf_config(entry["config_class"], entry["config"])
    ours = rs.config_inv_freq(entry["config"], seq_len=seq_len, layer_type=layer_type)
    _assert_twins(ours, _transformers(hf, entry["config_class"], seq_len, layer_type))


def test_the_real_configs_cover_every_rope_type_and_the_variants_that_matter():
    types, features = set(), set()
    for name in rs.rope_config_names():
        entry = rs.rope_config(name)
        params = rs.rope_parameters(entry["config"])
        for p in [params] if "rope_theta" in params else params.values():
            types.add(p["rope_type"])
            features |= {k for k in ("mscale", "mscale_all_dim", "truncate", "partial_rotary_factor") if k in p}
        if "qk_rope_head_dim" in entry["config"]:
            features.add("qk_rope_head_dim")
        assert entry["source"].strip(), name
    assert types == set(rs.ROPE_TYPES)
    assert features == {"mscale", "mscale_all_dim", "truncate", "partial_rotary_factor", "qk_rope_head_dim"}


@pytest.mark.parametrize("name", rs.rope_config_names())
def test_a_models_rotary_module_at_construction_matches(name):
    """What Transformers' RotaryEmbedding module holds after ``__init__``: the frequencies for no sequence yet."""
    entry = rs.rope_config(name)
    hf = _hf_config(entry["config_class"], entry["config"])
    module = _rotary_module(entry["config_class"])(hf)
    for layer_type in _layer_types(hf):
        prefix = "" if layer_type is None else f"{layer_type}_"
        held = getattr(module, f"{prefix}inv_freq").double().numpy()
        scaling = float(getattr(module, f"{prefix}attention_scaling"))
        _assert_twins(rs.config_inv_freq(entry["config"], layer_type=layer_type), (held, scaling, name))


#: variants no shipped config above exercises, built on real shapes: Phi-2's partial rotary head with every scaling
#: type, YaRN with unequal mscales and explicit attention factors, LongRoPE with an explicit factor
PHI2 = rs.rope_config("Phi-2")["config"]
PHI35 = rs.rope_config("Phi-3.5-mini-instruct")["config"]
VARIANTS = {
    "partial-linear": ("PhiConfig", {**PHI2, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}),
    "partial-dynamic": ("PhiConfig", {**PHI2, "rope_scaling": {"rope_type": "dynamic", "factor": 4.0}}),
    "partial-yarn": ("PhiConfig", {**PHI2, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}),
    "partial-llama3": (
        "PhiConfig",
        {
            **PHI2,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 512,
            },
        },
    ),
    "yarn-mscales": (
        "DeepseekV3Config",
        {
            **rs.rope_config("DeepSeek-V3")["config"],
            "rope_scaling": {
                "type": "yarn",
                "factor": 40,
                "mscale": 0.707,
                "mscale_all_dim": 1.0,
                "original_max_position_embeddings": 4096,
            },
        },
    ),
    "yarn-attention-factor": (
        "Qwen2Config",
        {
            **rs.rope_config("Qwen2.5 7B Instruct, YaRN x4")["config"],
            "rope_scaling": {"type": "yarn", "factor": 4.0, "attention_factor": 1.3, "beta_fast": 16, "beta_slow": 2},
        },
    ),
    "longrope-factor": (
        "Phi3Config",
        {**PHI35, "rope_scaling": {**PHI35["rope_scaling"], "factor": 16.0}},
    ),
    "longrope-attention-factor": (
        "Phi3Config",
        {**PHI35, "rope_scaling": {**PHI35["rope_scaling"], "attention_factor": 1.1}},
    ),
}


def _resolved(fields: dict) -> dict:
    scaling = dict(fields.get("rope_scaling") or {})
    for key in ("short_factor", "long_factor"):
        if isinstance(scaling.get(key), str):
            scaling[key] = rs.longrope_factors("Phi-3.5-mini-instruct")[key]
    return {**fields, "rope_scaling": scaling} if scaling else fields


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("seq_len", [None, 4096, 4097, 20_000])
def test_variants_match_transformers(variant, seq_len):
    config_class, fields = VARIANTS[variant]
    fields = _resolved(fields)
    hf = _hf_config(config_class, fields)
    _assert_twins(rs.config_inv_freq(fields, seq_len=seq_len), _transformers(hf, config_class, seq_len, None))


#: the Transformers config class of each family of the model table
TABLE_CLASS = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "gemma": "GemmaConfig"}


@pytest.mark.parametrize(
    "cfg", [c for c in models.load_model_configs() if c.position_encoding == "rope"], ids=lambda c: c.model
)
@pytest.mark.parametrize("seq_len", [None, 4097])
def test_every_rope_row_of_the_model_table_matches_transformers(cfg, seq_len):
    fields = {
        "hidden_size": cfg.d_model,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_positions,
    }
    config_class = "Phi3Config" if cfg.rope_scaling == "longrope" else TABLE_CLASS[cfg.family]
    if config_class == "Phi3Config":  # Phi-3 keeps the original context outside rope_scaling
        fields.pop("head_dim")
        fields["original_max_position_embeddings"] = cfg.rope_original_max_positions
    hf = _hf_config(config_class, {**fields, "rope_parameters": rs.table_rope_parameters(cfg)})
    _assert_twins(rs.model_inv_freq(cfg, seq_len=seq_len), _transformers(hf, config_class, seq_len, None))


@pytest.mark.parametrize("name", rs.rope_config_names())
def test_rope_parameters_is_transformers_v5_form(name):
    """What the chapter shows as a config's ``rope_parameters`` is what Transformers 5 builds from the same fields."""
    entry = rs.rope_config(name)
    ours = rs.rope_parameters(entry["config"])
    theirs = _hf_config(entry["config_class"], entry["config"]).rope_parameters
    nested = "rope_theta" not in ours
    assert nested == ("rope_theta" not in theirs)
    for layer in sorted(ours) if nested else [None]:
        mine, hf = (ours, theirs) if layer is None else (ours[layer], theirs[layer])
        assert {k: v for k, v in hf.items() if k in mine and k != "type"} == {k: v for k, v in mine.items()}
        assert hf["rope_type"] == mine["rope_type"]


@pytest.mark.parametrize("name", rs.nope_layer_names())
def test_nope_layer_pattern_is_transformers(name):
    entry = rs.nope_layer_config(name)
    hf = _hf_config(entry["config_class"], entry["config"])
    fields = entry["config"]
    mask = rs.rope_layer_mask(fields["num_hidden_layers"], fields["no_rope_layer_interval"])
    assert mask == list(hf.no_rope_layers) and 0 < mask.count(0) < len(mask)
    assert f"num_hidden_layers {fields['num_hidden_layers']}" in entry["source"]
