"""The model table: every row's architecture reproduces its published parameter count."""

from __future__ import annotations

import csv
import dataclasses

import pytest
from torch import nn

from autograder import models
from autograder.models import ROUNDED_REPORTS, get_model, load_model_configs, parameter_breakdown, total_parameters

CONFIGS = load_model_configs()


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.model for c in CONFIGS])
def test_architecture_reproduces_reported_parameters(cfg):
    computed = total_parameters(cfg)
    if cfg.model in ROUNDED_REPORTS:
        assert abs(computed / cfg.reported_params - 1) <= ROUNDED_REPORTS[cfg.model], (computed, cfg.reported_params)
    else:
        assert computed == cfg.reported_params, f"{cfg.model}: {computed:,} computed, {cfg.reported_params:,} reported"


def test_table_covers_every_family_and_both_tying_choices():
    assert {c.family for c in CONFIGS} == set(models.FAMILIES)
    assert {c.tied_embeddings for c in CONFIGS if c.family != "bert"} == {True, False}
    assert len({c.model for c in CONFIGS}) == len(CONFIGS), "model names must be unique"
    assert all(c.source.strip() for c in CONFIGS), "every row names its source"


@pytest.mark.parametrize("field", ["vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff"])
def test_every_shape_field_enters_the_count(field):
    """A typo in any field would break the equality above (Qwen2.5 7B: untied, GQA, biases)."""
    cfg = get_model("Qwen2.5 7B")
    changed = dataclasses.replace(cfg, **{field: getattr(cfg, field) * 2})
    assert total_parameters(changed) != cfg.reported_params


def test_learned_positions_count_and_rope_positions_do_not():
    gpt2 = get_model("GPT-2 small")
    assert parameter_breakdown(gpt2)["position_embedding"] == 1024 * 768
    llama = get_model("Llama 3.1 8B")
    assert total_parameters(dataclasses.replace(llama, max_positions=8192)) == llama.reported_params


def test_tied_versus_untied_embeddings():
    llama = get_model("Llama 3.1 8B")
    table = 128256 * 4096
    assert llama.token_embedding_params == table and llama.embedding_params == 2 * table
    tied = dataclasses.replace(llama, tied_embeddings=True)
    assert total_parameters(llama) - total_parameters(tied) == table
    assert tied.embedding_params == table
    qwen = get_model("Qwen2.5 0.5B")
    assert qwen.embedding_params == qwen.token_embedding_params == 151936 * 896


