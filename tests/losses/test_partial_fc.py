"""Partial FC in one process: at sample_rate 1.0 it is the ordinary head; sampling keeps every
centre the batch needs; the shards and their initial centres do not depend on the world size."""

from __future__ import annotations

import pytest
import torch

from facemetric.losses import build_loss
from facemetric.losses.partial_fc import PartialFC, seeded_centres, shard_range, supports_partial_fc


@pytest.mark.parametrize(
    "name,options",
    [
        ("arcface", {"margin": 0.5}),
        ("arcface", {"subcenters": 3}),
        ("cosface", {}),
        ("normface", {}),
        ("combined_margin", {}),
        ("softmax", {}),
    ],
)
def test_full_rate_in_one_process_is_the_ordinary_head(name: str, options: dict) -> None:
    torch.manual_seed(0)
    classes, dim = 11, 6
    head = build_loss(name, num_classes=classes, embedding_dim=dim, **options)
    twin = build_loss(name, num_classes=classes, embedding_dim=dim, **options)
    twin.load_state_dict(head.state_dict())
    emb = torch.randn(20, dim, requires_grad=True)
    labels = torch.randint(0, classes, (20,))
    want = head(emb, labels)
    (g_want,) = torch.autograd.grad(want, [emb], retain_graph=True)
    want.backward()
    got = PartialFC(twin, classes, (0, classes))(emb, labels)
    (g_got,) = torch.autograd.grad(got, [emb], retain_graph=True)
    got.backward()
    tol = {"atol": 1e-5, "rtol": 1e-4}  # float32 sums taken in another order
    torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(g_got, g_want, **tol)
    torch.testing.assert_close(twin.weight.grad, head.weight.grad, **tol)


def test_sampling_keeps_every_needed_centre_and_draws_the_rest() -> None:
    torch.manual_seed(0)
    head = build_loss("arcface", num_classes=100, embedding_dim=4)
    pfc = PartialFC(head, 100, (0, 100), sample_rate=0.1)
    labels = torch.tensor([3, 3, 57, 99, 12])
    torch.manual_seed(1)
    index, target = pfc.sample(labels)
    assert index is not None and len(index) == 10
    assert set(labels.tolist()) <= set(index.tolist())
    assert torch.equal(index[target], labels)  # targets renumbered into the sampled centres
    emb = torch.randn(5, 4, requires_grad=True)
    torch.manual_seed(1)  # the same draw as above
    loss = pfc(emb, labels)
    loss.backward()
    touched = torch.nonzero(head.weight.grad.abs().sum(1)).squeeze(1)
    assert set(touched.tolist()) <= set(index.tolist())  # only sampled centres learn


def test_more_labels_than_samples_keeps_all_labels() -> None:
    head = build_loss("cosface", num_classes=50, embedding_dim=4)
    pfc = PartialFC(head, 50, (0, 50), sample_rate=0.04)  # 2 centres, 4 distinct labels
    labels = torch.tensor([1, 7, 9, 40])
    index, target = pfc.sample(labels)
    assert index is not None and index.tolist() == [1, 7, 9, 40] and target.tolist() == [0, 1, 2, 3]


def test_shards_cover_the_classes_once() -> None:
    for classes, world in [(10, 3), (7, 2), (1_000_000, 8), (5, 5)]:
        ranges = [shard_range(classes, r, world) for r in range(world)]
        assert sum(n for _, n in ranges) == classes
        assert all(a + n == b for (a, n), (b, _) in zip(ranges, ranges[1:]))
        assert max(n for _, n in ranges) - min(n for _, n in ranges) <= 1


def test_initial_centres_do_not_depend_on_the_split() -> None:
    whole = seeded_centres((0, 9000), 2, 3, seed=4)
    parts = [seeded_centres(shard_range(9000, r, 3), 2, 3, seed=4) for r in range(3)]
    torch.testing.assert_close(torch.cat(parts), whole)
    assert not torch.equal(seeded_centres((0, 10), 1, 3, seed=5), seeded_centres((0, 10), 1, 3, seed=4))


def test_heads_it_cannot_shard_are_named() -> None:
    assert not supports_partial_fc(build_loss("sphereface", num_classes=4, embedding_dim=3))
    assert not supports_partial_fc(build_loss("center", num_classes=4, embedding_dim=3))
    with pytest.raises(ValueError, match="cannot shard"):
        PartialFC(build_loss("circle_class", num_classes=4, embedding_dim=3), 4, (0, 4))


def test_head_settings_read_and_set_through_partial_fc() -> None:
    """A loss schedule sets ``margin`` on the trainer's loss: under Partial FC that must reach the head."""
    from facemetric.train.callbacks.schedules import LossScheduleCallback

    head = build_loss("arcface", num_classes=6, embedding_dim=4, margin=0.5)
    pfc = PartialFC(head, 12, (6, 6))
    assert pfc.margin == 0.5 and pfc.num_classes == 12 and head.num_classes == 6
    emb, labels = torch.randn(5, 4), torch.tensor([6, 7, 8, 9, 11])
    before = pfc(emb, labels)

    class _Trainer:
        loss, epoch = pfc, 2

    LossScheduleCallback({2: {"margin": 0.1}}, "arcface").on_epoch_start(_Trainer())  # type: ignore[arg-type]
    assert head.margin == 0.1 and "margin" not in pfc.__dict__
    assert pfc(emb, labels) < before  # a smaller margin: a smaller loss on the same batch
