r"""Dropout (section 1.7.4 of the chapter, equation 1.65), variational dropout and DropConnect.

Two conventions, chosen by ``convention=`` (docs/conventions.md). Without it, the name of the
probability chooses: ``keep_prob=`` gives the chapter's, ``drop_prob=`` torch's inverted dropout
(what ``torch.nn.Dropout(p)`` computes); an explicit ``convention=`` wins.

``convention="chapter"`` (equation 1.65), with p the probability of **keeping** a unit,

.. math::
   y = \begin{cases} m \odot x & \text{training}, \quad m_i \sim \mathrm{Bernoulli}(p) \\
                     p\, x     & \text{test} \end{cases}

``convention="torch"`` (inverted dropout: what ``torch.nn.functional.dropout`` computes),

.. math::
   y = \begin{cases} m \odot x / p & \text{training} \\ x & \text{test} \end{cases}

``convention="keras"`` (``keras.layers.Dropout(rate)``) and ``convention="onnx"`` (ONNX
``Dropout(ratio, training_mode)``) are torch's formula, with the peer's drop probability
(``rate``, ``ratio``) as ``drop_prob``; at test time (Keras ``training=False``, ONNX
``training_mode=False``) y = x.

=============  =======================  ==========  ==========================
preset         training                 test        the peer's names
=============  =======================  ==========  ==========================
``"chapter"``  m ⊙ x                    p·x         p = ``keep_prob``
``"torch"``    m ⊙ x / p                x           ``p`` = ``drop_prob`` = 1 − p
``"keras"``    m ⊙ x / p                x           ``rate`` = ``drop_prob``
``"onnx"``     m ⊙ x / p                x           ``ratio`` = ``drop_prob``
=============  =======================  ==========  ==========================

In all, the expectation of the training output equals the test output. (The chapter's p
is the keep probability throughout: where its text later calls p the "丢弃率" and advises
values near 1 for input units, the keep probability is what is meant.) PyTorch's ``p`` is
the **drop** probability 1 − p: ``drop_prob=`` takes it that way (and, by default, torch's
convention with it). Symbols →
arguments: p → ``keep_prob`` (or 1 − ``drop_prob``; exactly one of the two, by keyword),
m → the mask (``mask_out=`` to store it, ``mask=`` to reuse it), x → ``x``, ∂L/∂y → ``dy``.

The output is computed as y = x·(m·s) with s = 1 (chapter) or 1/p (torch), so a
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

**A mask of another shape** (``noise_shape=``, Keras's semantics): a mask m of shape
``noise_shape`` -- one entry per axis of x, each x's size or 1 (None: x's size) -- broadcast
to x, so every element of x along a size-1 axis shares one bit; mask element k (C order over
noise_shape) is element k of the stream above, so the (seed, offset) contract is the one of
plain dropout and ``mask_out`` holds prod(noise_shape) bits. Named cases:
``noise_shape="channels_first"`` is (N, C, 1, …, 1), whole channels of NCHW, torch's
``Dropout1d``/``Dropout2d``/``Dropout3d`` (:func:`dropout2d`, :func:`dropout3d`,
:class:`Dropout2d`, :class:`Dropout3d`);
``"channels_last"`` is (N, 1, …, 1, C), Keras's ``SpatialDropout2D`` on NHWC
(:func:`spatial_dropout2d`, :class:`SpatialDropout2D`).

>>> import numpy as np
>>> from nndl_fast.dropout import dropout, dropout2d
>>> x = np.ones((2, 3, 2, 2), np.float32)
>>> dropout(x, keep_prob=0.5, seed=0)[0, 0]                         # chapter: m ⊙ x
array([[1., 0.],
       [1., 0.]], dtype=float32)
>>> dropout(x, drop_prob=0.5, convention="keras", seed=0)[0, 0]      # keras: m ⊙ x / p
array([[2., 0.],
       [2., 0.]], dtype=float32)
>>> dropout2d(x, drop_prob=0.5, seed=0)[:, :, 0, 0]                  # torch's Dropout2d: per (n, c)
array([[2., 0., 2.],
       [0., 0., 2.]], dtype=float32)
>>> dropout(x, drop_prob=0.5, convention="onnx", training=False) is x  # onnx: identity at test
True

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
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _checks, _core

__all__ = [
    "Dropout",
    "Dropout2d",
    "Dropout3d",
    "SpatialDropout2D",
    "dropconnect",
    "dropout",
    "dropout2d",
    "dropout3d",
    "dropout_backward",
    "dropout_mask",
    "packed_size",
    "philox4x32_10",
    "spatial_dropout2d",
    "variational_dropout",
    "variational_dropout_backward",
]

_CONVENTIONS = ("chapter", "torch", "keras", "onnx")
_NAMED_NOISE = ("channels_first", "channels_last")
_LAYOUTS = ("TNF", "NTF")
_ALL_KEPT = 0xFFFFFFFF  # threshold with which every element is kept (test-time passes)
_U64_MAX = 2**64 - 1


# -- hyper-parameters, checked once -----------------------------------------------------
def _keep_prob(keep_prob: Any, drop_prob: Any) -> float:
    """The keep probability p from exactly one of keep_prob / drop_prob."""
    if (keep_prob is None) == (drop_prob is None):
        raise TypeError(
            "give exactly one of keep_prob= (the chapter's p, probability of keeping a unit) "
            "or drop_prob= (torch's p, probability of dropping it)"
        )
    if keep_prob is not None:
        return _checks.real("keep_prob", keep_prob, 0.0, 1.0, lo_open=True)
    return 1.0 - _checks.real("drop_prob", drop_prob, 0.0, 1.0, hi_open=True)


def _keep_and_convention(keep_prob: Any, drop_prob: Any, convention: Any) -> tuple[float, str]:
    """p, and the convention: the one given, else the one the probability's name belongs to
    (keep_prob= the chapter's, drop_prob= torch's inverted dropout)."""
    keep = _keep_prob(keep_prob, drop_prob)
    if convention is None:
        convention = "chapter" if keep_prob is not None else "torch"
    return keep, _checks.convention(convention, _CONVENTIONS)


def _threshold(keep: float) -> int:
    """Kept ⇔ u ≤ threshold for a uniform 32-bit u: P = (threshold + 1)/2³² = round(p·2³²)/2³²."""
    t = int(math.floor(keep * 2.0**32 + 0.5))
    return min(max(t, 1), 2**32) - 1


def _train_scale(keep: float, convention: str) -> float:
    return 1.0 if convention == "chapter" else 1.0 / keep  # m ⊙ x  or  m ⊙ x / p (torch, keras, onnx)


def _test_scale(keep: float, convention: str) -> float:
    return keep if convention == "chapter" else 1.0  # p·x  or  x


def _u64(name: str, value: Any) -> int:
    return _checks.integer(name, value, 0, _U64_MAX)


def _stream(seed: Any, offset: Any) -> tuple[int, int]:
    """(seed, offset) of a training call: the seed is required, so that no loop reuses one
    mask by accident (a functional call with the same seed and offset draws the same mask)."""
    if seed is None:
        raise TypeError(
            "seed= is required in training (and a new offset= per call, or the same mask is "
            "drawn again); the Dropout layer keeps and advances its own (seed, offset)"
        )
    return _u64("seed", seed), _u64("offset", offset)


# Named noise shapes as the compiled call takes them (resolved there against x's axes).
_NAMED_CODE = {"channels_first": -3, "channels_last": -4}


def _noise(noise_shape: Any, x: Any) -> list[int] | None:
    """noise_shape for the compiled call (−1: x's size; a named case as its code), or None for
    a mask of x's own shape. The compiled call checks x and the entries against it."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        return [_NAMED_CODE[_checks.choice("noise_shape", noise_shape, _NAMED_NOISE)]]
    if not isinstance(noise_shape, Sequence):
        raise TypeError(f"noise_shape must be a tuple of ints or None, or a str, got {type(noise_shape).__name__}")
    if not noise_shape:
        raise ValueError("noise_shape must have one entry per axis of x, got an empty one")
    return [-1 if d is None else _checks.integer(f"noise_shape[{i}]", d, 1) for i, d in enumerate(noise_shape)]


def _noise_of(noise_shape: Any, x: Any) -> Any:
    """A layer's noise_shape made explicit for x (so that its backward checks dy against the
    forward's x): a tuple of sizes; unchanged when x's shape does not fit (the call rejects it)."""
    shape = tuple(getattr(x, "shape", ()))
    if noise_shape is None or len(shape) < 2:
        return noise_shape
    if isinstance(noise_shape, str):
        ones = (1,) * (len(shape) - 2)
        return (shape[0], shape[1], *ones) if noise_shape == "channels_first" else (shape[0], *ones, shape[-1])
    if len(noise_shape) != len(shape):
        return noise_shape
    return tuple(int(s) if d is None else d for d, s in zip(noise_shape, shape, strict=True))


def _layout(layout: Any) -> bool:
    """True for (N, T, F)."""
    return _checks.choice("layout", layout, _LAYOUTS) == "NTF"


def _mask_source(mask: Any, seed: Any, offset: Any) -> tuple[int, int]:
    """Exactly one of mask= / seed= in a training backward; the (seed, offset) to pass."""
    if (mask is None) == (seed is None):
        raise TypeError("give exactly one of mask= (the forward's packed mask) or seed= (to regenerate it)")
    if mask is not None:
        return 0, 0
    return _u64("seed", seed), _u64("offset", offset)


def _out_for(x: Any, out: np.ndarray | None) -> Any:
    """The caller's buffer, or a fresh C-ordered one like x. The compiled call checks both:
    for an x it rejects, the fresh buffer is a placeholder it never reaches."""
    if out is not None:
        return out
    if isinstance(x, np.ndarray):
        return np.empty(x.shape, x.dtype)
    try:
        return np.empty_like(x, order="C")  # a torch tensor, through its NumPy view
    except (TypeError, ValueError):
        return np.empty(0)


def packed_size(n: int) -> int:
    """Bytes of the packed mask of n elements: ⌈n/8⌉."""
    return (_checks.integer("n", n, 0) + 7) // 8


def philox4x32_10(counter: Any, key: Any) -> tuple[int, int, int, int]:
    """Philox4x32-10 of one counter (4 × uint32) and key (2 × uint32): the generator itself."""
    words = []
    for name, value, n in (("counter", counter, 4), ("key", key, 2)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a sequence of {n} uint32 words, got {type(value).__name__}")
        if len(value) != n:
            raise ValueError(f"{name} must have {n} uint32 words, got {len(value)}")
        words.append([_checks.integer(f"{name}[{i}]", w, 0, 2**32 - 1) for i, w in enumerate(value)])
    return tuple(_core.philox4x32_10(*words))  # type: ignore[return-value]


# -- functional forms -------------------------------------------------------------------
def dropout(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | str | None = None,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Dropout of x (1.65) in one pass: draw, mask and scale; returns y (``out`` if given).

    ``noise_shape``: a mask of that shape broadcast to x (Keras's; "channels_first" and
    "channels_last" name torch's Dropout2d and Keras's SpatialDropout2D, see the module
    docstring); ``mask_out`` then has packed_size(prod(noise_shape)) bytes.

    ``seed`` (required in training) and ``offset`` fix the mask: give each call its own
    offset (or use :class:`Dropout`, which does).
    ``mask_out`` (uint8, shape (packed_size(x.size),)) receives the packed mask. ``out`` may
    be x itself (in place). At test time (``training=False``) y = p·x (chapter) or y = x
    (torch; x itself, unchecked and uncopied, when ``out`` is None, as PyTorch returns it).
    """
    keep, convention = _keep_and_convention(keep_prob, drop_prob, convention)
    noise = _noise(noise_shape, x)
    if not _checks.flag("training", training):
        if mask_out is not None:
            raise ValueError("mask_out: no mask is drawn at test time (training=False)")
        if convention != "chapter" and out is None:
            return x  # identity: no copy, as torch
        y = _out_for(x, out)
        _core.dropout_forward(x, y, None, 0, 0, _ALL_KEPT, _test_scale(keep, convention))
        return y
    seed, offset = _stream(seed, offset)
    y = _out_for(x, out)
    if noise is not None:
        _core.dropout_noise_forward(
            x, y, mask_out, noise, seed, offset, _threshold(keep), _train_scale(keep, convention)
        )
        return y
    _core.dropout_forward(x, y, mask_out, seed, offset, _threshold(keep), _train_scale(keep, convention))
    return y


def dropout_backward(
    dy: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    training: bool = True,
    mask: np.ndarray | None = None,
    seed: int | None = None,
    offset: int = 0,
    noise_shape: tuple[int | None, ...] | str | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """∂L/∂x = m ⊙ dy · s (training) or dy · (p or 1) (test), with s as in the forward.

    ``dy`` is ∂L/∂y. The mask comes from the forward's packed ``mask`` or is regenerated
    from its (``seed``, ``offset``): give exactly one of the two in training. ``out`` may be
    dy itself (in place). ``noise_shape``: the forward's.
    """
    keep, convention = _keep_and_convention(keep_prob, drop_prob, convention)
    noise = _noise(noise_shape, dy)
    if not _checks.flag("training", training):
        dx = _out_for(dy, out)
        _core.dropout_backward(dy, dx, None, 0, 0, _ALL_KEPT, _test_scale(keep, convention))
        return dx
    seed_, offset_ = _mask_source(mask, seed, offset)
    dx = _out_for(dy, out)
    if noise is not None:
        _core.dropout_noise_backward(
            dy, dx, mask, noise, seed_, offset_, _threshold(keep), _train_scale(keep, convention)
        )
        return dx
    _core.dropout_backward(dy, dx, mask, seed_, offset_, _threshold(keep), _train_scale(keep, convention))
    return dx


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
    shape_t = _checks.shape("shape", shape)
    packed = _checks.flag("packed", packed)
    seed, offset = _stream(seed, offset)
    n = math.prod(shape_t)
    bits = np.empty(packed_size(n), np.uint8)
    _core.dropout_mask(bits, n, seed, offset, _threshold(keep))
    if packed:
        return bits
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape_t)


def dropout2d(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Channel dropout of x (N, C, H, W), as ``torch.nn.functional.dropout2d``: one mask bit
    per (n, c), the whole H×W plane kept or dropped (:func:`dropout` with
    ``noise_shape=(N, C, 1, 1)``; any x of ≥ 2 axes with ``noise_shape="channels_first"``).
    The backward is :func:`dropout_backward` with ``noise_shape="channels_first"``."""
    return dropout(
        x,
        keep_prob=keep_prob,
        drop_prob=drop_prob,
        convention=convention,
        training=training,
        seed=seed,
        offset=offset,
        noise_shape="channels_first",
        out=out,
        mask_out=mask_out,
    )


def dropout3d(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Channel dropout of x (N, C, D, H, W), as ``torch.nn.functional.dropout3d``: the same
    rule as :func:`dropout2d` (one bit per (n, c), ``noise_shape="channels_first"``)."""
    return dropout2d(
        x,
        keep_prob=keep_prob,
        drop_prob=drop_prob,
        convention=convention,
        training=training,
        seed=seed,
        offset=offset,
        out=out,
        mask_out=mask_out,
    )


def spatial_dropout2d(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    data_format: str = "channels_last",
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Keras's ``SpatialDropout2D``: one mask bit per (n, c) of x (N, H, W, C) (``data_format=
    "channels_last"``, Keras's default) or (N, C, H, W) (``"channels_first"``). With
    ``drop_prob=`` (Keras's ``rate``) the convention defaults to Keras's (inverted dropout).
    The backward is :func:`dropout_backward` with ``noise_shape=data_format``."""
    fmt = _checks.choice("data_format", data_format, _NAMED_NOISE)
    if convention is None and drop_prob is not None:
        convention = "keras"
    return dropout(
        x,
        keep_prob=keep_prob,
        drop_prob=drop_prob,
        convention=convention,
        training=training,
        seed=seed,
        offset=offset,
        noise_shape=fmt,
        out=out,
        mask_out=mask_out,
    )


def variational_dropout(
    x: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    layout: str = "TNF",
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """Variational dropout: one mask per (sample n, feature f), shared by every time step t.

    x is (T, N, F) for ``layout="TNF"`` or (N, T, F) for ``"NTF"``; y[.., n, .., f] =
    x·m[n, f]·s. ``mask_out`` (uint8, packed_size(N·F) bytes) receives the N×F mask. At
    test time y = p·x (chapter) or a copy of x (torch; into ``out`` when given).
    """
    keep, convention = _keep_and_convention(keep_prob, drop_prob, convention)
    ntf = _layout(layout)
    y = _out_for(x, out)
    if not _checks.flag("training", training):
        if mask_out is not None:
            raise ValueError("mask_out: no mask is drawn at test time (training=False)")
        _core.variational_dropout_forward(x, y, None, ntf, 0, 0, _ALL_KEPT, _test_scale(keep, convention))
        return y
    seed, offset = _stream(seed, offset)
    _core.variational_dropout_forward(
        x, y, mask_out, ntf, seed, offset, _threshold(keep), _train_scale(keep, convention)
    )
    return y


def variational_dropout_backward(
    dy: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    layout: str = "TNF",
    training: bool = True,
    mask: np.ndarray | None = None,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """∂L/∂x of :func:`variational_dropout` from ∂L/∂y = ``dy``, with its packed N×F
    ``mask`` or its (seed, offset)."""
    keep, convention = _keep_and_convention(keep_prob, drop_prob, convention)
    ntf = _layout(layout)
    if not _checks.flag("training", training):
        dx = _out_for(dy, out)
        _core.variational_dropout_backward(dy, dx, None, ntf, 0, 0, _ALL_KEPT, _test_scale(keep, convention))
        return dx
    seed_, offset_ = _mask_source(mask, seed, offset)
    dx = _out_for(dy, out)
    _core.variational_dropout_backward(
        dy, dx, mask, ntf, seed_, offset_, _threshold(keep), _train_scale(keep, convention)
    )
    return dx


def dropconnect(
    weight: np.ndarray,
    *,
    keep_prob: float | None = None,
    drop_prob: float | None = None,
    convention: str | None = None,
    training: bool = True,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
    mask_out: np.ndarray | None = None,
) -> np.ndarray:
    """DropConnect: the masked weight matrix M ⊙ W (· 1/p for torch; p·W at test, chapter).

    A layer then computes x @ W_masked.T; the gradient of W is :func:`dropout_backward`
    of the gradient of W_masked, with the same mask or (seed, offset).
    """
    ndim = getattr(weight, "ndim", None)
    if isinstance(ndim, int) and ndim != 2:
        raise ValueError(f"weight must be a 2-D matrix (out_features, in_features), got {ndim}-D")
    try:
        return dropout(
            weight,
            keep_prob=keep_prob,
            drop_prob=drop_prob,
            convention=convention,
            training=training,
            seed=seed,
            offset=offset,
            out=out,
            mask_out=mask_out,
        )
    except (TypeError, ValueError) as e:  # dropout's messages call the array x: name it as passed here
        raise type(e)(re.sub(r"\bx\b", "weight", str(e))) from None


# -- the layer object -------------------------------------------------------------------
class Dropout:
    """A dropout layer with train/eval mode and its own (seed, offset) stream.

    Each training forward uses the current ``offset`` and then advances it by one, so
    successive calls draw independent masks; :meth:`backward` regenerates the mask of the
    last forward from (seed, offset) — nothing is stored unless ``store_mask=True`` (then
    the packed mask, 1 bit per element, is kept and used). ``variational="TNF"`` or
    ``"NTF"`` makes it variational dropout over sequences; ``noise_shape=`` (a tuple, or
    "channels_first" / "channels_last") a mask of that shape broadcast to x, as
    :func:`dropout`. ``seed=None`` draws a seed from
    the operating system. ``keep_prob=`` or ``drop_prob=`` choose the convention as in the
    functions (``Dropout(drop_prob=p)`` is ``torch.nn.Dropout(p)``; ``convention=`` wins).
    See the module docstring for the formulas.

    A rejected call changes nothing: a forward that raises leaves the offset and what
    :meth:`backward` uses (the last successful forward's mask, or its test-time scaling) as
    they were; :meth:`load_state_dict` checks every key before it assigns any.
    """

    _STATE_KEYS = ("keep_prob", "convention", "variational", "noise_shape", "seed", "offset", "training")

    def __init__(
        self,
        *,
        keep_prob: float | None = None,
        drop_prob: float | None = None,
        convention: str | None = None,
        variational: str | None = None,
        noise_shape: tuple[int | None, ...] | str | None = None,
        seed: int | None = None,
        offset: int = 0,
        store_mask: bool = False,
    ) -> None:
        keep, convention = _keep_and_convention(keep_prob, drop_prob, convention)
        if variational is not None:
            _checks.choice("variational", variational, _LAYOUTS)
        noise_shape = self._checked_noise(noise_shape, variational)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        seed, offset = _u64("seed", seed), _u64("offset", offset)
        store_mask = _checks.flag("store_mask", store_mask)
        self.keep_prob = keep
        self.convention = convention
        self.variational = variational
        self.noise_shape = noise_shape
        self.seed, self.offset = seed, offset
        self.store_mask = store_mask
        self.training = True
        # What backward() uses: the last successful forward's mode, offset and stored mask.
        self._last_training = True
        self._last_offset: int | None = None
        self._last_noise: Any = None  # the last training forward's noise shape, explicit
        self._mask: np.ndarray | None = None

    @staticmethod
    def _checked_noise(noise_shape: Any, variational: Any, name: str = "noise_shape") -> Any:
        """noise_shape checked (a str, a tuple of ints >= 1 or None, or None) and made a tuple."""
        if noise_shape is None:
            return None
        if variational is not None:
            raise ValueError(f"{name}: a variational mask already has its shape; give one of the two")
        if isinstance(noise_shape, str):
            return _checks.choice(name, noise_shape, _NAMED_NOISE)
        _noise(noise_shape, None)
        return tuple(noise_shape)

    def train(self, mode: bool = True) -> Dropout:
        self.training = _checks.flag("mode", mode)
        return self

    def eval(self) -> Dropout:
        return self.train(False)

    def _kw(self, noise: Any = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"keep_prob": self.keep_prob, "convention": self.convention}
        if noise is not None:
            kw["noise_shape"] = noise
        return kw

    def _mask_buffer(self, x: Any) -> np.ndarray:
        """A packed mask for x's elements (its N·F, its noise shape's); empty when x has no
        usable shape, which the compiled call then rejects by name before writing anything."""
        shape = tuple(getattr(x, "shape", ()))
        if self.noise_shape is not None:
            noise = _noise_of(self.noise_shape, x)
            n = math.prod(noise) if isinstance(noise, tuple) and len(noise) == len(shape) else 0
        elif self.variational is None:
            n = math.prod(shape)
        elif len(shape) == 3:
            n = shape[1] * shape[2] if self.variational == "TNF" else shape[0] * shape[2]
        else:
            n = 0
        return np.empty(packed_size(int(n)), np.uint8)

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if not self.training:
            if self.variational is None:
                y = dropout(x, training=False, out=out, **self._kw())
            else:
                y = variational_dropout(x, layout=self.variational, training=False, out=out, **self._kw())
            self._last_training, self._mask = False, None
            return y
        offset = self.offset
        mask = self._mask_buffer(x) if self.store_mask else None
        noise = _noise_of(self.noise_shape, x)
        if self.variational is None:
            y = dropout(x, seed=self.seed, offset=offset, out=out, mask_out=mask, **self._kw(noise))
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
        self._last_training, self._last_offset, self._mask = True, offset, mask
        self._last_noise = noise
        self.offset = offset + 1
        return y

    __call__ = forward

    def backward(self, dy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """∂L/∂x for ∂L/∂y = ``dy`` of the last forward (its mask regenerated, or the stored one)."""
        if not self._last_training:
            if self.variational is None:
                return dropout_backward(dy, training=False, out=out, **self._kw())
            return variational_dropout_backward(dy, layout=self.variational, training=False, out=out, **self._kw())
        if self._last_offset is None:
            raise RuntimeError("backward() before any training forward()")
        src: dict[str, Any] = (
            {"mask": self._mask} if self._mask is not None else {"seed": self.seed, "offset": self._last_offset}
        )
        if self.variational is None:
            return dropout_backward(dy, out=out, **src, **self._kw(self._last_noise))
        return variational_dropout_backward(dy, layout=self.variational, out=out, **src, **self._kw())

    def state_dict(self) -> dict[str, Any]:
        return {
            "keep_prob": self.keep_prob,
            "convention": self.convention,
            "variational": self.variational,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
            "offset": self.offset,
            "training": self.training,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict`; checks every key first, so a rejected state changes
        nothing. The next backward needs a new training forward."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        missing = [k for k in self._STATE_KEYS if k not in state]
        unknown = sorted(str(k) for k in state if k not in self._STATE_KEYS)
        if missing or unknown:
            raise ValueError(
                f"state must have exactly the keys {list(self._STATE_KEYS)} of "
                f"Dropout.state_dict(); missing {missing}, unknown {unknown}"
            )
        keep = _checks.real("state['keep_prob']", state["keep_prob"], 0.0, 1.0, lo_open=True)
        convention = _checks.choice("state['convention']", state["convention"], _CONVENTIONS)
        variational = state["variational"]
        if variational is not None:
            _checks.choice("state['variational']", variational, _LAYOUTS)
        noise_shape = self._checked_noise(state["noise_shape"], variational, "state['noise_shape']")
        seed = _u64("state['seed']", state["seed"])
        offset = _u64("state['offset']", state["offset"])
        training = _checks.flag("state['training']", state["training"])
        self.keep_prob, self.convention, self.variational = keep, convention, variational
        self.noise_shape = noise_shape
        self.seed, self.offset, self.training = seed, offset, training
        self._last_training, self._last_offset, self._mask = True, None, None

    def __repr__(self) -> str:
        return (
            f"Dropout(keep_prob={self.keep_prob}, convention={self.convention!r}, "
            f"variational={self.variational!r}, noise_shape={self.noise_shape!r}, seed={self.seed}, "
            f"offset={self.offset}, "
            f"training={self.training})"
        )


class Dropout2d(Dropout):
    """torch's ``Dropout2d`` (and ``Dropout1d``/``Dropout3d``): :class:`Dropout` with
    ``noise_shape="channels_first"``, whole channels of (N, C, …) kept or dropped.
    ``Dropout2d(drop_prob=p)`` is ``torch.nn.Dropout2d(p)``."""

    def __init__(
        self,
        *,
        keep_prob: float | None = None,
        drop_prob: float | None = None,
        convention: str | None = None,
        seed: int | None = None,
        offset: int = 0,
        store_mask: bool = False,
    ) -> None:
        super().__init__(
            keep_prob=keep_prob,
            drop_prob=drop_prob,
            convention=convention,
            noise_shape="channels_first",
            seed=seed,
            offset=offset,
            store_mask=store_mask,
        )


class Dropout3d(Dropout2d):
    """torch's ``Dropout3d``: whole channels of (N, C, D, H, W), the rule of :class:`Dropout2d`.
    ``Dropout3d(drop_prob=p)`` is ``torch.nn.Dropout3d(p)``."""


class SpatialDropout2D(Dropout):
    """Keras's ``SpatialDropout2D(rate, data_format)``: :class:`Dropout` with
    ``noise_shape=data_format`` ("channels_last", Keras's default: x is (N, H, W, C)), one
    bit per (n, c). ``SpatialDropout2D(drop_prob=rate)`` takes Keras's convention."""

    def __init__(
        self,
        *,
        keep_prob: float | None = None,
        drop_prob: float | None = None,
        convention: str | None = None,
        data_format: str = "channels_last",
        seed: int | None = None,
        offset: int = 0,
        store_mask: bool = False,
    ) -> None:
        fmt = _checks.choice("data_format", data_format, _NAMED_NOISE)
        if convention is None and drop_prob is not None:
            convention = "keras"
        super().__init__(
            keep_prob=keep_prob,
            drop_prob=drop_prob,
            convention=convention,
            noise_shape=fmt,
            seed=seed,
            offset=offset,
            store_mask=store_mask,
        )
