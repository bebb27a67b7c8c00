"""Transferability scores: how well will a pretrained source transfer to a labelled target, from one forward pass?

    logme(feats, y)                       # LogME: evidence of a Bayesian linear model, features -> one-hot labels
    h_score(feats, y)                     # H-score (Ledoit-Wolf shrunk covariance; shrinkage=False: the original)
    leep(imagenet_probs, y)               # LEEP: needs the source's own classifier probabilities [N, 1000]
    nce(imagenet_probs.argmax(1), y)      # NCE: needs the source's hard label predictions [N]

Higher is better for all four; each is comparable across sources on ONE target, not across targets. `feats` are
float [N, D] penultimate features, `y` int labels 0..K−1. The math follows the papers (cited per function) and the
well-kept implementations in TLlib (github.com/thuml/Transfer-Learning-Library, tllib/ranking/), written out readably.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tlcourse import data


def _inputs(x, labels, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(x as float64 [N, D], labels as int [N], number of classes K), with one-line errors for wrong inputs."""
    x, y = data.labelled(x, labels, what)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array [N, D], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: {int((~np.isfinite(x)).sum())} entries are NaN or infinite")
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"labels must be integers 0..K−1, got {y.dtype} values from {y.min()} to {y.max()}")
    return x, y.astype(np.int64), int(y.max()) + 1


def logme(features, labels, max_iter: int = 20, tol: float = 1e-4) -> float:
    """LogME (You, Liu, Wang & Long, ICML 2021): mean over classes of the maximum log evidence per image.

    For each class c, t = 1[y == c] is regressed on the features F [N, D] by Bayesian linear regression:
        prior  w ~ N(0, α⁻¹ I),   likelihood  t | F, w ~ N(F w, β⁻¹ I).
    The evidence p(t | F, α, β) = ∫ p(t | F, w) p(w) dw integrates the weights out; LogME maximises it over (α, β)
    with MacKay's fixed-point updates, using the singular values s_i of F (σ_i = s_i², the eigenvalues of FᵀF):
        A = α I + β FᵀF,   m = β A⁻¹ Fᵀ t                 (posterior mean of w)
        γ = Σ_i β σ_i / (α + β σ_i)                        (how many weights the data pin down)
        α ← γ / mᵀm,        β ← (N − γ) / ‖t − F m‖²
    and at the optimum
        log p(t | F, α, β) = N/2 log β + D/2 log α − N/2 log 2π − β/2 ‖t − F m‖² − α/2 mᵀm − 1/2 log |A|.
    Multiplying every feature by one constant changes only α (α → c²α at the optimum): the score is unchanged.
    """
    f, y, n_classes = _inputs(features, labels, "logme")
    u, s, _ = np.linalg.svd(f, full_matrices=False)  # F = U diag(s) Vᵀ: one SVD serves every class
    return float(np.mean([max_evidence(u, s, (y == c).astype(np.float64), f.shape[1], max_iter, tol)[0]
                          for c in range(n_classes)]))  # fmt: skip


def max_evidence(u: np.ndarray, s: np.ndarray, t: np.ndarray, d: int, max_iter: int = 20,
                 tol: float = 1e-4) -> tuple[float, float, float]:  # fmt: skip
    """(maximum log evidence per image, α, β) of the regression of t [N] on F = U diag(s) Vᵀ with D columns (logme)."""
    n = len(t)
    sigma = s**2  # [r] non-zero eigenvalues of FᵀF (its other D − r are 0)
    ut = u.T @ t  # [r] t in F's left singular basis
    outside = float(t @ t - ut @ ut)  # the part of ‖t‖² no linear map of F can reach

    def posterior(alpha, beta):  # (mᵀm, ‖t − F m‖², γ); m's coordinates along V are β s_i (Uᵀt)_i / (α + β σ_i)
        m = beta * s * ut / (alpha + beta * sigma)  # [r]
        residual = outside + float(((ut - s * m) ** 2).sum())
        return float(m @ m), max(residual, 1e-12), float((beta * sigma / (alpha + beta * sigma)).sum())

    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        mm, res, gamma = posterior(alpha, beta)
        new_alpha, new_beta = gamma / max(mm, 1e-12), max(n - gamma, 1e-12) / res
        done = abs(new_alpha / new_beta - alpha / beta) <= tol * alpha / beta  # m depends on the ratio α/β only
        alpha, beta = new_alpha, new_beta
        if done:
            break
    mm, res, _ = posterior(alpha, beta)
    log_det_a = float(np.log(alpha + beta * sigma).sum()) + (d - len(s)) * np.log(alpha)  # log |A|
    evidence = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res - alpha / 2 * mm - log_det_a / 2)  # fmt: skip
    return float(evidence / n), float(alpha), float(beta)


