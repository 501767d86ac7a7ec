"""Dense-feature pictures: the class-token attention, PCA colours, the figure, ``ecg-dino show`` and the callback."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, fit_with_callback, needs_shared_data, random_batch

from datamodules.record import ECGRecord
from datamodules.shards import write_shard
from ecg_dino.checkpoint import load_backbone
from ecg_dino.commands import show as show_command
from ecg_dino.leads import STANDARD_12, lead_indices
from ecg_dino.model.rope import apply_rope
from ecg_dino.model.vit import attention, build_vit
from ecg_dino.pictures.callback import FeaturePictures
from ecg_dino.pictures.figure import draw, figure_size_px
from ecg_dino.pictures.show import backbone_panels, reference_pca
from ecg_dino.pictures.tokens import PCAColours, Tracing, dense_features

RATE = 250.0


def vit() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_vit("tiny", depth=2, embed_dim=64, num_heads=2, layerscale_init=1.0)
    model.init_weights()
    return model.eval()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def ecg(leads: tuple[str, ...], seconds: float, rate: float, record_id: str, seed: int = 0) -> ECGRecord:
    """Narrow beats every 0.8 s plus noise, different per lead."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4)
    signal = beats[None] * rng.uniform(0.5, 1.5, (len(leads), 1)) + 0.05 * rng.normal(size=(len(leads), len(t)))
    return ECGRecord(signal.astype(np.float32), rate, leads, record_id, record_id, "test")


def test_cls_attention_is_the_last_blocks_class_token_row() -> None:
    """``Attention.cls_weights`` applied to the values gives the attention output of the class token."""
    model = vit()
    attn = model.blocks[-1].attn
    x = torch.randn(2, 21, 64)
    rope = model.rope(torch.cat([torch.zeros(5), torch.arange(16) * 0.2]))
    keep = torch.ones(2, 21, dtype=torch.bool)
    keep[1, 13:] = False
    mask = keep[:, None, None, :]
    weights = attn.cls_weights(x, rope, mask)  # [B, H, N]
    qkv = attn.qkv(x).view(2, 21, 3, 2, 32).permute(2, 0, 3, 1, 4)
    q, k = apply_rope(qkv[:2], *rope)
    expected = attention(q, k, qkv[2], mask)[:, :, 0]  # [B, H, hd]
    torch.testing.assert_close(torch.einsum("bhn,bhnd->bhd", weights, qkv[2]), expected, atol=1e-5, rtol=1e-5)
    assert (weights[1, :, 13:] == 0).all()


def test_attention_sums_to_one_over_valid_patches_and_changes_nothing_else() -> None:
    model = vit()
    signal = torch.randn(3, 12, 1000)
    ids = torch.tensor(lead_indices(STANDARD_12)).expand(3, -1)
    lead_mask = torch.ones(3, 12, dtype=torch.bool)
    lead_mask[1, 2:] = False  # a 2-lead row among 12-lead ones (lead groups)
    valid = torch.tensor([1000, 600, 1000])
    plain = model.forward_features(signal, ids, lead_mask, valid)
    out = model.forward_features(signal, ids, lead_mask, valid, return_attention=True)
    for key in plain:
        torch.testing.assert_close(out[key], plain[key])
    att = out["cls_attention"]
    torch.testing.assert_close(att.sum((1, 2)), torch.ones(3))
    assert (att[~out["patch_mask"]] == 0).all() and (att[out["patch_mask"]] > 0).all()
    assert ((out["cls_attention_patch_share"] > 0) & (out["cls_attention_patch_share"] < 1)).all()


def test_pca_colours_do_not_depend_on_token_order_or_svd_sign() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(200, 16)) * np.linspace(3, 0.5, 16)
    pca = PCAColours.fit(tokens)
    shuffled = PCAColours.fit(tokens[rng.permutation(200)])
    np.testing.assert_allclose(shuffled(tokens), pca(tokens), atol=1e-9)
    pivots = np.abs(pca.components).argmax(1)
    assert (pca.components[np.arange(3), pivots] > 0).all()  # the sign convention
    colours = pca(tokens)
    assert colours.shape == (200, 3) and colours.min() == 0.0 and colours.max() == 1.0


