"""Binding information in bits ("Formalizing the Binding Problem", arXiv 2606.03976).

A probe q(o|z) = prod_k q(o_k | o_<k, z) is trained on a frozen representation z; its test
cross-entropy in bits estimates H(O|Z). Head k sees the earlier labels as
y~_k = (o_i - 1/2) * 1[i < k] (teacher forcing, also at test time), so the test CE is
exactly -log2 q(o|z) with no sampling. With the world's exact entropies:

    B_O   = H(O) - CE_O                   beta  = B_O / H(O)
    B*    = H(O|F) - (CE_O - CE_F)        beta* = B* / H(O|F)

where CE_F comes from a separately trained autoregressive probe for the feature code F.
Families (docs/methods/probes.md A5), all built by ``make_probe`` and fitted by ``fit_probe``:
linear, quadratic (rank r on [z; y~_k]), shared_quadratic (z-blocks shared by colour and
shape: U_c^T z . V_s^T z), dnn (one MLP per head, batched einsum) and attention (a query
per head over spatial tokens, read out by the rank-r quadratic on [CLS; pooled; y~_k]).
Model selection: the epoch with the best val CE; its test CE is reported.

Two choices make the fit able to measure (issue 21; docs/probes.md): inputs are
standardised per channel with the train split's mean and std (a random ViT's residual
stream varies ~0.02 around ~1.0, far below the probes' N(0, 0.02^2) init scale), and the
training loss is the BCE averaged over heads and images, as in the reference, so weight
decay has the reference's strength relative to the data term. Reported bits stay sums
over heads. Every run should also fit the controls (components/probes/controls.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FAMILIES = ("linear", "quadratic", "shared_quadratic", "dnn", "attention")
TOKEN_FAMILIES = ("attention",)  # families that read (B, 1 + N, D) tokens, not (B, d)
INIT_STD = 0.02


def _normal(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * INIT_STD)


def _strictly_lower(num_bits: int) -> torch.Tensor:
    """mask[k, i] = 1[i < k]: head k may condition on labels before it only."""
    return torch.tril(torch.ones(num_bits, num_bits), diagonal=-1)


class _AutoregressiveProbe(nn.Module):
    """Common part: the causal mask and the centred labels o - 1/2."""

    def __init__(self, num_bits: int):
        super().__init__()
        self.num_bits = num_bits
        self.register_buffer("causal", _strictly_lower(num_bits), persistent=False)

    def conditioned(self, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """sum_i y~_{k,i} weight[k, i, ...] for every head: (B, K, ...) from (K, K, ...)."""
        masked = weight * self.causal.view(*self.causal.shape, *([1] * (weight.dim() - 2)))
        return torch.einsum("bi,ki...->bk...", labels - 0.5, masked)


class LinearProbe(_AutoregressiveProbe):
    """l_k = w_k^T z + sum_{i<k} U_ki (o_i - 1/2) + b_k."""

    def __init__(self, dim: int, num_bits: int):
        super().__init__(num_bits)
        self.weight = _normal(dim, num_bits)
        self.label_weight = _normal(num_bits, num_bits)
        self.bias = nn.Parameter(torch.zeros(num_bits))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return z @ self.weight + self.conditioned(self.label_weight, labels) + self.bias


class QuadraticProbe(_AutoregressiveProbe):
    """l_k = <A_k^T x_k, B_k^T x_k> / sqrt(d + K) + b_k with x_k = [z; y~_k] (rank r)."""

    def __init__(self, dim: int, num_bits: int, rank: int = 16):
        super().__init__(num_bits)
        self.a_z, self.b_z = _normal(num_bits, dim, rank), _normal(num_bits, dim, rank)
        self.a_y, self.b_y = _normal(num_bits, num_bits, rank), _normal(num_bits, num_bits, rank)
        self.bias = nn.Parameter(torch.zeros(num_bits))
        self.scale = 1.0 / math.sqrt(dim + num_bits)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        left = torch.einsum("bd,kdr->bkr", z, self.a_z) + self.conditioned(self.a_y, labels)
        right = torch.einsum("bd,kdr->bkr", z, self.b_z) + self.conditioned(self.b_y, labels)
        return (left * right).sum(-1) * self.scale + self.bias  # (B, K)


class SharedQuadraticProbe(_AutoregressiveProbe):
    """l_k = (U_c^T z + P_k^T y~_k) . (V_s^T z + Q_k^T y~_k) / sqrt(d + K) + b_k.

    Head k = c * n_shapes + s shares its z-blocks with every head of the same colour (U_c)
    and of the same shape (V_s): binding must be a colour-shape product of one z.
    """

    def __init__(self, dim: int, num_bits: int, groups: tuple[int, int], rank: int = 16):
        super().__init__(num_bits)
        n_colors, n_shapes = groups
        if n_colors * n_shapes != num_bits:
            raise ValueError(f"shared_quadratic: groups {groups} do not multiply to K={num_bits}")
        heads = torch.arange(num_bits)
        self.register_buffer("color_of", heads // n_shapes, persistent=False)
        self.register_buffer("shape_of", heads % n_shapes, persistent=False)
        self.u, self.v = _normal(n_colors, dim, rank), _normal(n_shapes, dim, rank)
        self.p, self.q = _normal(num_bits, num_bits, rank), _normal(num_bits, num_bits, rank)
        self.bias = nn.Parameter(torch.zeros(num_bits))
        self.scale = 1.0 / math.sqrt(dim + num_bits)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        by_color = torch.einsum("bd,cdr->bcr", z, self.u)[:, self.color_of]  # (B, K, r)
        by_shape = torch.einsum("bd,sdr->bsr", z, self.v)[:, self.shape_of]
        left = by_color + self.conditioned(self.p, labels)
        right = by_shape + self.conditioned(self.q, labels)
        return (left * right).sum(-1) * self.scale + self.bias


class DNNProbe(_AutoregressiveProbe):
    """One GELU MLP per head on [z; y~_k]: (d + K) -> hidden x (layers - 1) -> 1, as einsum."""

    def __init__(self, dim: int, num_bits: int, hidden: int = 256, layers: int = 4):
        super().__init__(num_bits)
        if layers < 2:
            raise ValueError(f"dnn probe needs layers >= 2, got {layers}")
        self.first_z, self.first_y = (
            _normal(num_bits, dim, hidden),
            _normal(num_bits, num_bits, hidden),
        )
        self.first_bias = nn.Parameter(torch.zeros(num_bits, hidden))
        self.hidden = nn.ParameterList(
            [_normal(num_bits, hidden, hidden) for _ in range(layers - 2)]
        )
        self.hidden_bias = nn.ParameterList(
            [nn.Parameter(torch.zeros(num_bits, hidden)) for _ in range(layers - 2)]
        )
        self.last = _normal(num_bits, hidden)
        self.bias = nn.Parameter(torch.zeros(num_bits))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("bd,kdh->bkh", z, self.first_z) + self.conditioned(self.first_y, labels)
        h = F.gelu(h + self.first_bias)  # (B, K, hidden)
        for weight, bias in zip(self.hidden, self.hidden_bias, strict=True):
            h = F.gelu(torch.einsum("bkh,khg->bkg", h, weight) + bias)
        return torch.einsum("bkh,kh->bk", h, self.last) + self.bias


class AttentionProbe(_AutoregressiveProbe):
    """Query-only attention over spatial tokens, then the rank-r quadratic readout.

    q_k = W_q (e_k + sum_i y~_{k,i} g_i);  a_k = softmax_n(q_k . t_n / sqrt(D)) over patches;
    p_k = sum_n a_kn t_n;  x_k = [t_CLS; p_k; y~_k];  l_k = <A_k^T x_k, B_k^T x_k>/sqrt(2D+K).
    """

    def __init__(self, dim: int, num_bits: int, rank: int = 16):
        super().__init__(num_bits)
        self.head_query, self.label_query = _normal(num_bits, dim), _normal(num_bits, dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.a_cls, self.b_cls = _normal(num_bits, dim, rank), _normal(num_bits, dim, rank)
        self.a_pool, self.b_pool = _normal(num_bits, dim, rank), _normal(num_bits, dim, rank)
        self.a_y, self.b_y = _normal(num_bits, num_bits, rank), _normal(num_bits, num_bits, rank)
        self.bias = nn.Parameter(torch.zeros(num_bits))
        self.scale = 1.0 / math.sqrt(2 * dim + num_bits)
        self.dim = dim

    def attention(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """a (B, K, N): where head k looks among the N spatial tokens.

        W_q is linear, so it is applied to the (K, D) parameters e and g rather than to the
        (B, K, D) sums: the same queries for a third of the probe's arithmetic.
        """
        conditioned = (labels - 0.5)[:, None, :] * self.causal  # (B, K, K): y~_{k,i}
        queries = self.query(self.head_query) + conditioned @ self.query(self.label_query)
        scores = torch.einsum("bkd,bnd->bkn", queries, tokens[:, 1:]) / math.sqrt(self.dim)
        return scores.softmax(-1)

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cls, patches = tokens[:, 0], tokens[:, 1:]  # (B, D), (B, N, D)
        pooled = torch.einsum("bkn,bnd->bkd", self.attention(tokens, labels), patches)
        left = (
            torch.einsum("bd,kdr->bkr", cls, self.a_cls)
            + torch.einsum("bkd,kdr->bkr", pooled, self.a_pool)
            + self.conditioned(self.a_y, labels)
        )
        right = (
            torch.einsum("bd,kdr->bkr", cls, self.b_cls)
            + torch.einsum("bkd,kdr->bkr", pooled, self.b_pool)
            + self.conditioned(self.b_y, labels)
        )
        return (left * right).sum(-1) * self.scale + self.bias


def make_probe(
    family: str,
    dim: int,
    num_bits: int,
    *,
    rank: int = 16,
    hidden: int = 256,
    layers: int = 4,
    groups: tuple[int, int] | None = None,
    seed: int | None = None,
) -> nn.Module:
    """The one factory: a teacher-forced probe mapping (z, labels) -> logits (B, K).

    ``seed`` draws the initial weights from that seed, so a probe's numbers depend on its
    fit config alone, not on which probes the process built before it.
    """
    if seed is not None:
        torch.manual_seed(seed)
    if family == "linear":
        return LinearProbe(dim, num_bits)
    if family == "quadratic":
        return QuadraticProbe(dim, num_bits, rank)
    if family == "shared_quadratic":
        if groups is None:
            raise ValueError("shared_quadratic needs groups=(n_colors, n_shapes)")
        return SharedQuadraticProbe(dim, num_bits, tuple(groups), rank)
    if family == "dnn":
        return DNNProbe(dim, num_bits, hidden, layers)
    if family == "attention":
        return AttentionProbe(dim, num_bits, rank)
    raise ValueError(f"unknown probe family {family!r}; expected one of {FAMILIES}")


# -- training --------------------------------------------------------------------------
@dataclass
class FitConfig:
    """The optimisation protocol (docs/methods/probes.md A6), scaled by config, not by code."""

    epochs: int = 40  # passes over the training features
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # coupled L2, as in the reference (Adam, not AdamW)
    batch_size: int = 1024  # rows per optimisation step
    step_size: int = 8  # StepLR
    gamma: float = 0.2  # StepLR decay factor
    seed: int = 42  # seed of initialisation and shuffling
    device: str = "auto"  # auto = cuda when present
    standardize: bool = True  # per-channel (x - mean) / std with train statistics


@dataclass
class ProbeData:
    """Inputs (N, d) or (N, 1 + P, D), possibly a read-only memmap, and 0/1 targets (N, K).

    ``mean``/``std`` (D,) standardise every minibatch on the fly, so a memmap is never
    copied; they must come from the train split (``input_statistics``).
    """

    inputs: np.ndarray
    targets: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"ProbeData: {len(self.inputs)} inputs but {len(self.targets)} target rows"
            )


def input_statistics(
    inputs: np.ndarray, chunk: int = 4096, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every row (and token) of ``inputs``, read in chunks.

    A constant channel (a zero input, an always-on code bit) gets std 1 so it stays 0.
    """
    total = np.zeros(inputs.shape[-1], np.float64)
    squares = np.zeros_like(total)
    count = 0
    for start in range(0, len(inputs), chunk):
        block = np.asarray(inputs[start : start + chunk], dtype=np.float64)
        block = block.reshape(-1, block.shape[-1])
        total += block.sum(0)
        squares += (block**2).sum(0)
        count += len(block)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    std = np.where(std > eps, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass
class ProbeFit:
    """Val-selected result of one probe: bits per image on val/test at the best val epoch."""

    best_epoch: int
    val_bits: float
    test_bits: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    num_parameters: int = 0
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _batch(
    data: ProbeData, index: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``index`` as float32 tensors; sorted reads keep memmap access sequential-ish."""
    index = np.sort(index)
    inputs = np.asarray(data.inputs[index], dtype=np.float32)
    if data.mean is not None:
        inputs = (inputs - data.mean) / data.std
    inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    targets = torch.from_numpy(np.asarray(data.targets[index], dtype=np.float32))
    return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


@torch.no_grad()
def bits_per_image(
    probe: nn.Module, data: ProbeData, batch_size: int = 1024, device: str = "auto"
) -> float:
    """Mean over images of -log2 q(o|z) = sum_k BCE_k / ln 2 (teacher forced)."""
    device_ = resolve_device(device)
    probe.eval()
    total = 0.0
    for start in range(0, len(data.inputs), batch_size):
        inputs, targets = _batch(
            data, np.arange(start, min(start + batch_size, len(data.inputs))), device_
        )
        logits = probe(inputs, targets)
        total += F.binary_cross_entropy_with_logits(logits, targets, reduction="sum").item()
    return total / math.log(2) / len(data.inputs)


def fit_probe(
    probe: nn.Module,
    train: ProbeData,
    val: ProbeData,
    test: ProbeData,
    config: FitConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> ProbeFit:
    """The one training loop: Adam + StepLR on the BCE averaged over heads and images (the
    reference's reduction); keep the best-val epoch.

    ``on_epoch`` (a Tune report, say) receives each epoch's history row plus the selection
    so far: best_epoch, best_val_bits, best_test_bits.
    """
    device = resolve_device(config.device)
    probe.to(device)
    generator = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    started = time.perf_counter()
    best: ProbeFit | None = None
    history = []
    for epoch in range(config.epochs):
        probe.train()
        order = generator.permutation(len(train.inputs))
        seen, train_nats = 0, 0.0
        for start in range(0, len(order), config.batch_size):
            inputs, targets = _batch(train, order[start : start + config.batch_size], device)
            logits = probe(inputs, targets)
            # Mean over heads and images, as the reference: with a sum over K heads the
            # coupled L2 would be K times weaker relative to the data term.
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            train_nats += loss.item() * targets.numel()
            seen += len(targets)
        schedule.step()
        val_bits = bits_per_image(probe, val, config.batch_size, config.device)
        test_bits = bits_per_image(probe, test, config.batch_size, config.device)
        history.append(
            {
                "epoch": epoch,
                "train_bits": train_nats / seen / math.log(2),
                "val_bits": val_bits,
                "test_bits": test_bits,
            }
        )
        if best is None or val_bits < best.val_bits:
            state = {k: v.detach().cpu().clone() for k, v in probe.state_dict().items()}
            best = ProbeFit(epoch, val_bits, test_bits, state=state)
        if on_epoch is not None:
            on_epoch(
                {
                    **history[-1],
                    "best_epoch": best.best_epoch,
                    "best_val_bits": best.val_bits,
                    "best_test_bits": best.test_bits,
                }
            )
    assert best is not None, "fit_probe needs epochs >= 1"
    probe.load_state_dict(best.state)  # leave the probe at its selected epoch
    best.history = history
    best.seconds = time.perf_counter() - started
    best.num_parameters = sum(p.numel() for p in probe.parameters())
    return best


# -- binding information ---------------------------------------------------------------
def binding_scores(ce_o: float, ce_f: float, entropies: Mapping[str, float]) -> dict[str, float]:
    """B_O, B*, beta, beta* from test CEs (bits) and the split's exact H(O), H(O|F)."""
    h_o, h_o_given_f = entropies["H_O"], entropies["H_O_given_F"]
    b_o = h_o - ce_o
    b_star = h_o_given_f - (ce_o - ce_f)
    return {
        "CE_O": ce_o,
        "CE_F": ce_f,
        "B_O": b_o,
        "B_star": b_star,
        "beta": b_o / h_o,
        "beta_star": b_star / h_o_given_f,
        "H_O": h_o,
        "H_O_given_F": h_o_given_f,
    }


@dataclass
class BindingSplit:
    """One split of a representation: z (N, d) or tokens (N, 1 + P, D) with both codes."""

    inputs: np.ndarray
    object_code: np.ndarray  # (N, K) 0/1
    feature_code: np.ndarray  # (N, K_F) 0/1


@dataclass
class ProbeOptions:
    """Architecture options shared by every family (unused ones are ignored)."""

    rank: int = 16  # rank of the factorised (quadratic, attention) probes
    hidden: int = 256  # hidden width of the dnn probe
    layers: int = 4  # depth of the dnn probe


def measure_binding(
    splits: Mapping[str, BindingSplit],
    family: str,
    entropies: Mapping[str, float],
    *,
    groups: tuple[int, int] | None = None,
    options: ProbeOptions | None = None,
    fit: FitConfig | None = None,
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """Fit the O- and F-probes of one family on train, select on val, score test.

    ``entropies`` are the test split's exact {"H_O", "H_O_given_F"}. The F-probe of the
    shared family is a plain quadratic (sharing by colour/shape only makes sense for O).
    Returns (binding_scores plus fit details, the fitted probes {"O": ..., "F": ...}).
    """
    options, fit = options or ProbeOptions(), fit or FitConfig()
    for name in ("train", "val", "test"):
        if name not in splits:
            raise ValueError(f"measure_binding needs a {name!r} split, got {sorted(splits)}")
    mean, std = input_statistics(splits["train"].inputs) if fit.standardize else (None, None)
    dim = int(splits["train"].inputs.shape[-1])
    if family in TOKEN_FAMILIES and splits["train"].inputs.ndim != 3:
        raise ValueError(
            f"{family} probe reads tokens (N, 1 + P, D); got {splits['train'].inputs.shape}"
        )
    if family not in TOKEN_FAMILIES and splits["train"].inputs.ndim != 2:
        raise ValueError(f"{family} probe reads vectors (N, d); got {splits['train'].inputs.shape}")
    results: dict[str, Any] = {}
    probes: dict[str, nn.Module] = {}
    for target, column in (("O", "object_code"), ("F", "feature_code")):
        data = {n: ProbeData(s.inputs, getattr(s, column), mean, std) for n, s in splits.items()}
        num_bits = int(data["train"].targets.shape[1])
        target_family = "quadratic" if family == "shared_quadratic" and target == "F" else family
        probe = make_probe(
            target_family,
            dim,
            num_bits,
            rank=options.rank,
            hidden=options.hidden,
            layers=options.layers,
            groups=groups,
            seed=fit.seed,
        )
        result = fit_probe(probe, data["train"], data["val"], data["test"], fit)
        probes[target] = probe
        results[f"fit_{target}"] = {
            "best_epoch": result.best_epoch,
            "val_bits": result.val_bits,
            "test_bits": result.test_bits,
            "seconds": result.seconds,
            "num_parameters": result.num_parameters,
        }
    scores = binding_scores(results["fit_O"]["test_bits"], results["fit_F"]["test_bits"], entropies)
    return {**scores, **results, "family": family, "fit": asdict(fit)}, probes
