r"""Bayesian optimisation (1.6.3, Algorithm 1.1): a Gaussian process and an acquisition function.

The model. The objective, on the unit cube of the space's encoding and standardised to zero mean
and unit variance over the observations, is a zero-mean Gaussian process with a Matérn-5/2 ARD
kernel plus a learned noise term

.. math::  k(x, x') = \sigma_f^2 (1 + \sqrt5 r + 5r^2/3) e^{-\sqrt5 r}, \quad
           r^2 = \sum_j (x_j - x'_j)^2 / \ell_j^2, \qquad y = f(x) + \varepsilon,\ \varepsilon \sim N(0, \sigma_n^2).

The hyper-parameters (one length-scale ℓ per parameter of the space — a categorical's one-hot
coordinates share theirs, so any two distinct choices are equally far apart: an exchangeable
kernel — σ_f², σ_n²) maximise the log marginal likelihood plus weak priors, by
multi-start L-BFGS-B on their logarithms with analytic gradients (the priors keep ℓ near the
cube's scale and the noise small: ``neg_log_marginal_likelihood``). The posterior at x is

.. math::  \mu(x) = k_*^\top (K + \sigma_n^2 I)^{-1} y, \qquad
           \sigma^2(x) = k(x, x) - k_*^\top (K + \sigma_n^2 I)^{-1} k_*,

computed from the Cholesky factor L of K + σ_n² I; a point added with the hyper-parameters
unchanged (a constant-liar point, or an observation between two refits) extends L by one block
row in O(n²) instead of a fresh O(n³) factorisation.

The acquisition (minimisation; y* is the incumbent, the smallest posterior mean at the observed
points, which is the best observed value when the objective is noise-free):

- ``"ei"``, expected improvement, eq. 1.58: EI(x) = ∫ max(y* − y, 0) p(y | x, H) dy
  = σ(x) [z Φ(z) + φ(z)] with z = (y* − μ(x))/σ(x); maximised as log EI, computed without
  underflow far from the incumbent (Ament et al. 2023), so its gradient never vanishes;
- ``"pi"``, probability of improvement: Φ(z);
- ``"ucb"``, GP-UCB (Srinivas et al. 2010) for minimisation: −μ(x) + √β σ(x), with
  β = 2 log(d t² π² / (6 δ)), δ = 0.1, t the number of observations, unless ``ucb_beta`` is given.

It is maximised by multi-start L-BFGS-B: the acquisition is evaluated at random points of the
cube and at perturbations of the best observed points, the best few start one L-BFGS-B run (all
starts in one call, their sum being separable), and the results are rounded to valid
configurations (integers, one choice per categorical, inactive parameters at their constant)
and compared again.

Parallel trials: with other trials still running (``optimize(n_jobs=k)``, or several ``ask``
before ``tell``), each running configuration enters the model with a made-up value, a constant
liar (Ginsbourger et al. 2010): ``liar="mean"`` (the default) the mean of the observed values,
``"min"`` the best one, ``"max"`` the worst. The k proposals of a batch therefore spread out
instead of coinciding.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _checks, _core
from .samplers import Sampler
from .space import Categorical, Space

if TYPE_CHECKING:
    from .study import Study

SQRT5 = math.sqrt(5.0)
JITTER = 1e-9  # added to the diagonal beside σ_n²: keeps the Cholesky factor defined for repeated points
LOG_LENGTHSCALE = (math.log(1e-2), math.log(1e2))
LOG_SIGNAL = (math.log(1e-2), math.log(1e2))
LOG_NOISE = (math.log(1e-8), math.log(1.0))


_SCIPY: Any = None


def _scipy() -> Any:
    """SciPy, imported on first use: the package itself depends on NumPy only."""
    global _SCIPY
    if _SCIPY is None:
        try:
            import scipy.linalg
            import scipy.optimize
            import scipy.special
        except ImportError as e:
            raise ImportError("the GP sampler of nndl_fast.search needs SciPy: pip install 'nndl_fast[search]'") from e
        _SCIPY = scipy
    return _SCIPY


def _one_blas_thread() -> Any:
    """A context with BLAS on one thread (threadpoolctl, when installed): the matrices here are
    at most a few hundred wide, where a second thread only adds wake-ups, and on a busy machine
    a descheduled BLAS thread turns each tiny call inside L-BFGS-B into milliseconds."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER = False
        else:
            _scipy()  # load SciPy's BLAS (a library of its own) before the controller looks
            _CONTROLLER = ThreadpoolController()  # inspecting the loaded libraries takes milliseconds: once
    if _CONTROLLER is False:
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER: Any = None


