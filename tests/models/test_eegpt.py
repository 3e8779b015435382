"""EEGPT probe: checkpoint layout, refusals, channel dictionary, probe, export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from emomon.errors import ConfigError, ModelError
from emomon.models import MODELS, build_model
from emomon.models.eegpt import (
    CHANNELS,
    N_TIMES,
    EEGPTEncoder,
    channel_ids,
    load_encoder,
    random_encoder,
    save_checkpoint,
)

CH = ("Fp1", "fp2", "Cz", "O1.", "PZ")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random encoder in the authors' Lightning layout, plus pretraining
    modules the loader must ignore."""
    path = tmp_path_factory.mktemp("eegpt") / "tiny.ckpt"
    save_checkpoint(random_encoder("tiny", seed=3), path)
    ck = torch.load(path, weights_only=True)
    ck["state_dict"]["encoder.chan_embed.weight"] = torch.zeros(62, 32)
    ck["state_dict"]["predictor.mask_token"] = torch.zeros(1, 1, 16)
    ck["epoch"] = 199
    torch.save(ck, path)
    return path


def _probe(ckpt: Path, **kw: object) -> torch.nn.Module:
    return build_model(
        "eegpt",
        input_shape=(len(CH), N_TIMES),
        tasks={"valence": 2, "arousal": 3},
        checkpoint=str(ckpt),
        ch_names=CH,
        num_heads=4,
        **kw,
    )


def test_channel_dictionary_maps_names_and_refuses_unknown() -> None:
    assert len(CHANNELS) == 62
    assert len(set(CHANNELS)) == 62
    assert channel_ids(["Fp1", "FPz", "o2", "Cz."]) == [0, 1, 61, 29]
    with pytest.raises(ConfigError) as err:
        channel_ids(["Fp1", "A1", "EOG", "Cz"])
    msg = str(err.value)
    assert "A1, EOG" in msg
    assert "\n" not in msg


def test_loads_target_encoder_and_freezes_it(ckpt: Path) -> None:
    ref = random_encoder("tiny", seed=3).eval()
    enc = load_encoder(ckpt, num_heads=4)
    assert not any(p.requires_grad for p in enc.parameters())
    assert len(enc.blocks) == 2
    assert enc.embed_num == 2
    assert enc.embed_dim == 32
    x = torch.randn(3, 4, 256) * 0.02
    ids = torch.tensor([0, 11, 29, 60])
    out = enc(x, ids)
    assert out.shape == (3, 4, 2, 32)
    torch.testing.assert_close(out, ref(x, ids))


def test_attention_matches_torch_sdpa(ckpt: Path) -> None:
    """The written-out attention equals torch's scaled_dot_product_attention."""
    attn = load_encoder(ckpt, num_heads=4).blocks[0].attn
    x = torch.randn(5, 7, 32)
    b, t, d = x.shape
    q, k, v = attn.qkv(x).reshape(b, t, 3, 4, d // 4).permute(2, 0, 3, 1, 4)
    want = attn.proj(
        F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
    )
    torch.testing.assert_close(attn(x), want)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"target_encoder.x": torch.zeros(1)}, "no 'state_dict'"),
        (
            {"state_dict": {"encoder.chan_embed.weight": torch.zeros(62, 8)}},
            "no 'target_encoder.'",
        ),
        (
            {"state_dict": {"target_encoder.chan_embed.weight": torch.zeros(62, 8)}},
            "do not form",
        ),
        ("not torch", "weights_only"),
        (None, "does not exist"),
    ],
)
def test_other_layouts_are_refused_in_one_line(
    tmp_path: Path, content: object, needle: str
) -> None:
    path = tmp_path / "other.ckpt"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ModelError) as err:
        load_encoder(path)
    msg = str(err.value)
    assert needle in msg
    assert str(path) in msg
    assert "\n" not in msg
    assert "target_encoder.*" in msg  # names what it expected


def test_probe_shapes_trainable_part_and_constraints(ckpt: Path) -> None:
    model = _probe(ckpt)
    assert "eegpt" in MODELS
    x = torch.randn(4, len(CH), N_TIMES) * 20.0  # microvolts
    out = model(x)
    assert list(out) == ["valence", "arousal"]
    assert out["valence"].shape == (4, 2)
    assert out["arousal"].shape == (4, 3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    assert not any(n.startswith("encoder.") for n in trainable)
    assert {n.split(".")[0] for n in trainable} == {"chan_conv", "probe", "heads"}
    model.train()
    assert not model.encoder.training
    assert model.dropout.training
    sum(o.sum() for o in model(x).values()).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    # forward is pure: weights grown past the max-norm stay until apply_constraints
    with torch.no_grad():
        model.heads[0].weight.mul_(100.0)
        model.chan_conv.weight.mul_(100.0)
    model.eval()
    model(x)
    assert model.heads[0].weight.detach().norm(dim=1).max() > 0.25
    model.apply_constraints()
    assert float(model.heads[0].weight.detach().norm(dim=1).max()) <= 0.25 + 1e-6
    conv_norms = model.chan_conv.weight.detach().reshape(len(CH), -1).norm(dim=1)
    assert float(conv_norms.max()) <= 1.0 + 1e-6
    assert float(model.probe.weight.detach().norm(dim=1).max()) <= 1.0 + 1e-6


def test_probe_reads_microvolts_as_millivolts(ckpt: Path) -> None:
    """The probe scales µV by 1e-3 before the encoder (pretrained on mV)."""
    model = _probe(ckpt).eval()
    x = torch.randn(2, len(CH), N_TIMES) * 30.0
    h = model.chan_conv(x * 1e-3)
    want = model.probe(model.encoder(h, model.chan_ids).flatten(2))
    torch.testing.assert_close(model.features(x), want)


def test_probe_refuses_bad_settings(ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="needs the EEGPT checkpoint"):
        build_model("eegpt", input_shape=(5, N_TIMES), tasks={"v": 2}, ch_names=CH)
    with pytest.raises(ConfigError, match="1024-sample windows"):
        build_model(
            "eegpt",
            input_shape=(5, 512),
            tasks={"v": 2},
            checkpoint=str(ckpt),
            ch_names=CH,
        )
    bad = ("Fp1", "X7", "Cz", "O1", "Pz")
    with pytest.raises(ConfigError) as err:
        build_model(
            "eegpt",
            input_shape=(5, N_TIMES),
            tasks={"v": 2},
            checkpoint=str(ckpt),
            ch_names=bad,
            num_heads=4,
        )
    msg = str(err.value)
    assert "channel(s) X7 not in the EEGPT encoder's 62-channel dictionary" in msg
    assert "\n" not in msg


def test_full_size_has_the_released_shape() -> None:
    enc = EEGPTEncoder(embed_dim=512, depth=8, num_heads=8, embed_num=4)
    n = sum(p.numel() for p in enc.parameters())
    assert 24e6 < n < 26.5e6
