"""Naive, independent computations of every probe metric — the oracles tests compare against.

Nothing here uses probekit's core: it runs each prompt alone, differences state
dicts, and uses torch's own KL and norms.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F


def ids(tok, prompt: str, target: str | None) -> tuple[list[int], list[int]]:
    full = tok(prompt + (target or ""), split_special_tokens=True)["input_ids"]
    n_prompt = len(tok(prompt, split_special_tokens=True)["input_ids"])
    return full[:n_prompt], full[n_prompt:]


@torch.no_grad()
def run_one(model, tok, prompt: str, target: str | None):
    """Logits (float64) at the read positions and hidden states of one prompt, alone."""
    model.eval()
    p, t = ids(tok, prompt, target)
    out = model(input_ids=torch.tensor([p + t]), output_hidden_states=True)
    start = len(p) - 1
    positions = list(range(start, start + max(len(t), 1)))
    logits = out.logits[0, positions].double()
    hidden = [h[0].double() for h in out.hidden_states]
    return logits, hidden, t


def watch_metrics(model_before, model_after, tok, prompt, target, k=5):
    zb, hb, t = run_one(model_before, tok, prompt, target)
    za, ha, _ = run_one(model_after, tok, prompt, target)
    pb, pa = F.softmax(zb, -1), F.softmax(za, -1)
    kl = F.kl_div(pa.log(), pb, reduction="none").sum(-1).mean().item()
    dlogp = float("nan")
    if t:
        dlogp = (pa.log()[range(len(t)), t] - pb.log()[range(len(t)), t]).sum().item()
    flip = bool((zb.argmax(-1) != za.argmax(-1)).any())
    cz = lambda z: z - z.mean(-1, keepdim=True)  # noqa: E731
    logit_l2 = torch.linalg.vector_norm(cz(za) - cz(zb), dim=-1).mean().item()
    cos = [
        (1 - F.cosine_similarity(b, a, dim=-1)).mean().item() for b, a in zip(hb, ha, strict=True)
    ]
    rel = [
        (torch.linalg.vector_norm(a - b, dim=-1) / torch.linalg.vector_norm(b, dim=-1))
        .mean()
        .item()
        for b, a in zip(hb, ha, strict=True)
    ]
    top_b = pb[0].topk(k)
    top_a = pa[0].topk(k)
    return {
        "kl": kl,
        "dlogp_target": dlogp,
        "top1_flip": flip,
        "logit_l2": logit_l2,
        "cos_drift": cos,
        "rel_l2_drift": rel,
        "topk_before": (top_b.indices.tolist(), top_b.values.tolist()),
        "topk_after": (top_a.indices.tolist(), top_a.values.tolist()),
    }


def example_loss(model, tok, prompt, target) -> tuple[float, list[float]]:
    """Mean target-token NLL and the per-token NLLs, with F.cross_entropy."""
    with torch.no_grad():
        logits, _, t = run_one(model, tok, prompt, target)
        nll = F.cross_entropy(logits, torch.tensor(t), reduction="none")
    return nll.mean().item(), nll.tolist()


def gradient(model, tok, prompt, target, names: list[str]) -> dict[str, torch.Tensor]:
    """∇θ of the mean target NLL w.r.t. the named parameters, in eval mode."""
    model.eval()
    p, t = ids(tok, prompt, target)
    logits = model(input_ids=torch.tensor([p + t])).logits[0, len(p) - 1 : len(p) - 1 + len(t)]
    loss = F.cross_entropy(logits.float(), torch.tensor(t))
    params = dict(model.named_parameters(remove_duplicate=False))
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return {n: g.double() for n, g in zip(names, grads, strict=True)}


def state_delta(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]):
    """Per-tensor naive delta statistics from two state dicts (keys from ``before``)."""
    out = {}
    for name, b in before.items():
        d = after[name].double() - b.double()
        out[name] = {
            "l2": torch.linalg.vector_norm(d).item(),
            "l1": d.abs().sum().item(),
            "linf": d.abs().max().item(),
            "changed": int((d != 0).sum()),
            "numel": d.numel(),
            "theta_l2": torch.linalg.vector_norm(b.double()).item(),
        }
    return out


def trainable_state(model) -> dict[str, torch.Tensor]:
    """Clones of every distinct trainable parameter, by its first name."""
    seen, out = set(), {}
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out[name] = p.detach().clone()
    return out


def layer_of(name: str) -> str:
    m = re.search(r"\.(?:h|layers)\.(\d+)\.", name)
    return f"block.{m.group(1)}" if m else name


def sgd_stepped(model, tok, prompt, target, lr: float):
    """A deep copy of ``model`` after one plain SGD step on (prompt, target), by hand."""
    import copy

    state = trainable_state(model)
    grads = gradient(model, tok, prompt, target, list(state))
    stepped = copy.deepcopy(model)
    params = dict(stepped.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, g in grads.items():
            params[name].copy_((params[name].double() - lr * g).to(params[name].dtype))
    return stepped.eval()


def tracin(model, tok, example: tuple[str, str], watch: tuple[str, str], lr: float) -> float:
    """First-order Δlog p(watch target) of one SGD step on ``example``: lr·∇log p(o)·∇L(u)."""
    names = list(trainable_state(model))
    g_u = gradient(model, tok, *example, names)
    g_o = gradient(model, tok, *watch, names)  # of the mean NLL over the watch target
    n_target = len(ids(tok, *watch)[1])
    return lr * n_target * sum(float((g_u[n] * g_o[n]).sum()) for n in names)


def grad_norm_sq(model, tok, prompt, target) -> float:
    """‖∇θ L‖² over every distinct trainable parameter."""
    grads = gradient(model, tok, prompt, target, list(trainable_state(model)))
    return sum(float((g * g).sum()) for g in grads.values())


def grad_x_input(model, tok, prompt, target) -> list[float]:
    """(∂ log p(target) / ∂eᵢ)·eᵢ per input token eᵢ (prompt + target[:-1]), by autograd."""
    model.eval()
    p, t = ids(tok, prompt, target)
    embeds = model.get_input_embeddings()(torch.tensor([p + t[:-1]])).detach().requires_grad_()
    logits = model(inputs_embeds=embeds).logits[0, len(p) - 1 :]
    logp = torch.log_softmax(logits.float(), -1)[range(len(t)), t].sum()
    (g,) = torch.autograd.grad(logp, embeds)
    return (g * embeds).sum(-1)[0].tolist()
