r"""Dropout (section 1.7.4 of the chapter, equation 1.65), variational dropout and DropConnect.

Two conventions, chosen by ``mode`` and named so they cannot be confused:

``mode="chapter"`` (the default; equation 1.65), with p the probability of **keeping** a unit,

.. math::
   y = \begin{cases} m \odot x & \text{training}, \quad m_i \sim \mathrm{Bernoulli}(p) \\
                     p\, x     & \text{test} \end{cases}

``mode="inverted"`` (inverted dropout: what ``torch.nn.functional.dropout`` computes),

.. math::
   y = \begin{cases} m \odot x / p & \text{training} \\ x & \text{test} \end{cases}

In both, the expectation of the training output equals the test output. (The chapter's p
is the keep probability throughout: where its text later calls p the "丢弃率" and advises
values near 1 for input units, the keep probability is what is meant.) PyTorch's ``p`` is
the **drop** probability 1 − p: pass ``drop_prob=`` to give it that way. Symbols →
arguments: p → ``keep_prob`` (or 1 − ``drop_prob``; exactly one of the two, by keyword),
m → the mask (``mask_out=`` to store it, ``mask=`` to reuse it), x → ``x``.

The output is computed as y = x·(m·s) with s = 1 (chapter) or 1/p (inverted), so a
dropped NaN or ±Inf gives NaN and a dropped negative number −0, exactly as PyTorch's
``x * mask``.

**Masks.** m comes from the counter-based generator Philox4x32-10 (Salmon et al. 2011,
checked against the Random123 known-answer vectors): the bit of element i (of the array
in C order) is a function of (``seed``, ``offset``, i) only, so a mask is the same for any
thread count, SIMD target and machine, and a backward pass can regenerate it from
(seed, offset) instead of storing it. With i = 64·b + 16·w + l (w < 4, l < 16):

    u_i = Philox4x32-10(counter = (lo32(j), hi32(j), lo32(offset), hi32(offset)),
                        key = (lo32(seed), hi32(seed)))[w],   j = 16·b + l
    m_i = [u_i ≤ round(p·2³²) − 1]      (so P(m_i = 1) = round(p·2³²)/2³², exactly p for p = 1)

``offset`` numbers the calls made with one seed; :class:`Dropout` advances it by one per
training forward. :func:`nndl_fast.reference.dropout.mask` is the same rule in NumPy.

**Packed masks** have one bit per element, 8 per byte, first element in the most
significant bit — the default bit order of ``numpy.packbits``: ``np.unpackbits(mask,
count=x.size).reshape(x.shape)`` recovers the mask, and ``np.packbits(m.ravel())`` packs
one. Their length is :func:`packed_size` (x.size) = ⌈x.size / 8⌉ bytes, padding bits 0.

**Variational dropout** (Gal & Ghahramani 2016): one mask per (sample, feature), shared by
every time step of a sequence, for (T, N, F) (``layout="TNF"``) and (N, T, F)
(``layout="NTF"``) arrays; the mask bit of (n, f) is element n·F + f of the stream, in
both layouts. **DropConnect** (Wan et al. 2013): the mask falls on a weight matrix instead
of on activations; at test time the chapter's convention uses p·W (the mean weight). The
chapter's own form of variational dropout for RNNs (1.7.4.1: a mask on each element of the
recurrent weight matrix, the same at every time step) is :func:`dropconnect` called once per
sequence with one (seed, offset) and the masked matrix reused for all steps.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import _core

__all__ = [
    "Dropout",
    "dropconnect",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "packed_size",
    "philox4x32_10",
    "variational_dropout",
    "variational_dropout_backward",
]

_MODES = ("chapter", "inverted")
_LAYOUTS = ("TNF", "NTF")
_ALL_KEPT = 0xFFFFFFFF  # threshold with which every element is kept (test-time passes)


# -- hyper-parameters, checked once -----------------------------------------------------
def _keep_prob(keep_prob: Any, drop_prob: Any) -> float:
    """The keep probability p from exactly one of keep_prob / drop_prob."""
    if (keep_prob is None) == (drop_prob is None):
        raise TypeError(
            "give exactly one of keep_prob= (the chapter's p, probability of keeping a unit) "
            "or drop_prob= (torch's p, probability of dropping it)"
        )
    name, value = ("keep_prob", keep_prob) if keep_prob is not None else ("drop_prob", drop_prob)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if keep_prob is not None:
        if not (0.0 < v <= 1.0):
            raise ValueError(f"keep_prob must be in (0, 1], got {value!r}")
        return v
    if not (0.0 <= v < 1.0):
        raise ValueError(f"drop_prob must be in [0, 1), got {value!r}")
    return 1.0 - v


def _threshold(keep: float) -> int:
    """Kept ⇔ u ≤ threshold for a uniform 32-bit u: P = (threshold + 1)/2³² = round(p·2³²)/2³²."""
    t = int(math.floor(keep * 2.0**32 + 0.5))
    return min(max(t, 1), 2**32) - 1


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be 'chapter' or 'inverted', got {mode!r}")


def _train_scale(keep: float, mode: str) -> float:
    return 1.0 if mode == "chapter" else 1.0 / keep  # m ⊙ x  or  m ⊙ x / p


def _test_scale(keep: float, mode: str) -> float:
    return keep if mode == "chapter" else 1.0  # p·x  or  x


def _u64(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {type(value).__name__}")
    v = int(value)
    if not 0 <= v < 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def _stream(seed: Any, offset: Any) -> tuple[int, int]:
    """(seed, offset) of a training call: the seed is required, so that no loop reuses one
    mask by accident (a functional call with the same seed and offset draws the same mask)."""
    if seed is None:
        raise TypeError(
            "seed= is required in training (and a new offset= per call, or the same mask is "
            "drawn again); the Dropout layer keeps and advances its own (seed, offset)"
        )
    return _u64(seed, "seed"), _u64(offset, "offset")


def _check_array(x: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    return x


def _out_for(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.empty_like(x, order="C") if out is None else out


def packed_size(n: int) -> int:
    """Bytes of the packed mask of n elements: ⌈n/8⌉."""
    return (int(n) + 7) // 8


def philox4x32_10(counter: Any, key: Any) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one counter (4 × uint32) and key (2 × uint32): the generator itself."""
    return tuple(_core.philox4x32_10(list(counter), list(key)))  # type: ignore[return-value]


