"""NumPy transcriptions of the peers' update rules, one function per (rule, peer), float64.

Each is written from the peer's own source, with the peer's parameter names and defaults and
its order of operations: ``torch.optim`` (2.x, single-tensor path), ``keras.optimizers`` (3.x,
``update_step``), ``optax`` (0.2.x, ``scale_by_*`` chained with ``scale_by_learning_rate``) and
ONNX's ``ai.onnx.preview.training`` operators (the ``onnx.reference`` implementation). They are
the oracle of ``tests/test_peer_matrix.py``, which runs each against ``nndl_fast.optim`` with the
matching ``convention=`` (and against the peer itself where it is installed).

Every function is ``f(param, grad, state, t, **hyper) -> new param``: ``t`` is the 1-based count
of this update (torch's ``step``; Keras's ``iterations + 1``; optax's ``count + 1``; ONNX's
input T is ``t − 1``), ``state`` a dict the function fills on its first call (named as the
peer names its slots) and updates.
"""

from __future__ import annotations

import math

import numpy as np

Array = np.ndarray


def _slot(state: dict, name: str, like: Array, value: float = 0.0) -> Array:
    if name not in state:
        state[name] = np.full_like(like, value)
    return state[name]


# --------------------------------------------------------------------------------------
# SGD with momentum
# --------------------------------------------------------------------------------------
def sgd_torch(param, grad, state, t, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD: b ← μb + (1 − dampening)g (b = g at the first step); θ ← θ − lr·b."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    if momentum != 0:
        if "momentum_buffer" not in state:
            buf = g.copy()
        else:
            buf = momentum * state["momentum_buffer"] + (1 - dampening) * g
        state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return param - lr * g


def sgd_keras(variable, gradient, state, t, learning_rate=0.01, momentum=0.0, nesterov=False):
    """keras.optimizers.SGD: m ← momentum·m − lr·g; θ ← θ + m (nesterov: θ + momentum·m − lr·g)."""
    if momentum == 0:
        return variable - gradient * learning_rate
    m = _slot(state, "momentum", variable)
    m = m * momentum - gradient * learning_rate
    state["momentum"] = m
    if nesterov:
        return variable + (m * momentum - gradient * learning_rate)
    return variable + m


def sgd_optax(params, updates, state, t, learning_rate, momentum=None, nesterov=False):
    """optax.sgd = chain(trace(decay=momentum, nesterov), scale_by_learning_rate)."""
    if momentum is not None:
        trace = updates + momentum * _slot(state, "trace", params)
        state["trace"] = trace
        updates = updates + momentum * trace if nesterov else trace
    return params + (-learning_rate) * updates


def momentum_onnx(X, G, state, t, R, alpha, beta, mode="standard", norm_coefficient=0.0):
    """ai.onnx.preview.training.Momentum, T = t − 1: V ← αV + β'g (β' = 1 at T = 0); X ← X − R·V
    (mode="nesterov": X ← X − R(g + αV))."""
    T = t - 1
    V = _slot(state, "V", X)
    g_regularized = norm_coefficient * X + G
    beta_adjusted = beta if T > 0 else 1
    V_new = alpha * V + beta_adjusted * g_regularized
    state["V"] = V_new
    if mode == "nesterov":
        return X - R * (g_regularized + alpha * V_new)
    return X - R * V_new


# --------------------------------------------------------------------------------------
# AdaGrad
# --------------------------------------------------------------------------------------
def adagrad_torch(
    param, grad, state, t, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    """torch.optim.Adagrad: clr = lr/(1 + (t − 1)·lr_decay); θ ← θ − clr·g/(√sum + eps)."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    clr = lr / (1 + (t - 1) * lr_decay)
    s = _slot(state, "sum", param, initial_accumulator_value) + g * g
    state["sum"] = s
    return param - clr * (g / (np.sqrt(s) + eps))


def adagrad_keras(variable, gradient, state, t, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
    """keras.optimizers.Adagrad: acc += g²; θ ← θ − lr·g/√(acc + ε)."""
    acc = _slot(state, "accumulator", variable, initial_accumulator_value) + np.square(gradient)
    state["accumulator"] = acc
    return variable - (learning_rate * gradient) / np.sqrt(acc + epsilon)


def adagrad_optax(params, updates, state, t, learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """optax.adagrad = chain(scale_by_rss, scale_by_learning_rate): g·rsqrt(sum + eps) where sum > 0."""
    sos = np.square(updates) + _slot(state, "sum_of_squares", params, initial_accumulator_value)
    state["sum_of_squares"] = sos
    inv_sqrt = np.where(sos > 0, 1.0 / np.sqrt(sos + eps), 0.0)
    return params + (-learning_rate) * (inv_sqrt * updates)


def adagrad_onnx(X, G, state, t, R, decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0):
    """ai.onnx.preview.training.Adagrad, T = t − 1: r = R/(1 + T·decay_factor); X ← X − r·g/(√H + ε)."""
    T = t - 1
    r = R / (1 + T * decay_factor)
    g_regularized = norm_coefficient * X + G
    H_new = _slot(state, "H", X) + g_regularized * g_regularized
    state["H"] = H_new
    H_adaptive = np.sqrt(H_new) + epsilon
    return X - r * g_regularized / H_adaptive


# --------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------
def rmsprop_torch(param, grad, state, t, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop: v ← αv + (1 − α)g²; θ ← θ − lr·g/(√v + eps) (centered, momentum)."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    sq = alpha * _slot(state, "square_avg", param) + (1 - alpha) * g * g
    state["square_avg"] = sq
    if centered:
        ga = alpha * _slot(state, "grad_avg", param) + (1 - alpha) * g
        state["grad_avg"] = ga
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = momentum * _slot(state, "momentum_buffer", param) + g / avg
        state["momentum_buffer"] = buf
        return param - lr * buf
    return param - lr * (g / avg)


def rmsprop_keras(
    variable, gradient, state, t, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False
):
    """keras.optimizers.RMSprop: velocity ← ρ·velocity + (1 − ρ)g²; increment = lr·g/√(velocity + ε)."""
    velocity = rho * _slot(state, "velocity", variable) + (1 - rho) * np.square(gradient)
    state["velocity"] = velocity
    if centered:
        average_grad = rho * _slot(state, "average_gradient", variable) + (1 - rho) * gradient
        state["average_gradient"] = average_grad
        denominator = velocity - np.square(average_grad) + epsilon
    else:
        denominator = velocity + epsilon
    increment = (learning_rate * gradient) / np.sqrt(denominator)
    if momentum > 0:
        m = momentum * _slot(state, "momentum", variable) + increment
        state["momentum"] = m
        return variable - m
    return variable - increment


def rmsprop_optax(
    params,
    updates,
    state,
    t,
    learning_rate,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt=True,
    centered=False,
    momentum=None,
    nesterov=False,
    bias_correction=False,
):
    """optax.rmsprop = chain(scale_by_rms | scale_by_stddev, scale_by_learning_rate, trace)."""
    nu = (1 - decay) * updates**2 + decay * _slot(state, "nu", params, initial_scale)
    state["nu"] = nu
    nu_hat = nu / (1 - decay**t) if bias_correction else nu
    if centered:
        mu = (1 - decay) * updates + decay * _slot(state, "mu", params)
        state["mu"] = mu
        mu_hat = mu / (1 - decay**t) if bias_correction else mu
        nu_hat = nu_hat - np.square(mu_hat)
    if eps_in_sqrt:
        scaling = 1.0 / np.sqrt(nu_hat + eps)
    else:
        scaling = 1 / (np.sqrt(nu_hat) + eps)
    updates = (-learning_rate) * (scaling * updates)
    if momentum is not None:
        trace = updates + momentum * _slot(state, "trace", params)
        state["trace"] = trace
        updates = updates + momentum * trace if nesterov else trace
    return params + updates


# --------------------------------------------------------------------------------------
# AdaDelta
# --------------------------------------------------------------------------------------
def adadelta_torch(param, grad, state, t, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    """torch.optim.Adadelta: v ← ρv + (1 − ρ)g²; Δ = √(u + eps)/√(v + eps)·g; u ← ρu + (1 − ρ)Δ²."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    sq = rho * _slot(state, "square_avg", param) + (1 - rho) * g * g
    std = np.sqrt(sq + eps)
    delta = np.sqrt(_slot(state, "acc_delta", param) + eps) / std * g
    state["square_avg"] = sq
    state["acc_delta"] = rho * state["acc_delta"] + (1 - rho) * delta * delta
    return param - lr * delta


def adadelta_keras(variable, grad, state, t, learning_rate=0.001, rho=0.95, epsilon=1e-7):
    """keras.optimizers.Adadelta: accumulated_grad, accumulated_delta_var as Zeiler's E[g²], E[Δx²]."""
    acc_g = rho * _slot(state, "accumulated_grad", variable) + (1 - rho) * np.square(grad)
    state["accumulated_grad"] = acc_g
    acc_d = _slot(state, "accumulated_delta_var", variable)
    delta_var = -(np.sqrt(acc_d + epsilon) * grad / np.sqrt(acc_g + epsilon))
    state["accumulated_delta_var"] = rho * acc_d + (1 - rho) * np.square(delta_var)
    return variable + learning_rate * delta_var


def adadelta_optax(params, updates, state, t, learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0):
    """optax.adadelta = chain(add_decayed_weights(weight_decay), scale_by_adadelta, scale_by_learning_rate)."""
    updates = updates + weight_decay * params
    e_g = (1 - rho) * updates**2 + rho * _slot(state, "e_g", params)
    updates = np.sqrt(_slot(state, "e_x", params) + eps) / np.sqrt(e_g + eps) * updates
    state["e_x"] = (1 - rho) * updates**2 + rho * state["e_x"]
    state["e_g"] = e_g
    return params + (-learning_rate) * updates


# --------------------------------------------------------------------------------------
# Adam, AMSGrad, AdamW
# --------------------------------------------------------------------------------------
def adam_torch(
    param,
    grad,
    state,
    t,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    decoupled_weight_decay=False,
):
    """torch.optim.Adam (AdamW with decoupled_weight_decay): θ ← θ − lr/(1 − β₁ᵗ)·m/(√v/√(1 − β₂ᵗ) + eps)."""
    beta1, beta2 = betas
    if decoupled_weight_decay:
        param = param * (1 - lr * weight_decay)
        g = grad
    else:
        g = grad + weight_decay * param if weight_decay != 0 else grad
    m = _slot(state, "exp_avg", param)
    m = m + (g - m) * (1 - beta1)  # torch's lerp
    v = beta2 * _slot(state, "exp_avg_sq", param) + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = m, v
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    step_size = lr / bias_correction1
    if amsgrad:
        v = np.maximum(_slot(state, "max_exp_avg_sq", param), v)
        state["max_exp_avg_sq"] = v
    denom = np.sqrt(v) / math.sqrt(bias_correction2) + eps
    return param - step_size * (m / denom)


def adamw_torch(param, grad, state, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    """torch.optim.AdamW: θ ← θ(1 − lr·weight_decay), then Adam."""
    return adam_torch(param, grad, state, t, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)


def adam_keras(
    variable,
    gradient,
    state,
    t,
    learning_rate=0.001,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    amsgrad=False,
    weight_decay=None,
):
    """keras.optimizers.Adam: alpha = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ); θ ← θ − m·alpha/(√v + ε) (ε-hat);
    weight_decay (the base optimizer's): θ ← θ − θ·weight_decay·lr first."""
    if weight_decay is not None:
        variable = variable - variable * weight_decay * learning_rate
    beta_1_power = beta_1**t
    beta_2_power = beta_2**t
    alpha = learning_rate * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = _slot(state, "momentum", variable)
    m = m + (gradient - m) * (1 - beta_1)
    v = _slot(state, "velocity", variable)
    v = v + (np.square(gradient) - v) * (1 - beta_2)
    state["momentum"], state["velocity"] = m, v
    if amsgrad:
        v = np.maximum(_slot(state, "velocity_hat", variable), v)
        state["velocity_hat"] = v
    return variable - (m * alpha) / (np.sqrt(v) + epsilon)


def adamw_keras(
    variable,
    gradient,
    state,
    t,
    learning_rate=0.001,
    weight_decay=0.004,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    amsgrad=False,
):
    """keras.optimizers.AdamW: Keras's Adam with the base optimizer's decoupled weight_decay."""
    return adam_keras(variable, gradient, state, t, learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay)


def _adam_moments(updates, state, params, b1, b2):
    mu = (1 - b1) * updates + b1 * _slot(state, "mu", params)  # update_moment
    nu = (1 - b2) * updates**2 + b2 * _slot(state, "nu", params)  # update_moment_per_elem_norm
    state["mu"], state["nu"] = mu, nu
    return mu, nu


def adam_optax(params, updates, state, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    """optax.adam = chain(scale_by_adam, scale_by_learning_rate): m̂/(√(v̂ + eps_root) + eps)
    (nesterov, optax.nadam: m̂ = b1·m/(1 − b1^{t+1}) + (1 − b1)·g/(1 − b1ᵗ))."""
    mu, nu = _adam_moments(updates, state, params, b1, b2)
    if nesterov:
        mu_hat = b1 * (mu / (1 - b1 ** (t + 1))) + (1 - b1) * (updates / (1 - b1**t))
    else:
        mu_hat = mu / (1 - b1**t)
    nu_hat = nu / (1 - b2**t)
    return params + (-learning_rate) * (mu_hat / (np.sqrt(nu_hat + eps_root) + eps))


def nadam_optax(params, updates, state, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """optax.nadam = optax.adam(..., nesterov=True)."""
    return adam_optax(params, updates, state, t, learning_rate, b1, b2, eps, eps_root, nesterov=True)


def amsgrad_optax(params, updates, state, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """optax.amsgrad = chain(scale_by_amsgrad, scale_by_learning_rate): the max of the bias-corrected v̂."""
    mu, nu = _adam_moments(updates, state, params, b1, b2)
    mu_hat = mu / (1 - b1**t)
    nu_hat = nu / (1 - b2**t)
    nu_max = np.maximum(_slot(state, "nu_max", params), nu_hat)
    state["nu_max"] = nu_max
    return params + (-learning_rate) * (mu_hat / (np.sqrt(nu_max + eps_root) + eps))


def adamw_optax(params, updates, state, t, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4):
    """optax.adamw = chain(scale_by_adam, add_decayed_weights(weight_decay), scale_by_learning_rate)."""
    mu, nu = _adam_moments(updates, state, params, b1, b2)
    u = (mu / (1 - b1**t)) / (np.sqrt(nu / (1 - b2**t) + eps_root) + eps)
    return params + (-learning_rate) * (u + weight_decay * params)


def adam_onnx(X, G, state, t, R, alpha=0.9, beta=0.999, epsilon=1e-6, norm_coefficient=0.0, norm_coefficient_post=0.0):
    """ai.onnx.preview.training.Adam, T = t − 1: r = R·√(1 − βᵀ)/(1 − αᵀ) (R at T = 0);
    X ← (1 − norm_coefficient_post)·(X − r·V/(√H + ε))."""
    T = t - 1
    g_regularized = norm_coefficient * X + G
    V_new = alpha * _slot(state, "V", X) + (1 - alpha) * g_regularized
    H_new = beta * _slot(state, "H", X) + (1 - beta) * (g_regularized * g_regularized)
    state["V"], state["H"] = V_new, H_new
    H_sqrt = np.sqrt(H_new) + epsilon
    R_adjusted = R * np.sqrt(1 - beta**T) / (1 - alpha**T) if T > 0 else R
    X_new = X - R_adjusted * (V_new / H_sqrt)
    return (1 - norm_coefficient_post) * X_new


# --------------------------------------------------------------------------------------
# Nadam
# --------------------------------------------------------------------------------------
def nadam_torch(param, grad, state, t, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3):
    """torch.optim.NAdam: μ_t = β₁(1 − ½·0.96^{t·momentum_decay}), mu_product in float64 here."""
    beta1, beta2 = betas
    g = grad + weight_decay * param if weight_decay != 0 else grad
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state.get("mu_product", 1.0) * mu
    state["mu_product"] = mu_product
    m = _slot(state, "exp_avg", param)
    m = m + (g - m) * (1 - beta1)
    v = beta2 * _slot(state, "exp_avg_sq", param) + (1 - beta2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = m, v
    denom = np.sqrt(v / (1 - beta2**t)) + eps
    param = param - lr * (1 - mu) / (1 - mu_product) * (g / denom)
    return param - lr * mu_next / (1 - mu_product * mu_next) * (m / denom)


def nadam_keras(variable, gradient, state, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """keras.optimizers.Nadam: u_t = β₁(1 − ½·0.96ᵗ); _u_product updated before the step."""
    decay = 0.96
    u_product_t = state.get("u_product", 1.0) * beta_1 * (1.0 - 0.5 * decay**t)
    state["u_product"] = u_product_t
    u_t = beta_1 * (1.0 - 0.5 * decay**t)
    u_t_1 = beta_1 * (1.0 - 0.5 * decay ** (t + 1))
    u_product_t_1 = u_product_t * u_t_1
    beta_2_power = beta_2**t
    m = _slot(state, "momentum", variable)
    m = m + (gradient - m) * (1 - beta_1)
    v = _slot(state, "velocity", variable)
    v = v + (np.square(gradient) - v) * (1 - beta_2)
    state["momentum"], state["velocity"] = m, v
    m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * gradient) / (1 - u_product_t)
    v_hat = v / (1 - beta_2_power)
    return variable - (m_hat * learning_rate) / (np.sqrt(v_hat) + epsilon)


PEERS = {
    ("sgd", "torch"): sgd_torch,
    ("sgd", "keras"): sgd_keras,
    ("sgd", "optax"): sgd_optax,
    ("sgd", "onnx"): momentum_onnx,
    ("adagrad", "torch"): adagrad_torch,
    ("adagrad", "keras"): adagrad_keras,
    ("adagrad", "optax"): adagrad_optax,
    ("adagrad", "onnx"): adagrad_onnx,
    ("rmsprop", "torch"): rmsprop_torch,
    ("rmsprop", "keras"): rmsprop_keras,
    ("rmsprop", "optax"): rmsprop_optax,
    ("adadelta", "torch"): adadelta_torch,
    ("adadelta", "keras"): adadelta_keras,
    ("adadelta", "optax"): adadelta_optax,
    ("adam", "torch"): adam_torch,
    ("adam", "keras"): adam_keras,
    ("adam", "optax"): adam_optax,
    ("amsgrad", "optax"): amsgrad_optax,
    ("adam", "onnx"): adam_onnx,
    ("adamw", "torch"): adamw_torch,
    ("adamw", "keras"): adamw_keras,
    ("adamw", "optax"): adamw_optax,
    ("nadam", "torch"): nadam_torch,
    ("nadam", "keras"): nadam_keras,
    ("nadam", "optax"): nadam_optax,
}
