"""``rolefusion-info``: parameters and forward FLOPs per sample of each part of a model.

Takes the same overrides as ``rolefusion-train`` and builds exactly what it would build, e.g.
``rolefusion-info model/fusion=sequence model/text_encoder=transformer``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rolefusion.config.checks import check_targets
from rolefusion.data.batch import Batch
from rolefusion.models.classifier import FusionClassifier
from rolefusion.runs.build import build_model, prepared_datamodule


@dataclass(frozen=True)
class PartCost:
    """What one part of the model costs."""

    part: str
    module: str
    parameters: int
    trainable: int
    flops_per_sample: float


def _parts(net: FusionClassifier) -> dict[str, nn.Module]:
    """Each encoder, the fusion and the head, by their attribute path in the classifier."""
    parts = {f"encoders.{m}": encoder for m, encoder in net.encoders.items()}
    return parts | {"fusion": net.fusion, "head": net.head}


def measure(net: FusionClassifier, batch: Batch) -> list[PartCost]:
    """Count each part's parameters, and its FLOPs in one eval-mode forward of ``batch``.

    FLOPs are torch's flop counter's (matrix products and convolutions, each multiply-add
    counted as 2); element-wise work and normalisation are not counted.
    """
    was_training, fastpath = net.training, torch.backends.mha.get_fastpath_enabled()
    net.eval()
    # The fused inference kernels of nn.TransformerEncoder are invisible to the flop counter.
    torch.backends.mha.set_fastpath_enabled(False)
    counter = FlopCounterMode(display=False, depth=None)
    try:
        # Not under no_grad: torch's module tracker fails there on a parameter passed as a
        # module input (spatial fusion's learned queries).
        with counter:
            net(batch)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        net.train(was_training)
    counts = counter.get_flop_counts()
    costs = []
    for path, module in _parts(net).items():
        flops = sum(counts.get(f"{type(net).__name__}.{path}", {}).values())
        costs.append(
            PartCost(
                part=path,
                module=type(module).__name__,
                parameters=sum(p.numel() for p in module.parameters()),
                trainable=sum(p.numel() for p in module.parameters() if p.requires_grad),
                flops_per_sample=flops / len(batch),
            )
        )
    return costs


def _si(value: float) -> str:
    """``49020000 -> '49.0 M'``: FLOPs of parts that differ by orders of magnitude stay legible."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.1f} {suffix}"
    return f"{value:.0f}"


def print_costs(costs: list[PartCost]) -> None:
    table = Table(title="model cost per sample (forward)", title_justify="left")
    for column in ("part", "module", "parameters", "trainable", "FLOPs"):
        table.add_column(column, justify="left" if column in {"part", "module"} else "right")
    for cost in costs:
        table.add_row(
            cost.part, cost.module, f"{cost.parameters:,}", f"{cost.trainable:,}",
            _si(cost.flops_per_sample),
        )  # fmt: skip
    total = PartCost(
        "total", "", *(sum(getattr(c, f) for c in costs) for f in ("parameters", "trainable")),
        sum(c.flops_per_sample for c in costs),
    )  # fmt: skip
    table.add_section()
    table.add_row(
        total.part, "", f"{total.parameters:,}", f"{total.trainable:,}",
        _si(total.flops_per_sample),
    )  # fmt: skip
    Console().print(table)


def model_costs(cfg: DictConfig) -> list[PartCost]:
    """Build the configured data and model and measure one validation batch."""
    check_targets(cfg)
    datamodule = prepared_datamodule(cfg)
    model = build_model(cfg, datamodule.spec)
    batch = next(iter(datamodule.val_dataloader()))
    return measure(model.net, batch)


def run(cfg: DictConfig) -> None:
    print_costs(model_costs(cfg))