# -- functional forms -------------------------------------------------------------------
def dropout(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    mode: str = "chapter",
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Dropout of x (1.65) in one pass: draw, mask and scale; returns y (``out`` if given).

    ``seed`` (required in training) and ``offset`` fix the mask: give each call its own
    offset (or use :class:`Dropout`, which does).
    ``mask_out`` (uint8, shape (packed_size(x.size),)) receives the packed mask. ``out`` may
    be x itself (in place). At test time (``training=False``) y = p·x (chapter) or y = x
    (inverted; x itself is returned when ``out`` is None, as PyTorch does).
    """
    keep = _keep_prob(keep_prob, drop_prob)
    _check_mode(mode)
    x = _check_array(x, "x")
    if not training:
        if mask_out is not None:
            raise ValueError("mask_out: no mask is drawn at test time (training=False)")
        if mode == "inverted" and out is None:
            return x  # identity: no copy, as torch
        y = _out_for(x, out)
        _core.dropout_forward(x, y, None, 0, 0, _ALL_KEPT, _test_scale(keep, mode))
        return y
    seed, offset = _stream(seed, offset)
    y = _out_for(x, out)
    _core.dropout_forward(x, y, mask_out, seed, offset, _threshold(keep), _train_scale(keep, mode))
    return y


def dropout_backward(
    grad_out: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    mode: str = "chapter",
    training: bool = True,
    mask: np.ndarray | None = None,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """∂L/∂x = m ⊙ ∂L/∂y · s (training) or ∂L/∂y · (p or 1) (test), with s as in the forward.

    The mask comes from the forward's packed ``mask`` or is regenerated from its
    (``seed``, ``offset``): give exactly one of the two in training.
    """
    keep = _keep_prob(keep_prob, drop_prob)
    _check_mode(mode)
    grad_out = _check_array(grad_out, "grad_out")
    if not training:
        g = _out_for(grad_out, out)
        _core.dropout_forward(grad_out, g, None, 0, 0, _ALL_KEPT, _test_scale(keep, mode))
        return g
    if (mask is None) == (seed is None):
        raise TypeError(
            "give exactly one of mask= (the forward's packed mask) or seed= (to regenerate it)"
        )
    g = _out_for(grad_out, out)
    if mask is not None:
        _core.dropout_apply_mask(grad_out, g, mask, _train_scale(keep, mode))
    else:
        _core.dropout_forward(
            grad_out,
            g,
            None,
            _u64(seed, "seed"),
            _u64(offset, "offset"),
            _threshold(keep),
            _train_scale(keep, mode),
        )
    return g


def dropout_mask(
    shape: int | tuple[int, ...],
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    seed: int | None = None,
    offset: int = 0,
    packed: bool = False,
) -> np.ndarray:
    """The mask m that :func:`dropout` draws for an array of this shape: bool array, or packed."""
    keep = _keep_prob(keep_prob, drop_prob)
    # int is a registered numbers.Integral, so (int, Integral) tests exactly what Integral does;
    # listing int lets mypy narrow the else branch to the tuple.
    shape_t = (
        (int(shape),)
        if isinstance(shape, (int, numbers.Integral))
        else tuple(int(s) for s in shape)
    )
    if any(s < 0 for s in shape_t):
        raise ValueError(f"shape must be non-negative, got {shape_t}")
    n = math.prod(shape_t)
    seed, offset = _stream(seed, offset)
    bits = np.empty(packed_size(n), np.uint8)
    _core.dropout_mask(bits, n, seed, offset, _threshold(keep))
    if packed:
        return bits
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape_t)


def _check_layout(layout: str) -> bool:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'TNF' or 'NTF', got {layout!r}")
    return layout == "NTF"


def variational_dropout(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    mode: str = "chapter",
    layout: str = "TNF",
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Variational dropout: one mask per (sample n, feature f), shared by every time step t.

    x is (T, N, F) for ``layout="TNF"`` or (N, T, F) for ``"NTF"``; y[.., n, .., f] =
    x·m[n, f]·s. ``mask_out`` (uint8, packed_size(N·F) bytes) receives the N×F mask.
    """
    keep = _keep_prob(keep_prob, drop_prob)
    _check_mode(mode)
    ntf = _check_layout(layout)
    x = _check_array(x, "x")
    if not training:
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D ({layout}), got {x.ndim}-D")
        return dropout(x, keep_prob=keep, mode=mode, training=False, out=out, mask_out=mask_out)
    seed, offset = _stream(seed, offset)
    y = _out_for(x, out)
    _core.variational_dropout(
        x, y, None, mask_out, ntf, seed, offset, _threshold(keep), _train_scale(keep, mode)
    )
    return y


def variational_dropout_backward(
    grad_out: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    mode: str = "chapter",
    layout: str = "TNF",
    training: bool = True,
    mask: np.ndarray | None = None,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """∂L/∂x of :func:`variational_dropout`, from its packed N×F ``mask`` or its (seed, offset)."""
    keep = _keep_prob(keep_prob, drop_prob)
    _check_mode(mode)
    ntf = _check_layout(layout)
    grad_out = _check_array(grad_out, "grad_out")
    if not training:
        return dropout_backward(grad_out, keep_prob=keep, mode=mode, training=False, out=out)
    if (mask is None) == (seed is None):
        raise TypeError(
            "give exactly one of mask= (the forward's packed mask) or seed= (to regenerate it)"
        )
    g = _out_for(grad_out, out)
    s = 0 if seed is None else _u64(seed, "seed")
    _core.variational_dropout(
        grad_out,
        g,
        mask,
        None,
        ntf,
        s,
        _u64(offset, "offset"),
        _threshold(keep),
        _train_scale(keep, mode),
    )
    return g


def dropconnect(
    weight: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    mode: str = "chapter",
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """DropConnect: the masked weight matrix M ⊙ W (· 1/p inverted; p·W at test, chapter).

    A layer then computes x @ W_masked.T; the gradient of W is :func:`dropout_backward`
    of the gradient of W_masked, with the same mask or (seed, offset).
    """
    w = _check_array(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be a 2-D matrix (out_features, in_features), got {w.ndim}-D")
    return dropout(
        w,
        keep_prob=keep_prob,
        drop_prob=drop_prob,
        mode=mode,
        training=training,
        seed=seed,
        offset=offset,
        out=out,
        mask_out=mask_out,
    )


# -- the layer object -------------------------------------------------------------------
class Dropout:
    """A dropout layer with train/eval mode and its own (seed, offset) stream.

    Each training forward uses the current ``offset`` and then advances it by one, so
    successive calls draw independent masks; :meth:`backward` regenerates the mask of the
    last forward from (seed, offset) — nothing is stored unless ``store_mask=True`` (then
    the packed mask, 1 bit per element, is kept and used). ``variational="TNF"`` or
    ``"NTF"`` makes it variational dropout over sequences. ``seed=None`` draws a seed from
    the operating system. See the module docstring for the formulas.
    """

    def __init__(
        self,
        *,
        keep_prob: float | None = None,
        drop_prob: float | None = None,
        mode: str = "chapter",
        variational: str | None = None,
        seed: int | None = None,
        offset: int = 0,
        store_mask: bool = False,
    ) -> None:
        self.keep_prob = _keep_prob(keep_prob, drop_prob)
        _check_mode(mode)
        if variational is not None:
            _check_layout(variational)
        self.mode = mode
        self.variational = variational
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.seed = _u64(seed, "seed")
        self.offset = _u64(offset, "offset")
        self.store_mask = bool(store_mask)
        self.training = True
        self._last_offset: int | None = None
        self._last_training = True
        self._mask: np.ndarray | None = None

    def train(self, mode: bool = True) -> Dropout:
        self.training = bool(mode)
        return self

    def eval(self) -> Dropout:
        return self.train(False)

    def _kw(self) -> dict[str, Any]:
        return {"keep_prob": self.keep_prob, "mode": self.mode}

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self._last_training = self.training
        self._mask = None
        if not self.training:
            fn = dropout if self.variational is None else variational_dropout
            extra: dict[str, Any] = {} if self.variational is None else {"layout": self.variational}
            return fn(x, training=False, out=out, **self._kw(), **extra)
        x = _check_array(x, "x")
        offset = self.offset
        mask = None
        if self.store_mask:
            n = x.size if self.variational is None else self._nf(x)
            mask = np.empty(packed_size(n), np.uint8)
        if self.variational is None:
            y = dropout(x, seed=self.seed, offset=offset, out=out, mask_out=mask, **self._kw())
        else:
            y = variational_dropout(
                x,
                layout=self.variational,
                seed=self.seed,
                offset=offset,
                out=out,
                mask_out=mask,
                **self._kw(),
            )
        self._last_offset, self._mask = offset, mask
        self.offset = offset + 1
        return y

    __call__ = forward

    def _nf(self, x: np.ndarray) -> int:
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D ({self.variational}), got {x.ndim}-D")
        return (
            int(x.shape[1] * x.shape[2])
            if self.variational == "TNF"
            else int(x.shape[0] * x.shape[2])
        )

    def backward(self, grad_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """∂L/∂x for the last forward (its mask regenerated, or the stored one)."""
        if not self._last_training:
            return dropout_backward(grad_out, training=False, out=out, **self._kw())
        if self._last_offset is None:
            raise RuntimeError("backward() before any training forward()")
        src: dict[str, Any] = (
            {"mask": self._mask}
            if self._mask is not None
            else {"seed": self.seed, "offset": self._last_offset}
        )
        if self.variational is None:
            return dropout_backward(grad_out, out=out, **src, **self._kw())
        return variational_dropout_backward(
            grad_out, layout=self.variational, out=out, **src, **self._kw()
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "keep_prob": self.keep_prob,
            "mode": self.mode,
            "variational": self.variational,
            "seed": self.seed,
            "offset": self.offset,
            "training": self.training,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_mode(state["mode"])
        self.keep_prob = _keep_prob(state["keep_prob"], None)
        self.mode = state["mode"]
        self.variational = state["variational"]
        self.seed = _u64(state["seed"], "seed")
        self.offset = _u64(state["offset"], "offset")
        self.training = bool(state["training"])
        self._last_offset, self._mask = None, None

    def __repr__(self) -> str:
        return (
            f"Dropout(keep_prob={self.keep_prob}, mode={self.mode!r}, "
            f"variational={self.variational!r}, seed={self.seed}, offset={self.offset}, "
            f"training={self.training})"
        )
