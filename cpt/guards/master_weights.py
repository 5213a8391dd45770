"""Reading and writing a trained weight as the optimizer steps it: under DeepSpeed ZeRO-1/2 the optimizer holds an
fp32 master copy of each weight, and a change to the model's working copy alone is overwritten at the next step.
The guards that correct weights after each optimizer step (OSF's projection, GPM's) go through these two."""

from __future__ import annotations

import torch


def master_value(trainer, param: torch.Tensor) -> torch.Tensor:
    """The weight's value; under DeepSpeed the optimizer's fp32 master copy, which is what steps."""
    if trainer is not None and trainer.is_deepspeed_enabled:
        from deepspeed.utils import safe_get_full_fp32_param

        return safe_get_full_fp32_param(param)
    return param.data


def set_master_value(trainer, param: torch.Tensor, value: torch.Tensor) -> None:
    """Set the weight, its master copy too under DeepSpeed."""
    if trainer is not None and trainer.is_deepspeed_enabled:
        from deepspeed.utils import safe_set_full_fp32_param

        safe_set_full_fp32_param(param, value)
        param.data.copy_(value.to(param.dtype))  # the working copy the next forward reads
    else:
        param.data.copy_(value)
