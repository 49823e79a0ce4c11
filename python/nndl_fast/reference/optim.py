"""NumPy references of nndl_fast.optim: one tensor, float64, the docstrings' formulas.

Each ``<rule>(theta, g, state, t, hp, grad_scale=1.0)`` returns the new θ and updates
the dict ``state`` (buffers named as in the optimizer's state). ``hp`` holds the
hyper-parameters with the names of the optimizer classes (a group dict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray


def lr_at(hp: dict[str, Any], t: int) -> float:
    """α of step t: a schedule is evaluated at n = t − 1, the updates done before this one."""
    lr = hp["lr"]
    return float(lr(t - 1)) if callable(lr) else float(lr)


def effective_grad(theta: Array, g: Array, hp: dict[str, Any], grad_scale: float) -> Array:
    """g' = s·g + λ2·θ + λ1·θ/sqrt(θ² + ε1)  (1.59, 1.62, 1.63); s < 0 when maximizing."""
    s = -grad_scale if hp["maximize"] else grad_scale
    gp = s * g
    gp = gp + hp["weight_decay"] * theta
    gp = gp + hp["l1"] * theta / np.sqrt(theta * theta + hp["l1_eps"])
    return gp


def decayed(theta: Array, hp: dict[str, Any], lr: float) -> Array:
    """θ ← (1 − w)·θ  (1.64), or (1 − α·w)·θ with decay_scaled_by_lr."""
    w = hp["decoupled_weight_decay"]
    return (1.0 - (lr * w if hp["decay_scaled_by_lr"] else w)) * theta


def eps_parts(hp: dict[str, Any]) -> tuple[float, float]:
    """(ε inside the root, ε outside): ``eps`` where eps_inside_sqrt puts it, plus optax's eps_root inside."""
    eps_in, eps_out = (hp["eps"], 0.0) if hp["eps_inside_sqrt"] else (0.0, hp["eps"])
    return eps_in + hp.get("eps_root", 0.0), eps_out


def sgd(theta, g, state, t, hp, grad_scale=1.0):
    lr = lr_at(hp, t)
    g = effective_grad(theta, g, hp, grad_scale)
    theta = decayed(theta, hp, lr)
    rho = hp["momentum"]
    if rho == 0:
        return theta - lr * g  # (1.3)
    if hp["convention"] in ("chapter", "keras"):
        delta = rho * state["momentum_buffer"] - lr * g  # Δθ_t = ρΔθ_{t−1} − α g_t  (1.15)
        state["momentum_buffer"] = delta
        if hp["nesterov"]:
            return theta + rho * delta - lr * g  # φ_t = φ_{t−1} + ρΔθ_t − α g(φ_{t−1})
        return theta + delta
    # torch's form; optax's and ONNX's keep a loaded buffer at the first step
    if t == 1:
        b = g.copy() if hp["convention"] == "torch" else rho * state["momentum_buffer"] + g
    else:
        b = rho * state["momentum_buffer"] + (1 - hp["dampening"]) * g
    state["momentum_buffer"] = b
    if hp["nesterov"]:
        return theta - lr * (g + rho * b)
    return theta - lr * b


def adagrad(theta, g, state, t, hp, grad_scale=1.0):
    lr = lr_at(hp, t) / (1 + (t - 1) * hp["lr_decay"])
    g = effective_grad(theta, g, hp, grad_scale)
    theta = decayed(theta, hp, lr)
    G = state["sum"] + g * g  # (1.8)
    state["sum"] = G
    eps_in, eps_out = eps_parts(hp)
    return theta - lr * g / (np.sqrt(G + eps_in) + eps_out)  # (1.9)


def rmsprop(theta, g, state, t, hp, grad_scale=1.0):
    lr = lr_at(hp, t)
    beta = hp["beta"]
    g = effective_grad(theta, g, hp, grad_scale)
    theta = decayed(theta, hp, lr)
    G = beta * state["square_avg"] + (1 - beta) * g * g  # (1.10)
    state["square_avg"] = G
    corr = 1 / (1 - beta**t) if hp.get("bias_correction", False) else 1.0  # optax's bias_correction
    G = G * corr
    if hp["centered"]:
        gbar = beta * state["grad_avg"] + (1 - beta) * g
        state["grad_avg"] = gbar
        G = G - (gbar * corr) ** 2
    eps_in, eps_out = eps_parts(hp)
    scaled = g / (np.sqrt(G + eps_in) + eps_out)  # (1.12) without α
    if hp["momentum"] > 0:
        b = hp["momentum"] * state["momentum_buffer"] + scaled
        state["momentum_buffer"] = b
        if hp.get("nesterov", False):  # optax's
            return theta - lr * (scaled + hp["momentum"] * b)
        return theta - lr * b
    return theta - lr * scaled


