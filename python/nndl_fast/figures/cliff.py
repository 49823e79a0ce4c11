r"""Fig 1.5: the gradient cliff of a one-unit recurrent network, and clipping by norm (1.25).

h_t = σ(w h_{t−1} + b), h₀ = 0.3, L(w, b) = (h₁₀₀ − 0.65)². Where h₀ sits on the boundary
between the basins of the map's two stable fixed points, h₁₀₀ jumps from one to the other
across a band of b far narrower than any grid: the loss has a step (the cliff), and near the
cusp of the bistable region (w ≈ 5) the gradient grows by orders of magnitude within a
thousandth of the step. Gradient descent that reaches it is thrown far away; clipped by norm
its steps stay at most lr·1.25 long.

The surface and its gradient are computed for a whole grid at once: the forward keeps
h₀ … h₁₀₀ (arrays shaped like the grid), the backward runs BPTT analytically,
δ_{t−1} = δ_t σ'_t w with ∂L/∂w += δ_t σ'_t h_{t−1}, ∂L/∂b += δ_t σ'_t.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import clip

TITLE = "Fig 1.5: the gradient cliff and clipping by norm"
STEPS, H0, TARGET = 100, 0.3, 0.65
MAX_NORM = 1.25
LR, START, ITERATIONS = 1.0, (6.0, -2.0), 100
CROSS_W = 5.0  # the cross-section: near the cusp of the bistable region the cliff is steep but resolvable


def surface(w: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L(w, b) and its gradient (∂L/∂w, ∂L/∂b) by BPTT through the 100 steps, for arrays of
    (w, b) that broadcast together; float64."""
    w, b = np.broadcast_arrays(np.asarray(w, np.float64), np.asarray(b, np.float64))
    h = np.empty((STEPS + 1, *w.shape))
    h[0] = H0
    for t in range(STEPS):
        h[t + 1] = 1.0 / (1.0 + np.exp(-(w * h[t] + b)))
    loss = (h[STEPS] - TARGET) ** 2
    delta = 2.0 * (h[STEPS] - TARGET)  # ∂L/∂h_t, from t = 100 down
    dw, db = np.zeros_like(loss), np.zeros_like(loss)
    for t in range(STEPS, 0, -1):
        s = delta * h[t] * (1.0 - h[t])  # ∂L/∂(w h_{t−1} + b)
        dw += s * h[t - 1]
        db += s
        delta = s * w
    return loss, dw, db


def cliff_edge(w: float) -> float:
    """The b at which h₁₀₀ jumps from the low fixed point to the high one, at this w (bisection
    to the last bit, on b ∈ [−8, −1] where the jump is for 4 < w < 10)."""
    lo, hi = -8.0, -1.0
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        h = H0
        for _ in range(STEPS):
            h = 1.0 / (1.0 + np.exp(-(w * h + mid)))
        lo, hi = (lo, mid) if h > 0.5 else (mid, hi)
    return 0.5 * (lo + hi)


def descend(start: tuple[float, float], lr: float, iterations: int, max_norm: float | None) -> np.ndarray:
    """Gradient descent on L from ``start``; with ``max_norm``, the gradient is clipped by norm
    with nndl_fast.clip.clip_grad_norm_ (the chapter's convention). Returns the (iterations + 1, 2) path."""
    path = np.empty((iterations + 1, 2))
    path[0] = start
    grad = np.empty(2)
    for i in range(iterations):
        _, dw, db = surface(path[i, 0], path[i, 1])
        grad[:] = (dw, db)
        if max_norm is not None:
            clip.clip_grad_norm_([grad], max_norm)
        path[i + 1] = path[i] - lr * grad
    return path


def compute(quick: bool = False) -> dict[str, Any]:
    """The surface on a grid, a fine cross-section through the cliff at w = 5, and the two paths."""
    n = 121 if quick else 301
    w_axis, b_axis = np.linspace(0.0, 10.0, n), np.linspace(-6.0, 6.0, n)
    loss, dw, db = surface(w_axis[:, None], b_axis[None, :])
    edge = cliff_edge(CROSS_W)
    # A uniform grid across the cliff plus points closing in on its edge at 10^-k, so the
    # steepest part is sampled whatever the grid's phase.
    near = edge + np.concatenate([-np.logspace(-10, -1, 46), np.logspace(-10, -1, 46)])
    cross_b = np.union1d(np.linspace(edge - 0.3, edge + 0.3, 201 if quick else 601), near)
    _, cdw, cdb = surface(CROSS_W, cross_b)
    cross_norm = np.hypot(cdw, cdb)
    paths = {name: descend(START, LR, ITERATIONS, m) for name, m in (("plain", None), ("clipped", MAX_NORM))}
    steps = {name: np.hypot(*np.diff(p, axis=0).T) for name, p in paths.items()}
    band, outside = np.abs(cross_b - edge) <= 0.005, np.abs(cross_b - edge) >= 0.05
    return {
        "w": w_axis,
        "b": b_axis,
        "loss": loss,
        "grad_norm": np.hypot(dw, db),
        "cross_w": CROSS_W,
        "cross_b": cross_b,
        "cross_norm": cross_norm,
        "edge": edge,
        "jump": float(cross_norm[band].max() / cross_norm[outside].max()),
        "paths": paths,
        "steps": steps,
        "final_loss": {name: float(surface(*p[-1])[0]) for name, p in paths.items()},
        "lr": LR,
        "max_norm": MAX_NORM,
    }


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.15, 1]})
    mesh = ax.pcolormesh(r["w"], r["b"], np.log10(r["loss"].T + 1e-12), shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="log₁₀ L(w, b)")
    for name, color in (("plain", "tab:red"), ("clipped", "black")):
        p = r["paths"][name]
        label = "gradient descent" if name == "plain" else f"clipped by norm ({r['max_norm']})"
        ax.plot(p[:, 0], p[:, 1], ".-", color=color, ms=3, lw=1, label=f"{label}, lr = {r['lr']:g}")
    ax.plot(*r["paths"]["plain"][0], "*", color="white", mec="black", ms=12)
    ax.axvline(r["cross_w"], color="0.8", ls=":", lw=1)
    ax.set(xlabel="w", ylabel="b", title=r"$L = (h_{100} - 0.65)^2,\ h_t = \sigma(w\,h_{t-1} + b),\ h_0 = 0.3$")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.8)
    bx.semilogy(r["cross_b"] - r["edge"], r["cross_norm"], color="tab:blue")
    bx.set(
        xlabel=f"b − b_edge (b_edge = {r['edge']:.4f}, the cliff at w = {r['cross_w']:g})",
        ylabel="‖∇L‖",
        title=f"cross-section at w = {r['cross_w']:g}: ‖∇L‖ rises {r['jump']:.0f}× at the cliff",
    )
    bx.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    s = r["steps"]
    bound = r["lr"] * r["max_norm"]
    return (
        f"The loss of h_t = σ(w h_{{t−1}} + b) after 100 steps has a cliff: at w = {r['cross_w']:g} its gradient "
        f"norm is {r['jump']:.0f}× larger within 0.005 of the edge b = {r['edge']:.4f} than anywhere 0.05 or more "
        f"away. Gradient descent from (w, b) = {START} with lr = {r['lr']:g} reaches it and takes a step of "
        f"{s['plain'].max():.2f} (ending at loss {r['final_loss']['plain']:.3f}); clipped by norm at "
        f"{r['max_norm']} its longest step is {s['clipped'].max():.3f} ≤ lr·{r['max_norm']} = {bound:.3g} "
        f"and it ends at loss {r['final_loss']['clipped']:.3f}."
    )
