"""What a loss needs from the run that builds it, declared where the loss is registered.

``@register_loss("triplet", needs=LossNeeds(miner="triplets"))``: the training builder
(``facemetric.train``) reads these declarations, never a loss's name, to decide which miners a
config may give it, whether it receives the class count, whether Partial FC may shard it and
whether the run adds the distillation teacher. A loss from outside the package declares the
same way and is built like a built-in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from facemetric.core.mining import PairMiner, TripletMiner

MinerKind = Literal["triplets", "pairs"]
MINER_INTERFACES: dict[MinerKind, type[TripletMiner] | type[PairMiner]] = {
    "triplets": TripletMiner,
    "pairs": PairMiner,
}


@dataclass(frozen=True)
class LossNeeds:
    """A loss's declaration; the defaults describe ``loss(embeddings, labels)`` with nothing injected.

    Args:
        miner: the kind of miner it learns from (``"triplets"``: a :class:`TripletMiner`, ``"pairs"``:
            a :class:`PairMiner`), passed as its ``miner`` argument; None: it takes no miner.
        classes: it owns class weights, so it receives ``num_classes`` and ``embedding_dim``.
        partial_fc: a margin head whose centres Partial FC may split over processes and sample
            (``loss.sample_rate`` < 1, torchrun): cosine logits or plain softmax, cross-entropy only.
        teacher: it learns a teacher's embeddings (``distill.teacher``), so the run adds the
            teacher callback that sets its targets before every step.
    """

    miner: MinerKind | None = None
    classes: bool = False
    partial_fc: bool = False
    teacher: bool = False

    def __post_init__(self) -> None:
        if self.miner is not None and self.miner not in MINER_INTERFACES:
            raise ValueError(f"miner must be one of {', '.join(MINER_INTERFACES)} or None, got {self.miner!r}")
        if self.partial_fc and not self.classes:
            raise ValueError("partial_fc shards class centres: a loss that declares it must also declare classes")

    @property
    def miner_interface(self) -> type[TripletMiner] | type[PairMiner] | None:
        """The miner interface of :attr:`miner` (None when the loss takes no miner)."""
        return MINER_INTERFACES[self.miner] if self.miner is not None else None