def adadelta(theta, g, state, t, hp, grad_scale=1.0):
    lr = lr_at(hp, t)
    rho, eps = hp["rho"], hp["eps"]
    g = effective_grad(theta, g, hp, grad_scale)
    theta = decayed(theta, hp, lr)
    G = rho * state["square_avg"] + (1 - rho) * g * g  # (1.10)
    delta = -np.sqrt(state["acc_delta"] + eps) / np.sqrt(G + eps) * g  # (1.14)
    state["square_avg"] = G
    state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta  # (1.13)
    return theta + lr * delta


def adam(theta, g, state, t, hp, grad_scale=1.0):
    """With the peers' options (class Adam): eps_root, eps_hat, amsgrad_v_hat,
    bias_correction_exponent, decay_after_step."""
    lr = lr_at(hp, t)
    beta1, beta2 = hp["betas"]
    g = effective_grad(theta, g, hp, grad_scale)
    after = hp.get("decay_after_step", False)
    if not after:
        theta = decayed(theta, hp, lr)
    M = beta1 * state["exp_avg"] + (1 - beta1) * g  # (1.19)
    G = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g  # (1.20)
    state["exp_avg"], state["exp_avg_sq"] = M, G
    n = t - 1 if hp.get("bias_correction_exponent", "t") == "n" else t  # ONNX: none at n = 0
    corr1 = 1 - beta1**n if n > 0 else 1.0
    corr2 = 1 - beta2**n if n > 0 else 1.0
    eps_in, eps_out = eps_parts(hp)
    if hp["amsgrad"] and hp.get("amsgrad_v_hat", False):  # optax: the max of the corrected Ĝ
        G_hat = np.maximum(state["max_exp_avg_sq"], G / corr2)
        state["max_exp_avg_sq"] = G_hat
        step = lr * (M / corr1) / (np.sqrt(G_hat + eps_in) + eps_out)
    else:
        if hp["amsgrad"]:
            G = np.maximum(state["max_exp_avg_sq"], G)
            state["max_exp_avg_sq"] = G
        if hp.get("eps_hat", False):  # Keras's ε̂: ε on the uncorrected G, √(1 − β2ᵗ) in the step size
            step = lr * np.sqrt(corr2) / corr1 * M / (np.sqrt(G + eps_in) + eps_out)
        else:
            M_hat = M / corr1  # (1.21)
            G_hat = G / corr2  # (1.22)
            step = lr * M_hat / (np.sqrt(G_hat + eps_in) + eps_out)  # (1.23)
    theta = theta - step
    return decayed(theta, hp, lr) if after else theta  # ONNX's norm_coefficient_post: θ ← d(θ − Δ)


def nadam_mu(beta1: float, psi: float, t: int) -> float:
    return beta1 * (1 - 0.5 * 0.96 ** (t * psi))


def nadam(theta, g, state, t, hp, grad_scale=1.0):
    """state also holds the scalar 'mu_product' (Π_{i<t} μ_i, 1.0 initially)."""
    lr = lr_at(hp, t)
    beta1, beta2 = hp["betas"]
    g = effective_grad(theta, g, hp, grad_scale)
    theta = decayed(theta, hp, lr)
    if hp.get("momentum_schedule", "dozat") == "constant":  # optax's nadam
        mu = mu_next = beta1
    else:
        mu = nadam_mu(beta1, hp["momentum_decay"], t)
        mu_next = nadam_mu(beta1, hp["momentum_decay"], t + 1)
    prod = state["mu_product"] * mu
    state["mu_product"] = prod
    M = beta1 * state["exp_avg"] + (1 - beta1) * g
    G = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = M, G
    G_hat = G / (1 - beta2**t)
    eps_in, eps_out = eps_parts(hp)
    denom = np.sqrt(G_hat + eps_in) + eps_out
    return theta - lr * ((1 - mu) * g / (1 - prod) + mu_next * M / (1 - prod * mu_next)) / denom


RULES = {"sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam, "nadam": nadam}