def test_absent_leads_and_padded_time_are_not_drawn() -> None:
    """A padded batch row: 2 of 6 leads present and 1.6 s of 2 s valid; only those are drawn and coloured."""
    model = vit()
    crops = random_batch(seed=3)["global"]
    crops["lead_mask"][0, 2:] = False
    crops["valid_samples"][0] = 400
    tracing = Tracing.from_crops(crops, 0, RATE, "padded")
    panel = backbone_panels("m", model, tracing, None, None)[0]
    fig = draw([panel], 2.0, "test")
    traces = [ax for ax in fig.axes if ax.lines]
    assert len(traces) == 2  # leads I and II, not the 4 absent ones
    assert max(float(ax.lines[0].get_xdata().max()) for ax in traces) < 1.6
    bands = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.images[0].get_array().ndim == 3]
    assert len(bands) == 2
    for band in bands:  # RGBA [1, P, 4]: 8 valid patches opaque, the padded ones transparent
        assert band.shape == (1, 10, 4) and (band[0, :8, 3] == 1).all() and (band[0, 8:, 3] == 0).all()
    attention = panel.features.attention
    assert attention[:2, :8].sum() == pytest.approx(1.0, abs=1e-5) and attention[2:].sum() == 0


@pytest.fixture
def shard_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shards"
    folder.mkdir()
    write_shard([ecg(STANDARD_12, 5.0, 500.0, "twelve"), ecg(("I",), 3.0, 300.0, "one", 1)], folder / "a.parquet")
    return folder


def test_show_writes_a_png_per_record_of_the_expected_size(tiny_backbone_file: Path, shard_folder: Path, capsys):
    out = shard_folder.parent / "pictures"
    argv = ["--ckpt", str(tiny_backbone_file), "--data", str(shard_folder), "--out", str(out), "--seconds", "4"]
    assert show_command.main([*argv, "--compare-random"]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["twelve_start0s_vs-random.png", "one_start0s_vs-random.png"]
    assert png_size(Path(printed[0])) == figure_size_px(12, 2, with_cosine=False)
    assert png_size(Path(printed[1])) == figure_size_px(1, 2, with_cosine=False)
    first = Path(printed[0]).read_bytes()
    assert show_command.main([*argv, "--compare-random"]) == 0  # a fixed checkpoint: the same picture again
    assert Path(printed[0]).read_bytes() == first


def test_pca_from_a_reference_set_colours_every_record_alike(tiny_backbone_file: Path, shard_folder: Path) -> None:
    """``--pca-from``: one fit for every record, so a record's colours no longer depend on its own spread."""
    model = load_backbone(tiny_backbone_file)
    pca = reference_pca(model, shard_folder, None, 8, 4.0)
    one = Tracing.from_record(ecg(("I",), 3.0, 300.0, "one", 1), RATE, 0.0, 4.0)
    features = dense_features(model, [one])[0]
    own = PCAColours.fit_features([features])
    assert not np.allclose(pca(features.patches), own(features.patches))


def test_show_names_a_missing_record(tiny_backbone_file: Path, shard_folder: Path, capsys) -> None:
    argv = ["--ckpt", str(tiny_backbone_file), "--data", str(shard_folder), "--record", "nothing"]
    assert show_command.main(argv) == 2
    assert "no record 'nothing'" in capsys.readouterr().err


@needs_shared_data
def test_show_on_mitdb_with_noise_beside_random_init(tiny_backbone_file: Path, tmp_path: Path, capsys) -> None:
    argv = ["--ckpt", str(tiny_backbone_file), "--data", str(SHARED_DATA / "mitdb"), "--record", "228"]
    argv += ["--start", "460", "--noise", "em", "--snr", "6", "--compare-random", "--out", str(tmp_path)]
    assert show_command.main(argv) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "228_start460s_em6dB_vs-random.png"
    assert png_size(path) == figure_size_px(2, 4, with_cosine=True)


def test_callback_logs_the_picture_from_step_zero(tmp_path: Path) -> None:
    pictures = FeaturePictures(every_n_steps=2)
    events = fit_with_callback(tmp_path, pictures)
    images = events.Images("pictures/features")
    assert [e.step for e in images] == [0, 2, 3]
    width, height = figure_size_px(6, 1, with_cosine=False, dpi=pictures.dpi)
    assert (images[0].width, images[0].height) == (width, height)
    assert 0 < events.Scalars("pictures/cost_fraction")[-1].value < 1
