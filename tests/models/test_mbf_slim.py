"""``arcface_mbf_slim``: at full width and 112 pixels it is ``arcface-mbf``'s own network (equal to the file's
port); at a smaller input its linear layer is resized; narrower, it starts from the teacher's highest-scoring
channels, cut alike where the network needs it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

pytest.importorskip("onnx")

from facemetric.core.errors import ConfigError  # noqa: E402
from facemetric.core.weight_files import ARCFACE_MBF  # noqa: E402
from facemetric.models import build_natural, model_spec  # noqa: E402
from facemetric.models.mbf_prune import channel_choice, prune_into, resampled_linear, teacher_network  # noqa: E402
from facemetric.models.mbf_slim import DepthwiseBlock, MbfSlim  # noqa: E402


@pytest.fixture(scope="module")
def teacher() -> MbfSlim:
    if not ARCFACE_MBF.installed():
        pytest.skip(f"{ARCFACE_MBF.package} is not installed: {ARCFACE_MBF.pip}")
    return teacher_network().eval()


def _inputs(n: int = 8) -> torch.Tensor:
    """Smooth random images in [-1, 1] (the ArcFace normalisation's range)."""
    torch.manual_seed(0)
    return F.interpolate(torch.rand(n, 3, 14, 14) * 2 - 1, size=112, mode="bilinear", align_corners=False)


def test_at_full_width_it_is_the_teacher_network(teacher: MbfSlim):
    port = build_natural("arcface_mbf")
    model_spec("arcface_mbf").pretrained["arcface-mbf"].load(port)
    copy = MbfSlim(width=1.0).eval()
    prune_into(teacher, copy)  # keeping every channel changes nothing
    x = _inputs()
    with torch.no_grad():
        expected = port.eval()(x)
        assert F.cosine_similarity(teacher(x), expected).min() >= 0.9999
        assert F.cosine_similarity(copy(x), expected).min() >= 0.9999


def test_at_64_pixels_the_linear_layer_reads_the_resized_map(teacher: MbfSlim):
    student = MbfSlim(input_size=(64, 64))
    model_spec("arcface_mbf_slim").pretrained["arcface-mbf"].load(student)
    assert student.final_size == (4, 4) and student.fc.in_features == 64 * 16
    convs = zip(student.modules(), teacher.modules(), strict=True)
    assert all(torch.equal(a.weight, b.weight) for a, b in convs if isinstance(a, nn.Conv2d))
    # a last map constant over the face gives nearly the teacher's output at 7x7 (a different layer: cosine 0)
    level = torch.rand(3, 64, 1, 1)
    with torch.no_grad():
        at_7 = teacher.fc(level.expand(-1, -1, 7, 7).flatten(1))
        at_4 = student.fc(level.expand(-1, -1, 4, 4).flatten(1))
    assert F.cosine_similarity(at_4, at_7).min() > 0.99
    torch.testing.assert_close(at_4.norm(dim=1), at_7.norm(dim=1), rtol=0.03, atol=0)
    # resizing to the same size changes nothing; a map of ones resized by area keeps its total
    assert resampled_linear(teacher.fc.weight, (7, 7), (7, 7)) is teacher.fc.weight
    ones = resampled_linear(torch.ones(1, 64 * 49), (7, 7), (4, 4))
    torch.testing.assert_close(ones.sum(), torch.tensor(64 * 49.0))
    assert student.eval()(_inputs(2)[:, :, ::2, ::2][:, :, :64, :64].contiguous()).shape == (2, 512)


def test_half_width_has_a_quarter_of_the_convolutions_and_keeps_the_head(teacher: MbfSlim):
    student = build_natural("arcface_mbf_slim", width=0.5)
    spec = model_spec("arcface_mbf_slim")
    spec.pretrained["arcface-mbf"].load(student)
    assert spec.pretrained["arcface-mbf"].align == "yunet" and spec.normalization == ((0.5,) * 3, (0.5,) * 3)
    conv = [m for m in student.modules() if isinstance(m, nn.Conv2d)]
    full = [m for m in teacher.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in conv[:3]] == [64, 64, 64] and conv[-2].out_channels == 256
    ungrouped = [(c, f) for c, f in zip(conv[1:-1], full[1:-1], strict=True) if c.groups == 1]
    assert all(c.weight.numel() * 4 == f.weight.numel() for c, f in ungrouped)
    assert torch.equal(student.fc.weight, teacher.fc.weight)
    assert torch.equal(student.bn.running_var, teacher.bn.running_var)
    assert student.eval()(_inputs(2)).shape == (2, 512)


def test_the_cut_keeps_the_strongest_channels_alike_where_the_network_reads_them_together(teacher: MbfSlim):
    full = MbfSlim(width=1.0)
    full.load_state_dict(teacher.state_dict())
    stage = [b for b in full.blocks if isinstance(b, DepthwiseBlock)][5:12]  # the 14-pixel stage: 256 channels
    silent = torch.arange(0, 256, 2)  # every second channel of the stream written with zeros
    with torch.no_grad():
        for block in stage:
            block.project[0].weight[silent] = 0
        stage[1].expand[0].weight[:7] = 0  # seven hidden channels of one block read nothing
    keep = channel_choice(full, MbfSlim(width=0.5))
    names = {m: n for n, m in full.named_modules()}
    streams = [keep[names[b.project[0]]] for b in stage]
    assert all(torch.equal(s, streams[0]) for s in streams)  # one stream, cut once
    assert torch.equal(streams[0], torch.arange(1, 256, 2))  # exactly the written half
    assert not set(range(7)) & set(keep[names[stage[1].expand[0]]].tolist())  # the silent hidden channels go
    stem = keep["stem.0.0"].view(-1, 2)
    assert torch.equal(stem[:, 1], stem[:, 0] + 1) and torch.all(stem[:, 0] % 2 == 0)  # whole pairs
    assert torch.equal(keep["stem.0.0"], keep["stem.1.0"])


def test_bad_widths_sizes_and_models_are_refused():
    with pytest.raises(ValueError, match="model.options.width"):
        MbfSlim(width=1.5)
    with pytest.raises(ValueError, match="at least 16x16.*--align yunet --size N"):
        MbfSlim(input_size=(12, 12))
    load = model_spec("arcface_mbf_slim").pretrained["arcface-mbf"].load
    with pytest.raises(ConfigError, match="embedding_dim: 512"):
        load(MbfSlim(embedding_dim=128))
    with pytest.raises(ConfigError, match="arcface_mbf_slim"):
        load(nn.Linear(2, 2))


def test_the_64_pixel_student_learns_the_teachers_embeddings(teacher: MbfSlim):
    """A few distillation steps on smooth images move the student toward the teacher (the recipe's loss)."""
    student = MbfSlim(input_size=(64, 64))
    model_spec("arcface_mbf_slim").pretrained["arcface-mbf"].load(student)
    x = _inputs(16)
    with torch.no_grad():
        target = teacher(x)
    small = F.interpolate(x, size=64, mode="bilinear", align_corners=False, antialias=True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-4, weight_decay=0.0)
    student.train()
    losses = []
    for _ in range(6):
        loss = (1 - F.cosine_similarity(student(small), target)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