def _torch_model(cfg) -> dict[str, nn.Module]:
    """``cfg``'s architecture built from PyTorch modules on the ``meta`` device (shapes only, no memory), one
    module per part of :func:`parameter_breakdown`, following the families' own module lists (Hugging Face
    ``GPT2Model``, ``BertModel``, ``LlamaModel``/``Qwen2Model``: which layers have biases, which norms exist)."""
    V, D, L, F, P = cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.d_ff, cfg.max_positions
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    meta = {"device": "meta"}

    def layers(make):
        return nn.ModuleList(make() for _ in range(L))

    token = nn.Embedding(V, D, **meta)
    if cfg.family == "gpt2":  # c_attn (fused q, k, v), c_proj; c_fc, c_proj; ln_1, ln_2 per block and ln_f
        position = nn.Embedding(P, D, **meta)
        attention = layers(lambda: nn.ModuleList([nn.Linear(D, 3 * q, **meta), nn.Linear(q, D, **meta)]))
        mlp = layers(lambda: nn.Sequential(nn.Linear(D, F, **meta), nn.GELU(), nn.Linear(F, D, **meta)))
        norms = nn.ModuleList(nn.LayerNorm(D, **meta) for _ in range(2 * L + 1))
        other = nn.ModuleList()
    elif cfg.family == "bert":  # query, key, value, attention output; intermediate, output; pooler
        position = nn.Embedding(P, D, **meta)
        attention = layers(
            lambda: nn.ModuleList([*(nn.Linear(D, q, **meta) for _ in range(3)), nn.Linear(q, D, **meta)])
        )
        mlp = layers(lambda: nn.Sequential(nn.Linear(D, F, **meta), nn.GELU(), nn.Linear(F, D, **meta)))
        norms = nn.ModuleList(nn.LayerNorm(D, **meta) for _ in range(2 * L + 1))  # embeddings' LayerNorm too
        other = nn.ModuleList([nn.Embedding(2, D, **meta), nn.Linear(D, D, **meta)])  # token types, pooler
    else:  # llama, gemma, qwen2: q_proj, k_proj, v_proj, o_proj; gate, up, down; two RMSNorms per layer, norm
        bias = cfg.family == "qwen2"
        position = nn.ModuleList()  # RoPE: nothing learned
        attention = layers(
            lambda: nn.ModuleList(
                [
                    nn.Linear(D, q, bias=bias, **meta),
                    nn.Linear(D, kv, bias=bias, **meta),
                    nn.Linear(D, kv, bias=bias, **meta),
                    nn.Linear(q, D, bias=False, **meta),
                ]
            )
        )
        mlp = layers(
            lambda: nn.ModuleList(
                [
                    nn.Linear(D, F, bias=False, **meta),
                    nn.Linear(D, F, bias=False, **meta),
                    nn.Linear(F, D, bias=False, **meta),
                ]
            )
        )
        norms = nn.ModuleList(nn.RMSNorm(D, **meta) for _ in range(2 * L + 1))
        other = nn.ModuleList()
    if cfg.family == "bert":
        output = nn.ModuleList()  # BertModel is an encoder: no output table
    else:
        output = nn.Linear(D, V, bias=False, **meta)
        if cfg.tied_embeddings:
            output.weight = token.weight  # the LM head shares the token table's parameter
    return {
        "token_embedding": token,
        "position_embedding": position,
        "output_embedding": output,
        "attention": attention,
        "mlp": mlp,
        "norms": norms,
        "other": other,
    }


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.model for c in CONFIGS])
def test_breakdown_matches_a_pytorch_model_of_the_same_architecture(cfg):
    """Each part and the total against ``p.numel()`` of PyTorch modules, each shared parameter counted once (as
    ``Module.parameters()`` does): an independent count, not the breakdown's own sum."""
    parts, seen = {}, set()
    for name, module in _torch_model(cfg).items():  # the token table first: a tied head adds nothing after it
        fresh = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in fresh)
        parts[name] = sum(p.numel() for p in fresh)
    assert parameter_breakdown(cfg) == parts
    model = nn.ModuleDict(_torch_model(cfg))
    assert total_parameters(cfg) == cfg.total_params == sum(p.numel() for p in model.parameters())
    assert all(v >= 0 for v in parameter_breakdown(cfg).values())


def test_gpt3_table_is_a_third_of_a_percent_not_a_fifth():
    gpt3 = get_model("GPT-3 175B")
    assert gpt3.token_embedding_params == 617_558_016
    assert 0.0035 < gpt3.token_embedding_params / gpt3.reported_params < 0.0036
    for name in ("GPT-2 small", "Qwen2.5 0.5B", "Gemma 2B"):
        cfg = get_model(name)
        assert 0.2 < cfg.embedding_params / cfg.total_params < 0.32


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="GPT-2 small"):
        get_model("GPT-5")


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _rows():
    with open(models.CONFIGS_CSV, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("d_model", "4k", "line 3: bad or missing integer"),
        ("tied_embeddings", "yes", "line 3: tied_embeddings must be true or false"),
        ("family", "mamba", "line 3: unknown family"),
        ("n_kv_heads", "5", "line 3: n_heads must be a multiple"),
        ("n_layers", "0", "line 3: fields \\['n_layers'\\] must be positive"),
    ],
)
def test_malformed_rows_fail_with_the_line_number(tmp_path, field, value, message):
    rows = _rows()[:3]
    rows[1][field] = value
    path = tmp_path / "configs.csv"
    _write(path, rows)
    with pytest.raises(ValueError, match=message):
        load_model_configs(path)