def matern52(r: np.ndarray) -> np.ndarray:
    """(1 + √5 r + 5r²/3) e^{−√5 r}: the Matérn-5/2 correlation at scaled distance r."""
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-SQRT5 * r)


def expected_improvement(mean: Any, std: Any, best: float) -> np.ndarray:
    """EI of eq. 1.58 for minimisation, in closed form: σ [z Φ(z) + φ(z)], z = (best − μ)/σ.

    ``std`` = 0 gives max(best − μ, 0).
    """
    sp = _scipy()
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (best - mean) / std
        ei = std * (z * sp.special.ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return np.where(std > 0, ei, np.maximum(best - mean, 0.0))


def _log_h(z: np.ndarray, sp: Any) -> tuple[np.ndarray, np.ndarray]:
    """log h(z) = log(φ(z) + zΦ(z)) and its derivative Φ(z)/h(z), accurate for z → −∞ as well.

    Below z = −1, h = φ(z)(1 + zR) with R = Φ(z)/φ(z) = √(π/2) erfcx(−z/√2) (no underflow), and
    Φ/h = R/(1 + zR); both branches are computed on the whole (small) array and selected.
    """
    z = np.maximum(z, -1e4)  # EI there is exp(-5e7): zero in any float, the gradient still points home
    log_phi = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    if z.min() > -1.0:  # every z on the direct branch (the common case inside the optimiser)
        Phi = sp.special.ndtr(z)
        h = np.exp(log_phi) + z * Phi
        return np.log(h), Phi / h
    zl = np.minimum(z, -1.0)
    R = math.sqrt(math.pi / 2) * sp.special.erfcx(-zl / math.sqrt(2))
    zR = zl * R
    Phi = sp.special.ndtr(z)
    h = np.exp(log_phi) + z * Phi
    hi = z > -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(hi, np.log(np.where(hi, h, 1.0)), log_phi + np.log1p(zR))
        dlog = np.where(hi, Phi / np.where(hi, h, 1.0), R / (1.0 + zR))
    return out, dlog


class GaussianProcess:
    """A zero-mean GP with the Matérn-5/2 ARD kernel and noise σ_n², conditioned on (X, y).

    ``lengthscales`` has one entry per coordinate of X. ``fit`` factorises, ``add`` appends
    points by a Cholesky block update, ``predict`` gives the posterior mean and variance of f
    (without the noise) and, if asked, their gradients with respect to the test points.
    """

    def __init__(self, lengthscales: Any, signal_var: float, noise_var: float) -> None:
        self.lengthscales = np.asarray(lengthscales, float)
        self.signal_var = float(signal_var)
        self.noise_var = float(noise_var)

    def kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return self.signal_var * matern52(self._dist(A, B))

    def _dist(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        a, b = A / self.lengthscales, B / self.lengthscales
        return self._scaled_dist(a, b, (b * b).sum(1))

    @staticmethod
    def _scaled_dist(a: np.ndarray, b: np.ndarray, bb: np.ndarray) -> np.ndarray:
        """r between the rows of a and b, already divided by ℓ; bb = Σ b² per row."""
        d2 = (a * a).sum(1)[:, None] + bb[None, :] - 2.0 * (a @ b.T)
        return np.sqrt(np.maximum(d2, 0.0))

    def _observed(self, X: np.ndarray, Linv: np.ndarray) -> None:
        """Keep X and what predict reads of it at every call: L⁻¹ and its transpose, 1/ℓ, K⁻¹y."""
        self.X, self.Linv = X, np.ascontiguousarray(Linv)
        self.Linv_t = np.ascontiguousarray(Linv.T)
        self.inv_ls = np.ascontiguousarray(1.0 / self.lengthscales)
        self.alpha = Linv.T @ (Linv @ self.y)

    def fit(self, X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        sp = _scipy()
        X = np.array(X, float)
        self.y = np.array(y, float)
        K = self.kernel(X, X)
        K[np.diag_indices_from(K)] += self.noise_var + JITTER
        self.L = sp.linalg.cholesky(K, lower=True)
        self._observed(X, sp.linalg.solve_triangular(self.L, np.eye(len(K)), lower=True))
        return self

    def add(self, X_new: np.ndarray, y_new: np.ndarray) -> GaussianProcess:
        """Condition on more points, hyper-parameters unchanged: L grows by a block row, O(n² k)."""
        sp = _scipy()
        X_new = np.atleast_2d(np.asarray(X_new, float))
        K12 = self.kernel(self.X, X_new)  # (n, k)
        K22 = self.kernel(X_new, X_new)
        K22[np.diag_indices_from(K22)] += self.noise_var + JITTER
        L21 = (self.Linv @ K12).T  # (k, n): L21 = K21 L11^-T
        L22 = sp.linalg.cholesky(K22 - L21 @ L21.T, lower=True)
        L22inv = sp.linalg.solve_triangular(L22, np.eye(len(K22)), lower=True)
        n, k = len(self.X), len(X_new)
        L = np.zeros((n + k, n + k))
        L[:n, :n], L[n:, :n], L[n:, n:] = self.L, L21, L22
        Linv = np.zeros((n + k, n + k))
        Linv[:n, :n], Linv[n:, n:] = self.Linv, L22inv
        Linv[n:, :n] = -L22inv @ L21 @ self.Linv
        self.L = L
        self.y = np.concatenate([self.y, np.asarray(y_new, float).reshape(-1)])
        self._observed(np.vstack([self.X, X_new]), Linv)
        return self

    def predict(self, Xs: np.ndarray, grad: bool = False) -> Any:
        """Posterior mean and variance of f at the rows of Xs; with grad, also d/dXs of both.

        dk(x, X_j)/dx = −g(r) (x − X_j)/ℓ², g = −(dk/dr)/r = σ_f² (5/3)(1 + √5 r) e^{−√5 r}: one
        compiled call (``_core.gp_posterior``), since the acquisition's maximiser calls this tens of
        times per suggestion on a few points, where NumPy's per-call cost would dominate."""
        Xs = np.ascontiguousarray(np.atleast_2d(Xs), dtype=float)
        return _core.gp_posterior(Xs, self.X, self.inv_ls, self.alpha, self.Linv, self.Linv_t, self.signal_var, grad)

    def predict_numpy(self, Xs: np.ndarray, grad: bool = False) -> Any:
        """predict in NumPy: the same formulas, the compiled call's reference (tests)."""
        Xs = np.atleast_2d(Xs)
        b = self.X / self.lengthscales
        sr = SQRT5 * self._scaled_dist(Xs / self.lengthscales, b, (b * b).sum(1))
        e = np.exp(-sr)
        p = 1.0 + sr
        ks = self.signal_var * ((p + sr * sr / 3.0) * e)  # (m, n): matern52(r)
        mean = ks @ self.alpha
        v = ks @ self.Linv.T
        var = np.maximum(self.signal_var - (v * v).sum(1), 1e-18)
        if not grad:
            return mean, var
        g = (self.signal_var * 5.0 / 3.0) * (p * e)
        GB = np.vstack([g * self.alpha, g * (v @ self.Linv)])  # g ⊙ α, g ⊙ K⁻¹k_*
        m = len(Xs)
        t = (np.concatenate([Xs, Xs]) * GB.sum(1)[:, None] - GB @ self.X) * (1.0 / self.lengthscales**2)
        return mean, var, -t[:m], 2.0 * t[m:]

    @staticmethod
    def neg_log_marginal_likelihood(
        theta: np.ndarray, D2: np.ndarray, y: np.ndarray, owner: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """−log p(y | X, θ) − log prior(θ) and its gradient; θ = (log ℓ per owner, log σ_f², log σ_n²).

        ``D2`` is (dim, n·n), the squared coordinate differences (a row per coordinate: both products
        below then run along rows n² long); ``owner[j]`` the ℓ of coordinate j.
        """
        sp = _scipy()
        n = len(y)
        n_l = len(theta) - 2
        ell2 = np.exp(2.0 * theta[:n_l])[owner]
        sf2, sn2 = math.exp(theta[-2]), math.exp(theta[-1])
        sr = np.sqrt((5.0 / ell2) @ D2).reshape(n, n)  # √5 r
        e = np.exp(-sr)
        C = (1.0 + sr + sr * sr / 3.0) * e  # matern52(r)
        K = sf2 * C
        K.flat[:: n + 1] += sn2 + JITTER
        lapack = sp.linalg.lapack  # called directly: this runs tens of times per suggestion
        L, info = lapack.dpotrf(K, lower=1, clean=1)
        if info != 0:
            return 1e10, np.zeros_like(theta)
        alpha, _ = lapack.dpotrs(L, y, lower=1)
        nll = 0.5 * y @ alpha + np.log(np.diag(L)).sum() + 0.5 * n * math.log(2 * math.pi)
        # dNLL/dθ = −½ tr(W dK/dθ), W = ααᵀ − K⁻¹, both symmetric: every sum over the full matrix
        # is taken over the lower triangle, strictly-lower entries counted twice (_lower_weights).
        Kinv, _ = lapack.dpotri(L, lower=1)  # K⁻¹'s lower triangle; the upper stays L's zeros
        W = np.outer(alpha, alpha)
        W -= Kinv
        W *= _lower_weights(n)
        M = W * e
        M *= 1.0 + sr  # −(dk/dr)/r = sf2 (5/3)(1 + √5 r) e^{−√5 r}: sf2·5/3 joins below
        g_dim = (-0.5 * sf2 * 5.0 / 3.0) * (D2 @ M.reshape(-1)) / ell2  # d/d log ℓ_j of the coordinate j
        grad = np.empty_like(theta)
        grad[:n_l] = np.bincount(owner, weights=g_dim, minlength=n_l)
        grad[-2] = -0.5 * sf2 * np.vdot(W, C)
        grad[-1] = -0.5 * sn2 * np.trace(W)
        # weak priors (those of Optuna's GP sampler): −0.1 (ℓ² + 1/ℓ²) per length-scale, which keeps ℓ
        # near the cube's scale; σ_f² ~ Gamma(2, 1) on standardised values; σ_n² ~ Gamma(1.1, 30)
        l2 = np.exp(2.0 * theta[:n_l])
        nll += 0.1 * (l2 + 1.0 / l2).sum()
        grad[:n_l] += 0.2 * (l2 - 1.0 / l2)
        nll += -(math.log(sf2) - sf2)
        grad[-2] += -(1.0 - sf2)
        nll += -(0.1 * math.log(sn2) - 30.0 * sn2)
        grad[-1] += -(0.1 - 30.0 * sn2)
        return float(nll), grad


_LOWER_WEIGHTS: dict[int, np.ndarray] = {}


def _lower_weights(n: int) -> np.ndarray:
    """(n, n): 2 below the diagonal, 1 on it, 0 above; Σ A⊙B over symmetric A, B = Σ A_lower⊙B⊙this."""
    w = _LOWER_WEIGHTS.get(n)
    if w is None:
        if len(_LOWER_WEIGHTS) > 64:
            _LOWER_WEIGHTS.clear()
        w = _LOWER_WEIGHTS[n] = np.tril(np.full((n, n), 2.0), -1) + np.eye(n)
    return w


def _owners(space: Space) -> np.ndarray:
    """For each coordinate of the encoding, the index of its parameter (its length-scale)."""
    owner = np.empty(space.dim, np.intp)
    for i, name in enumerate(space.params):
        owner[space.slices[name]] = i
    return owner


class GPSampler(Sampler):
    """Bayesian optimisation with a GP and EI (Algorithm 1.1); see the module docstring.

    The first ``n_startup_trials`` trials are random (1.6.2); after that each ``ask`` refits the
    hyper-parameters — from the previous optimum every ``refit_every`` observations, with
    ``n_restarts`` extra random starts every ``restart_every`` observations and while there are
    fewer than 20; in between the model keeps them and only refactorises — and maximises the
    acquisition.
    """

    def __init__(
        self,
        *,
        acquisition: str = "ei",
        n_startup_trials: int = 10,
        liar: str = "mean",
        ucb_beta: float | None = None,
        n_candidates: int = 512,
        n_starts: int = 4,
        n_restarts: int = 2,
        restart_every: int = 10,
        refit_every: int = 5,
    ) -> None:
        self.acquisition = _checks.choice("acquisition", acquisition, ("ei", "pi", "ucb"))
        self.n_startup_trials = _checks.integer("n_startup_trials", n_startup_trials, 1)
        self.liar = _checks.choice("liar", liar, ("mean", "min", "max"))
        self.ucb_beta = None if ucb_beta is None else _checks.real("ucb_beta", ucb_beta, 0.0)
        self.n_candidates = _checks.integer("n_candidates", n_candidates, 1)
        self.n_starts = _checks.integer("n_starts", n_starts, 0)
        self.n_restarts = _checks.integer("n_restarts", n_restarts, 0)
        self.restart_every = _checks.integer("restart_every", restart_every, 1)
        self.refit_every = _checks.integer("refit_every", refit_every, 1)
        self.acq_options: dict[str, Any] = {"maxiter": 50, "ftol": 1e-7}  # L-BFGS-B's, for the acquisition
        self.theta: list[float] | None = None  # the last hyper-parameters (warm start), saved
        self.n_fit = 0  # how many observations they were fitted on
        self.gp: GaussianProcess | None = None  # the model of the last proposal (not saved)

    def config(self) -> dict[str, Any]:
        return {
            "acquisition": self.acquisition,
            "n_startup_trials": self.n_startup_trials,
            "liar": self.liar,
            "ucb_beta": self.ucb_beta,
            "n_candidates": self.n_candidates,
            "n_starts": self.n_starts,
            "n_restarts": self.n_restarts,
            "restart_every": self.restart_every,
            "refit_every": self.refit_every,
        }

    def state(self) -> dict[str, Any]:
        return {"theta": self.theta, "n_fit": self.n_fit}

    def load_state(self, state: dict[str, Any]) -> None:
        self.theta = None if state.get("theta") is None else [float(t) for t in state["theta"]]
        self.n_fit = int(state.get("n_fit", 0))

    def bind(self, space: Space) -> None:
        super().bind(space)
        self.owner = _owners(space)
        self.n_params = len(space)
        self.has_discrete = any(isinstance(p, Categorical) or p.kind == "int" or p.when for p in space.params.values())
        self._encoded: dict[int, np.ndarray] = {}  # trial number -> its point (a trial's params never change)

    def _encode(self, trial: Any) -> np.ndarray:
        u = self._encoded.get(trial.number)
        if u is None:
            u = self._encoded[trial.number] = self.space.encode(trial.params)
        return u

    # -- model ---------------------------------------------------------------------------------

    def _fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Hyper-parameters by multi-start L-BFGS-B on the penalised log marginal likelihood."""
        sp = _scipy()
        n = len(y)
        restart = self.theta is None or n < 20 or n % self.restart_every == 0
        if self.theta is not None and (self.n_fit == n or (not restart and n % self.refit_every != 0)):
            return np.array(self.theta)  # the same data as the last fit (a batch), or not due
        D2 = np.ascontiguousarray(((X[:, None, :] - X[None, :, :]) ** 2).reshape(n * n, -1).T)
        bounds = [LOG_LENGTHSCALE] * self.n_params + [LOG_SIGNAL, LOG_NOISE]
        default = np.array([math.log(0.5)] * self.n_params + [0.0, math.log(1e-4)])
        starts = [np.array(self.theta)] if self.theta is not None else [default]
        if restart:
            if self.theta is not None:
                starts.append(default)
            lo, hi = np.array(bounds).T
            for _ in range(self.n_restarts):
                t = default.copy()
                t[: self.n_params] = rng.uniform(math.log(0.05), math.log(2.0), self.n_params)
                starts.append(np.clip(t, lo, hi))
        best_f, best_x = math.inf, starts[0]
        for x0 in starts:
            res = sp.optimize.minimize(
                GaussianProcess.neg_log_marginal_likelihood,
                x0,
                args=(D2, y, self.owner),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 200},
            )
            if res.fun < best_f:
                best_f, best_x = float(res.fun), res.x
        self.theta = [float(t) for t in best_x]
        self.n_fit = n
        return np.array(self.theta)

    def _model(self, theta: np.ndarray) -> GaussianProcess:
        ell = np.exp(theta[: self.n_params])[self.owner]
        return GaussianProcess(ell, math.exp(theta[-2]), math.exp(theta[-1]))

    # -- acquisition ---------------------------------------------------------------------------

    def _acq(self, gp: GaussianProcess, best: float, beta: float, U: np.ndarray, grad: bool) -> Any:
        """The acquisition to maximise (log EI, log PI or UCB) at the rows of U, and its gradient."""
        sp = _scipy()
        if grad:
            mean, var, dmean, dvar = gp.predict(U, grad=True)
        else:
            mean, var = gp.predict(U)
        std = np.sqrt(var)
        if self.acquisition == "ucb":
            a = -mean + math.sqrt(beta) * std
            return (a, -dmean + math.sqrt(beta) * dvar / (2 * std)[:, None]) if grad else a
        z = (best - mean) / std
        if self.acquisition == "ei":
            logh, dlogh = _log_h(z, sp)
            a = np.log(std) + logh
        else:
            a = sp.special.log_ndtr(z)
            dlogh = np.exp(-0.5 * z * z - 0.5 * math.log(2 * math.pi) - a)
        if not grad:
            return a
        dstd = dvar / (2 * std)[:, None]
        dz = (-dmean - z[:, None] * dstd) / std[:, None]
        da = dlogh[:, None] * dz
        if self.acquisition == "ei":
            da = da + dstd / std[:, None]
        return a, da

    def _maximise(
        self,
        gp: GaussianProcess,
        best: float,
        beta: float,
        X_obs: np.ndarray,
        y_obs: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        sp = _scipy()
        dim = self.space.dim
        cand = [rng.random((self.n_candidates, dim))]
        order = np.argsort(y_obs, kind="stable")[:5]  # perturb the incumbents: the optimum is often near them
        for scale in (0.1, 0.01):
            near = X_obs[np.repeat(order, 16)] + scale * rng.standard_normal((16 * len(order), dim))
            cand.append(np.clip(near, 0.0, 1.0))
        C = np.vstack(cand)
        if self.has_discrete:
            C = self.space.canonical(C)
        a = self._acq(gp, best, beta, C, grad=False)
        top = np.argsort(-a, kind="stable")[: self.n_starts]
        final = [C[top[:1]]] if len(top) else []
        if self.n_starts:
            x0 = C[top].reshape(-1)
            k = len(top)

            def f(x: np.ndarray) -> tuple[float, np.ndarray]:
                val, g = self._acq(gp, best, beta, x.reshape(k, dim), grad=True)
                return -float(val.sum()), -g.reshape(-1)

            res = sp.optimize.minimize(
                f, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * (k * dim), options=self.acq_options
            )
            U = np.clip(res.x.reshape(k, dim), 0.0, 1.0)
            final.append(self.space.canonical(U) if self.has_discrete else U)
        F = np.vstack(final)
        af = self._acq(gp, best, beta, F, grad=False)
        return F[int(np.argmax(af))]

    # -- sampler -------------------------------------------------------------------------------

    def sample(self, study: Study, number: int) -> dict[str, Any]:
        rng = study.rng(number)
        done = [t for t in study.trials if t.state == "complete"]
        if number < self.n_startup_trials or len(done) < 2:
            return self.space.sample(rng)
        X = np.array([self._encode(t) for t in done])
        values = np.array([study.sign * t.value for t in done])  # type: ignore[operator]
        mu, sd = values.mean(), values.std()
        y = (values - mu) / (sd if sd > 0 else 1.0)
        with _one_blas_thread():
            return self._propose(study, X, y, rng)

    def _propose(self, study: Study, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        theta = self._fit(X, y, rng)
        gp = self._model(theta).fit(X, y)
        best = float(gp.predict(X)[0].min())
        running = [t for t in study.trials if t.state == "running"]
        if running:
            lie = {"mean": 0.0, "min": float(y.min()), "max": float(y.max())}[self.liar]
            gp.add(np.array([self._encode(t) for t in running]), np.full(len(running), lie))
        beta = self.ucb_beta
        if beta is None:
            beta = 2.0 * math.log(self.space.dim * len(y) ** 2 * math.pi**2 / (6 * 0.1))
        self.gp = gp
        u = self._maximise(gp, best, beta, X, y, rng)
        return self.space.decode(u)
