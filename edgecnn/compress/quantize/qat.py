"""Quantization-aware training: fine-tunes the fake-quantized PT2E graph with the task's
own training loss, distilled from the float model, for when post-training int8 misses
the budget."""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import get_task
from edgecnn.core.preprocess import preprocess_batch
from edgecnn.training import DISTILL_WEIGHT
from edgecnn.compress.quantize.ptq import QuantizedModel, activation_fake_quantizers, channel_last, float_layers_explained, quantizer


def qat_task(card: ModelCard, data_spec: str, seed: int, max_images: Optional[int] = None):
    """The training task (data, augmentation, preprocessing, loss) that QAT fine-tunes with."""
    from edgecnn.training.train import TrainConfig

    config = TrainConfig(task=card.task, data=data_spec, imgsz=card.input_size[0], seed=seed,
                         max_train_images=max_images, max_val_images=1)
    return get_task(card.task).training().make_training(config, card)


def quantization_aware_training(model: nn.Module, card: ModelCard, data_spec: str, epochs: int,
                                calibration_images: Sequence[np.ndarray], lr: Optional[float] = None,
                                batch: Optional[int] = None, per_channel: bool = True,
                                float_layers: Sequence[str] = (), seed: int = 0, max_images: Optional[int] = None,
                                teacher: Optional[nn.Module] = None, distill_weight: float = DISTILL_WEIGHT,
                                log=print) -> QuantizedModel:
    """QAT: the int8 graph (fake-quantized, straight-through gradients) is fine-tuned on
    the training split with the training augmentation, preprocessing and loss, then
    converted; for when post-training quantization misses the budget. The graph is the
    deployed one (a detector's outputs are probabilities), so what is trained is what ships.
    Given a `teacher` (the float model, usually), the loss blends in the task's
    distillation loss against the teacher's outputs (edgecnn.training.distill)."""
    from edgecnn.training.distill import blend, check_shapes, frozen, require_hooks
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from edgecnn.core.descriptors import quiet

    if epochs < 1:
        raise UserError("--qat needs --epochs >= 1")
    task = qat_task(card, data_spec, seed, max_images)
    if teacher is not None:
        require_hooks(task)
        teacher = frozen(teacher)
    calibration = preprocess_batch(list(calibration_images), card.replace(layout="nhwc"))
    batch = batch or get_task(card.task).training().QAT_BATCH
    sample = torch.zeros(2, *card.input_size, card.channels)
    batch_dim = torch.export.Dim("batch", min=1, max=65536)
    with quiet():
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

        # Frozen BatchNorm statistics (a standard QAT variant): the BatchNorms are folded into
        # the convolutions of the exported graph, as post-training quantization folds them.
        # (Folding them before the export cost a detector 1 point of mAP@0.5:0.95, and leaving
        # them to torchao's QAT fusion made the conversion take 40 s.) The export is of eval mode,
        # the deployed graph: a detector's training mode changes its outputs.
        from torchao.quantization.pt2e.utils import _fuse_conv_bn_

        graph = torch.export.export(channel_last(copy.deepcopy(model), train=False), (sample,), strict=True,
                                    dynamic_shapes=(({0: batch_dim},),)).module()
        _fuse_conv_bn_(graph)
        with float_layers_explained(float_layers):
            prepared = prepare_qat_pt2e(graph, quantizer(per_channel, float_layers, qat=True))
    # activation ranges: measured on the calibration images through the float graph, then frozen
    fake_quantizers = activation_fake_quantizers(prepared)
    for fake_quantizer in fake_quantizers:
        fake_quantizer.disable_fake_quant()
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for start in range(0, len(calibration), batch):
            prepared(torch.from_numpy(calibration[start:start + batch]))
    for fake_quantizer in fake_quantizers:
        fake_quantizer.enable_fake_quant()
        fake_quantizer.disable_observer()
    move_exported_model_to_train(prepared)  # dropout on (BatchNorms are folded)
    optimizer = torch.optim.SGD(prepared.parameters(), lr=lr or get_task(card.task).training().QAT_LR, momentum=0.9, nesterov=True,
                                foreach=True)
    steps = epochs * -(-len(task.train_dataset) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for epoch in range(epochs):
        task.train_dataset.epoch = epoch
        order = torch.randperm(len(task.train_dataset), generator=torch.Generator().manual_seed(seed * 1009 + epoch))
        loader = DataLoader(task.train_dataset, batch_size=batch, sampler=order.tolist(), collate_fn=task.collate)
        total, seen = 0.0, 0
        for items in tqdm(loader, desc=f"QAT epoch {epoch + 1}/{epochs}", leave=False, disable=None):
            with quiet():
                outputs = prepared(items[0].permute(0, 2, 3, 1).contiguous())
                if teacher is None:
                    loss = task.deployed_loss(outputs, items)
                else:
                    student = task.from_deployed(outputs)
                    with torch.no_grad():
                        target = task.teacher_outputs(teacher, items)
                    check_shapes(student, target)
                    loss = blend(task, student, target, items, distill_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, seen = total + float(loss.detach()) * len(items[0]), seen + len(items[0])
        log(f"QAT epoch {epoch + 1}/{epochs}  loss {total / seen:.4f}")
    move_exported_model_to_eval(prepared)
    with quiet():
        from torchao.quantization.pt2e import allow_exported_model_train_eval

        quantized = convert_pt2e(prepared, fold_quantize=False)
        move_exported_model_to_eval(quantized)
        allow_exported_model_train_eval(quantized)
    qcard = card.replace(layout="nhwc", precision="int8", quantization={
        "scheme": "pt2e-symmetric-qat", "weights": "per-channel" if per_channel else "per-tensor",
        "qat_epochs": epochs, "float_layers": list(float_layers),
        "qat_distill_weight": distill_weight if teacher is not None else 0.0})
    return QuantizedModel(quantized, qcard, per_channel, list(float_layers), qat=True)
