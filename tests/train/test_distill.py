"""Distillation: the distill loss, each batch's rows and mirror flags, the cached teacher table, a
student that learns a teacher's embeddings, and extra training sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facemetric.core.config import AugmentConfig, DataConfig, load_config
from facemetric.core.errors import ConfigError
from facemetric.data.cache import PackedImages
from facemetric.data.dataset import load_dataset
from facemetric.data.loader import BatchSource
from facemetric.data.sampler import PKSampler
from facemetric.data.sources import DatasetError
from facemetric.losses import build_loss
from facemetric.train.build import build_run


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_distill_loss_equals_the_hand_computed_terms_and_skips_rows_without_a_target() -> None:
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(5, 4)), _unit(rng.normal(size=(5, 4)))
    t[3] = np.nan  # the teacher found no face in photo 3
    loss = build_loss("distill", cosine=0.7, relation=2.0)
    loss.targets = torch.tensor(t, dtype=torch.float32)
    got = float(loss(torch.tensor(s, dtype=torch.float32), torch.arange(5)))
    keep = [0, 1, 2, 4]
    su, tu = _unit(s[keep]), t[keep]
    cos = np.mean([1 - su[i] @ tu[i] for i in range(4)])
    rel = np.mean([(su[i] @ su[j] - tu[i] @ tu[j]) ** 2 for i in range(4) for j in range(4) if i != j])
    assert got == pytest.approx(0.7 * cos + 2.0 * rel, rel=1e-5)
    assert loss.targets is None  # used once


def test_distill_loss_adds_the_labelled_head_and_refuses_a_batch_without_targets() -> None:
    loss = build_loss("distill", cosine=1.0, relation=0.0)
    head = build_loss("arcface", num_classes=3, embedding_dim=4)
    loss.add_label_loss(head, 0.5)
    emb, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    target = torch.nn.functional.normalize(emb, dim=1)  # the student already equals the teacher
    loss.targets = target
    with torch.no_grad():
        got, expected = float(loss(emb, labels)), 0.5 * float(head(emb, labels))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    with pytest.raises(ConfigError, match="no teacher targets"):
        loss(emb, labels)


def test_each_batch_says_which_rows_it_holds_and_which_were_mirrored() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(40)
    data = PackedImages(images, labels, [f"{i}.png" for i in range(40)], [str(i) for i in range(40)], [])
    augment = AugmentConfig(flip=True, shift=0.0, brightness=0.0, contrast=0.0)
    source = BatchSource(data, PKSampler(labels, 8, 1, min_images=1), augment, ((0.0,) * 3, (1.0,) * 3), workers=0)
    seen_flips = 0
    for batch in source.stream(0, 5):
        assert batch.rows is not None and batch.flipped is not None
        expected = images[batch.rows].astype(np.float32) / 255
        expected[batch.flipped] = expected[batch.flipped][:, :, ::-1]
        got = batch.images.permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
        seen_flips += int(batch.flipped.sum())
    assert 0 < seen_flips < 40  # both views occur


def _cfg(data: Path, out: Path, teacher: Path | str, *extra: str):
    return load_config(
        None,
        [
            f"data.source={data}",
            "data.image_size=[48, 48]",
            "data.val_identities=4",
            "data.cache_dir=null",
            "data.workers=0",
            "model.name=iresnet_tiny",
            "model.embedding_dim=128",
            "loss.name=distill",
            f"distill.teacher={teacher}",
            "sampler.p=8",
            "sampler.k=2",
            "optim.lr=0.003",
            "train.progress=false",
            f"train.out={out}",
            *extra,
        ],
    )


def test_teacher_table_holds_both_views_and_is_computed_once(tiny_checkpoint: Path, synthetic_faces: Path) -> None:
    from facemetric.embedders import load_embedder
    from facemetric.train.teacher import teacher_table

    teacher = load_embedder(tiny_checkpoint)
    paths = sorted(str(p) for p in synthetic_faces.rglob("*.png"))[:10]
    table = teacher_table(teacher, paths, mirror=True, workers=0, progress=False)
    crops = teacher.crop_files(paths, workers=0)
    assert table.shape == (10, 2, teacher.dim)
    np.testing.assert_allclose(table[:, 0], teacher.embed_crops(crops.images), atol=1e-5)
    mirrored = teacher.embed_crops(np.ascontiguousarray(np.asarray(crops.images)[:, :, ::-1]))
    np.testing.assert_allclose(table[:, 1], mirrored, atol=1e-5)
    assert np.abs(table[:, 0] - table[:, 1]).max() > 1e-3  # the mirror image is a different view

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    teacher.crop_files = refuse  # type: ignore[method-assign]
    np.testing.assert_array_equal(teacher_table(teacher, paths, mirror=True, workers=0, progress=False), table)


def test_a_student_learns_the_teachers_embeddings(tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path) -> None:
    from facemetric.embedders.torch_model import embed_array
    from facemetric.train.callbacks.distill import DistillCallback

    run = build_run(
        _cfg(synthetic_faces, tmp_path / "run", tiny_checkpoint, "train.epochs=10", "sampler.batches_per_epoch=12")
    )
    callback = run.trainer.callback(DistillCallback)
    targets = callback.table[:, 0].numpy()  # the (centred) teacher embedding of each training photo
    assert np.allclose(np.linalg.norm(targets, axis=1), 1.0, atol=1e-5)
    assert abs(float(np.mean(targets @ targets.T))) < 0.05  # centred: no common direction left

    def agreement() -> float:
        emb = embed_array(run.model, run.data.train.images, normalization=run.data.spec.normalization)
        return float(np.mean(np.sum(emb * targets, axis=1)))

    before = agreement()
    run.fit()
    history = run.trainer.history
    after = agreement()
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert before < 0.2 and after > before + 0.4, (before, after)


def test_distill_settings_are_checked_before_any_data_is_read(tiny_checkpoint: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="distill.teacher"):
        build_run(_cfg(missing, tmp_path / "a", tiny_checkpoint, "distill.teacher=null"))
    with pytest.raises(ConfigError, match="loss.name: distill"):
        build_run(_cfg(missing, tmp_path / "b", tiny_checkpoint, "loss.name=arcface"))
    with pytest.raises(ConfigError, match="not a classifier head"):
        build_run(
            _cfg(missing, tmp_path / "c", tiny_checkpoint, "distill.labels=0.1", "distill.label_loss.name=triplet")
        )


def test_the_student_must_have_the_teachers_embedding_size(
    tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="model.embedding_dim=128"):
        build_run(_cfg(synthetic_faces, tmp_path / "run", tiny_checkpoint, "model.embedding_dim=64"))


def test_extra_sources_add_their_training_people_and_keep_their_held_out_people_out(
    synthetic_faces: Path, tmp_path: Path
) -> None:
    from facemetric.data.synthetic import generate_dataset

    other = generate_dataset(tmp_path / "other", 6, 4, size=48, seed=9, progress=False)
    base = DataConfig(source=str(synthetic_faces), image_size=[48, 48], val_identities=2, cache_dir=None)
    alone = load_dataset(base, progress=False)
    both = load_dataset(base.model_copy(update={"extra_sources": [str(other)]}), progress=False)
    extra_alone = load_dataset(
        DataConfig(source=str(other), image_size=[48, 48], val_identities=2, cache_dir=None), False
    )
    assert both.val is not None and alone.val is not None and extra_alone.val is not None
    assert both.val.identity_names == alone.val.identity_names  # validation stays on data.source
    assert both.train.identity_names == alone.train.identity_names + [
        f"other/{n}" for n in extra_alone.train.identity_names
    ]
    assert not {f"other/{n}" for n in extra_alone.val.identity_names} & set(both.train.identity_names)
    assert len(both.train) == len(alone.train) + len(extra_alone.train)
    np.testing.assert_array_equal(
        np.asarray(both.train.images)[len(alone.train) :], np.asarray(extra_alone.train.images)
    )
    from facemetric.data.prepare import PrepareOptions, prepare

    small = tmp_path / "other-32"
    prepare(other, small, PrepareOptions(size=32, align="none"), workers=0, progress=False)
    with pytest.raises(DatasetError, match="prepare both the same way"):
        load_dataset(base.model_copy(update={"extra_sources": [str(small)]}), progress=False)


def test_teacher_pixels_undo_the_normalisation_and_resize_to_the_teachers_input() -> None:
    from facemetric.core.spec import ImageSpec
    from facemetric.train.teacher import teacher_pixels

    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(3, 10, 12, 3), dtype=np.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    batch = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    same = ImageSpec(10, 12, 3)
    np.testing.assert_array_equal(teacher_pixels(batch, (mean, std), same), pixels)
    bigger = teacher_pixels(batch, (mean, std), ImageSpec(20, 24, 3))
    expected = torch.nn.functional.interpolate(x * 255, size=(20, 24), mode="bilinear", align_corners=False)
    assert bigger.shape == (3, 20, 24, 3)
    assert np.abs(bigger.astype(float) - expected.permute(0, 2, 3, 1).numpy()).max() <= 0.5 + 1e-3
    grey = teacher_pixels(batch[:, :1], ((mean[0],), (std[0],)), same)  # a grey student, a colour teacher
    assert grey.shape == (3, 10, 12, 3) and (grey == pixels[..., :1]).all()


def test_an_online_teacher_embeds_each_augmented_batch_and_the_student_learns_it(
    tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path
) -> None:
    from facemetric.embedders import load_embedder
    from facemetric.embedders.torch_model import embed_array
    from facemetric.train.callbacks.distill import DistillCallback, OnlineDistillCallback
    from facemetric.train.teacher import teacher_pixels

    run = build_run(
        _cfg(
            synthetic_faces,
            tmp_path / "run",
            tiny_checkpoint,
            "distill.online=true",
            "data.image_size=[40, 40]",  # the student reads 40x40, the teacher its own 48x48
            "augment.shift=0.1",
            "train.epochs=10",
            "sampler.batches_per_epoch=12",
        )
    )
    assert run.trainer.callback(DistillCallback) is None
    callback = run.trainer.callback(OnlineDistillCallback)
    teacher = load_embedder(tiny_checkpoint)
    assert callback.mean is not None and float(callback.mean.norm()) > 0.1  # the teacher's common direction

    # a batch's targets are the teacher's centred embeddings of exactly that (augmented) batch
    batch = next(iter(run.trainer.data.stream(0, 1)))
    callback.on_batch_start(run.trainer, batch)
    raw = teacher.embed_crops(teacher_pixels(batch.images, run.data.spec.normalization, teacher.spec))
    expected = _unit(raw - callback.mean.numpy())
    np.testing.assert_allclose(run.trainer.loss.targets.numpy(), expected, atol=1e-5)
    run.trainer.loss.targets = None

    train = run.data.train.images
    plain = np.ascontiguousarray(train[np.arange(len(train))])
    x = torch.from_numpy(plain).permute(0, 3, 1, 2).float() / 255
    identity = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    targets = _unit(teacher.embed_crops(teacher_pixels(x, identity, teacher.spec)) - callback.mean.numpy())

    def agreement() -> float:
        emb = embed_array(run.model, train, normalization=run.data.spec.normalization)
        return float(np.mean(np.sum(emb * targets, axis=1)))

    before = agreement()
    run.fit()
    after = agreement()
    assert before < 0.2 and after > before + 0.4, (before, after)


def test_an_online_teacher_needs_the_students_crops_cut_its_way(
    tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="prepare the photos the teacher's way"):
        build_run(_cfg(synthetic_faces, tmp_path / "run", tiny_checkpoint, "distill.online=true", "data.crop=0.8"))
