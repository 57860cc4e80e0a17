"""``preserved``: every hook added inside is gone on exit, the model's own stay."""

from __future__ import annotations

import torch

from probekit.core.params import select
from probekit.core.sandbox import parameters, preserved, submodules


def _count(module: torch.nn.Module) -> tuple[int, ...]:
    return tuple(
        len(getattr(module, attr))
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_hooks_always_called",
            "_forward_pre_hooks_with_kwargs",
        )
    )


def test_the_walk_matches_nn_module(tiny_gpt2):
    model, _ = tiny_gpt2
    model.extra = model.transformer.h[0]  # a module reachable twice is listed once
    assert submodules(model) == list(model.modules())
    assert parameters(submodules(model)) == list(model.parameters())


def test_hooks_added_inside_are_removed_with_their_options_and_old_ones_stay(tiny_gpt2):
    model, _ = tiny_gpt2
    block = model.transformer.h[1]
    kept = block.register_forward_hook(lambda m, a, k, o: None, with_kwargs=True)
    before = [_count(m) for m in model.modules()]
    with preserved(model, select(model)):
        block.register_forward_hook(lambda m, a, k, o: None, with_kwargs=True, always_call=True)
        block.register_forward_pre_hook(lambda m, a, k: None, with_kwargs=True)
        model.lm_head.register_full_backward_hook(lambda m, gi, go: None)
        model.register_full_backward_pre_hook(lambda m, go: None)
        model(input_ids=torch.tensor([[1, 2, 3]]), output_hidden_states=True)
    assert [_count(m) for m in model.modules()] == before
    assert kept.id in block._forward_hooks and kept.id in block._forward_hooks_with_kwargs
    assert "_output_capturing_hooks_installed" not in model.__dict__


def test_modes_flags_and_grads_come_back(tiny_gpt2):
    model, _ = tiny_gpt2
    model.train()
    model.transformer.h[0].eval()
    model.transformer.wpe.weight.requires_grad_(False)
    model.lm_head.weight.grad = torch.ones_like(model.lm_head.weight)
    modes = [m.training for m in model.modules()]
    with preserved(model, select(model, layers=[0])):
        assert not any(m.training for m in model.modules())
        assert model.transformer.h[0].attn.c_attn.weight.requires_grad
        assert not model.transformer.h[1].attn.c_attn.weight.requires_grad
        assert model.lm_head.weight.grad is None
    assert [m.training for m in model.modules()] == modes
    assert not model.transformer.wpe.weight.requires_grad
    assert model.transformer.h[1].attn.c_attn.weight.requires_grad
    assert torch.equal(model.lm_head.weight.grad, torch.ones_like(model.lm_head.weight))