def h_score(features, labels, shrinkage: bool = True) -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)⁻¹ cov(E[f | y])), how much of the features' spread lies between
    the class means, in units of their total spread.

    With fewer images than feature dimensions cov(f) is singular: the original score (shrinkage=False, with a
    pseudo-inverse) then equals K − 1 whatever the labels. shrinkage=True uses the Ledoit-Wolf estimate
    cov_a(f) = (1 − a) cov(f) + a μ I (μ: the mean variance, a: the shrinkage the data call for) and scales the
    between-class part by (1 − a) alike (Ibrahim, Ponomareva & Mazumder, "Newer is not always better", 2022).
    The original is unchanged by any invertible linear map of the features, the shrunk one by a common scale.
    Computed through the SVD of the centred features, so it costs O(N²D), not the O(D³) of inverting cov(f).
    """
    f, y, n_classes = _inputs(features, labels, "h_score")
    n, d = f.shape
    f = f - f.mean(0)  # [N,D] centred
    _, s, vt = np.linalg.svd(f, full_matrices=False)  # f = U diag(s) Vᵀ, r = min(N, D)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)  # [K]
    means = np.stack([f[y == c].mean(0) if counts[c] else np.zeros(d) for c in range(n_classes)])  # [K,D] E[f | y]
    proj2 = (means @ vt.T) ** 2  # [K,r] the class means along V's directions
    weight = counts / (n - 1)  # cov(E[f | y]) = Σ_c weight_c mean_c mean_cᵀ (N − 1 normalisation, as np.cov)
    if not shrinkage:  # tr(cov(f)⁺ cov_g) with cov(f) = V diag(s² / (N − 1)) Vᵀ; tiny singular values dropped (pinv)
        keep = s > s.max() * max(n, d) * np.finfo(float).eps
        return float(weight @ (proj2[:, keep] * (n - 1) / s[keep] ** 2).sum(1))
    # Ledoit-Wolf on the centred features, S = fᵀf / N (as sklearn's LedoitWolf(assume_centered=True))
    eig = s**2 / n  # [r] the non-zero eigenvalues of S
    mu = eig.sum() / d  # target μ I: the average variance
    norm_s2 = float((eig**2).sum())  # ‖S‖²_F
    delta = norm_s2 - mu**2 * d  # ‖S − μ I‖²_F: how far S is from the target
    beta = ((np.sum(f**2, 1) ** 2).sum() / n - norm_s2) / n  # 1/N² Σ_k ‖x_k x_kᵀ − S‖²_F: how noisy S is
    a = 1.0 if delta <= 0 else min(beta, delta) / delta  # shrinkage in [0, 1]
    lam = a * mu
    shrunk = (1 - a) * eig + lam  # [r] eigenvalues of cov_a(f) along V; λ = a μ in every other direction
    inside = (proj2 / shrunk).sum(1)  # [K] meanᵀ cov_a⁻¹ mean, the part in V's span ...
    outside = np.maximum((means**2).sum(1) - proj2.sum(1), 0.0) / lam if lam > 0 else 0.0  # ... and the rest
    return float((1 - a) * weight @ (inside + outside))


def _probabilities(probs, labels, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(source probabilities [N, Z] checked to be rows on the simplex, labels [N], K)."""
    p, y, n_classes = _inputs(probs, labels, what)
    if (p < -1e-9).any() or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError(f"{what}: pass the source's class probabilities (each row ≥ 0, summing to 1), e.g. "
                         "logits.softmax(-1); got rows summing to "
                         f"{p.sum(1).min():.3g}…{p.sum(1).max():.3g}")  # fmt: skip
    return np.clip(p, 0.0, None), y, n_classes


def leep(source_probs, labels) -> float:
    """LEEP (Nguyen, Hassner, Seeger & Archambeau, ICML 2020): the average log-likelihood of the target labels under
    the "expected empirical predictor" built from the source classifier θ (probabilities over Z source classes):
        P̂(y, z) = 1/N Σ_i θ(x_i)_z 1[y_i = y],    P̂(y | z) = P̂(y, z) / P̂(z),
        LEEP = 1/N Σ_i log Σ_z P̂(y_i | z) θ(x_i)_z.
    At most 0; 0 when each target class is predicted with certainty through the source's classes.
    """
    p, y, n_classes = _probabilities(source_probs, labels, "leep")
    onehot = np.eye(n_classes)[y]  # [N,K]
    joint = onehot.T @ p / len(y)  # [K,Z] P̂(y, z)
    p_z = joint.sum(0)  # [Z] P̂(z)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # [K,Z] P̂(y | z)
    eep = p @ cond.T  # [N,K] the expected empirical prediction of every class for every image
    return float(np.mean(np.log(np.maximum(eep[np.arange(len(y)), y], 1e-300))))


def nce(source_labels, labels) -> float:
    """NCE (Tran, Nguyen & Hassner, ICCV 2019): the negative conditional entropy −H(Y | Z) of the target label Y given
    the source's predicted label Z, from their empirical joint distribution over the N images:
        NCE = Σ_{y,z} P̂(y, z) log P̂(y | z).
    At most 0; 0 when the source's label determines the target label.
    """
    z = np.asarray(source_labels)
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.integer):
        raise ValueError(f"nce: pass the source's predicted labels as integers [N] (probs.argmax(1)), got "
                         f"{z.dtype} {list(z.shape)}")  # fmt: skip
    _, y, n_classes = _inputs(np.zeros((len(z), 1)), labels, "nce")  # checks the labels against z's length
    _, z = np.unique(z, return_inverse=True)  # only the source classes that occur
    joint = np.zeros((n_classes, int(z.max()) + 1))  # [K,Z'] counts
    np.add.at(joint, (y, z), 1.0)
    joint /= len(y)  # P̂(y, z)
    cond = joint / joint.sum(0, keepdims=True)  # P̂(y | z); every column here has a count
    nz = joint > 0
    return float((joint[nz] * np.log(cond[nz])).sum())


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of logits [N, Z] (float64, stable)."""
    x = np.asarray(logits, dtype=np.float64)
    x = np.exp(x - x.max(1, keepdims=True))
    return x / x.sum(1, keepdims=True)


SCORES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    # name -> score(features [N,D], source logits [N,Z], labels [N]): what each score reads is part of its cost
    "LogME": lambda f, logits, y: logme(f, y),
    "H-score": lambda f, logits, y: h_score(f, y),
    "LEEP": lambda f, logits, y: leep(softmax(logits), y),
    "NCE": lambda f, logits, y: nce(np.asarray(logits).argmax(1), y),
}