# ------------------------------------------------------------------------------------------------ RoPE settings
#: rope_theta and rope_scaling of every RoPE row, as their config.json files state them
ROPE_SETTINGS = {
    "Llama 3.2 1B": (500_000.0, "llama3", 32.0),
    "Llama 3.2 3B": (500_000.0, "llama3", 32.0),
    "Llama 3.1 8B": (500_000.0, "llama3", 8.0),
    "Llama 3.1 70B": (500_000.0, "llama3", 8.0),
    "Llama 3.1 405B": (500_000.0, "llama3", 8.0),
    "Phi-3-mini (128k)": (10_000.0, "longrope", 32.0),
    "Gemma 2B": (10_000.0, "none", None),
    "Gemma 7B": (10_000.0, "none", None),
    "Mistral 7B": (10_000.0, "none", None),
    "Qwen2.5 0.5B": (1_000_000.0, "none", None),
    "Qwen2.5 1.5B": (1_000_000.0, "none", None),
    "Qwen2.5 7B": (1_000_000.0, "none", None),
}


def test_every_rope_row_has_its_published_rope_settings_and_learned_rows_none():
    rope_rows = {c.model for c in CONFIGS if c.position_encoding == "rope"}
    assert rope_rows == set(ROPE_SETTINGS)
    for cfg in CONFIGS:
        if cfg.position_encoding == "learned":
            assert (cfg.rope_theta, cfg.rope_scaling, cfg.rotary_dim) == (None, None, None), cfg.model
            continue
        assert (cfg.rope_theta, cfg.rope_scaling, cfg.rope_factor) == ROPE_SETTINGS[cfg.model], cfg.model
        assert cfg.partial_rotary_factor == 1.0 and cfg.rotary_dim == cfg.head_dim
        assert str(cfg.rope_theta).split(".")[0] in cfg.source.replace(",", ""), "the source cites rope_theta"
        assert cfg.rope_scaling.replace("none", "null") in cfg.source, "the source cites the scaling type"


def test_llama3_and_longrope_rows_carry_their_extension_parameters():
    for name in ("Llama 3.2 1B", "Llama 3.1 8B", "Llama 3.1 405B"):
        cfg = get_model(name)
        assert (cfg.rope_original_max_positions, cfg.rope_low_freq_factor, cfg.rope_high_freq_factor) == (
            8192,
            1.0,
            4.0,
        )
        assert cfg.max_positions == cfg.rope_original_max_positions * 16  # 131072 = 8192 x 16
    phi3 = get_model("Phi-3-mini (128k)")
    assert phi3.rope_original_max_positions == 4096
    assert phi3.rope_factor == phi3.max_positions / phi3.rope_original_max_positions == 32.0
    assert phi3.rope_low_freq_factor is None and phi3.rope_high_freq_factor is None


@pytest.mark.parametrize(
    "row,field,value,message",
    [
        (1, "rope_theta", "10000.0", "learned positions take no RoPE fields"),  # GPT-2 medium
        (7, "rope_scaling", "yarn", "rope_scaling must be one of"),  # Llama 3.2 1B
        (7, "rope_factor", "", "missing \\['rope_factor'\\]"),
        (15, "rope_factor", "4.0", "unexpected \\['rope_factor'\\]"),  # Mistral 7B: no scaling
        (15, "partial_rotary_factor", "0.33", "rotate an even number"),
        (15, "rope_theta", "ten thousand", "bad RoPE number"),
    ],
)
def test_malformed_rope_fields_fail_with_the_line_number(tmp_path, row, field, value, message):
    rows = _rows()[: row + 1]
    rows[row][field] = value
    path = tmp_path / "configs.csv"
    _write(path, rows)
    with pytest.raises(ValueError, match=f"line {row + 2}: .*{message}"):
        load_model_configs(path)
