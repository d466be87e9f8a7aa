"""Networks of the multi-domain expression family: one generator for all seven emotions, one discriminator.

After StarGAN (Choi et al. 2018) with GANimation's attention output (Pumarola et al. 2018), sized for
48x48 grayscale faces:

* :class:`ExpressionGenerator` ``G(x, c)``: the target emotion ``c`` enters as seven constant maps (its
  one-hot code) concatenated to the face (computed as a per-face shift of the stem's normalised
  features: :class:`ConditionedStem`), then ``c7s1-ngf, d2ngf, d4ngf`` (4x4 stride-2 downsamplings),
  ``n_blocks`` residual blocks at H/4, two upsamplings by *resize-convolution* (nearest x2, then a 3x3
  conv: every output pixel gets the same number of kernel taps, so no checkerboard, which strided
  transposed convolutions print on faces; Odena et al. 2016; computed at the low resolution by
  :class:`~feraug.nets.gan_nets.ResizeConv2d`) and a 7x7 head. The output is an edit of
  the input, never a redrawn face:

  - ``residual``: ``clamp(x + Δ, -1, 1)`` with the head zero-initialised, so G starts as the exact
    identity and learns only what differs (US-GAN's input-to-output skip). A ``tanh(x + Δ)`` skip would
    not copy the face at ``Δ = 0`` (``tanh(1) = 0.76``: it would first have to learn ``atanh``);
  - ``attention``: ``A·x + (1 − A)·C`` with ``A = sigmoid(·)`` the per-pixel share of the input kept and
    ``C = tanh(·)`` the colour drawn where it is not (GANimation). ``A`` starts at ``sigmoid(3) ≈ 0.95``
    and ``C`` at mid-gray (head weights zero), i.e. near the identity; the model's mask regularisers keep
    ``A`` from saturating at 1 (copying the input). :meth:`ExpressionGenerator.forward_with_mask`
    returns ``A`` too: ``1 − A`` shows what changed.
  - ``warp``: the face's own pixels moved along a smooth displacement field, nothing redrawn. The field
    is predicted at H/4 (after the residual blocks; no decoder), at most ``max_shift`` pixels per axis
    (``max_shift · tanh``), bilinearly up-sampled and applied by bilinear resampling with border
    padding. An expression is largely a change of shape (mouth corners, lips, brows, nose), and a
    field that smooth cannot print a texture: the streaks and lattices that residual generators use to
    satisfy an emotion classifier are out of its reach. The head starts at zero, so G starts as the
    identity (bilinear resampling at the pixel centres returns the face).

  Instance norm without affine or running statistics (CycleGAN's, per face: train and eval agree).
* :class:`ExpressionDiscriminator` ``D(x) -> (scores, logits)``: ``d_layers`` 4x4 stride-2 convs with
  LeakyReLU(0.2) and no normalisation (StarGAN), optionally spectral-normalised (Miyato et al. 2018),
  then two heads on the same trunk: a 3x3 conv to one real/fake score per patch ``[N, 1, s, s]``, and a
  conv over the whole ``s x s`` map to seven emotion logits ``[N, 7]`` (StarGAN's domain classifier).
  With ``per_emotion`` the score head has one output per emotion ``[N, 7, s, s]`` (StarGAN v2's
  multi-task discriminator): each face is judged real or fake *as a face of its emotion* (a real face
  by its label's output, a translation by its target's), so a fake must look like a real Disgust face
  to pass as Disgust, not only carry whatever the emotion head reads as Disgust.

Both carry ``arch`` (their constructor arguments and registry ``name``) so a checkpoint rebuilds them.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812 - the universal PyTorch idiom
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from feraug.data.augment import displace
from feraug.nets.gan_nets import HeadConv2d, ResidualBlock, ResizeConv2d, instance_norm, norm_layer

ExpressionOutput = Literal["residual", "attention", "warp"]
N_EMOTIONS = 7
MASK_INIT_LOGIT = 3.0  # A = sigmoid(3) ≈ 0.95 at init: the attention generator starts near the identity


def target_codes(c: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Target emotions as ``float [N, n_classes]`` codes in ``like``'s dtype: ``c`` is ``long [N]`` labels
    (one-hot encoded here) or already ``[N, n_classes]`` codes."""
    if c.dim() == 1:
        c = F.one_hot(c.long(), n_classes)
    if c.shape != (like.shape[0], n_classes):
        raise ValueError(f"target codes must be [{like.shape[0]}] labels or [{like.shape[0]}, {n_classes}] codes, "
                         f"got {tuple(c.shape)}")  # fmt: skip
    return c.to(device=like.device, dtype=like.dtype)


def target_maps(c: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """The codes as constant maps ``[N, n_classes, H, W]``: what StarGAN concatenates to the face."""
    return target_codes(c, n_classes, like)[:, :, None, None].expand(-1, -1, *like.shape[-2:])


class ConditionedStem(nn.Module):
    """The 7x7 stem over ``[face; constant target maps]`` (reflection padded) and its instance norm, computed
    without the maps, with the target's share added *after* the norm.

    Its weight has the layout of a conv over ``1 + n_classes`` channels, but a reflection-padded constant
    map stays constant, so its share of every output pixel is ``code · Σ_taps W[:, k]``: a per-face,
    per-channel constant. Instance norm subtracts exactly such a constant, so added before the norm (the
    literal concatenation) the target would be erased and ``G(x, c)`` would not depend on ``c`` at all
    (StarGAN's zero padding leaves only a border pattern of it); added after, it shifts the normalised
    features by the target's code. Only the face's channel is convolved (on CPU as one im2col GEMM, like
    :class:`~feraug.nets.gan_nets.StemConv2d`), 8x fewer multiply-adds than the concatenation.
    """

    def __init__(self, n_classes: int, channels: int, kernel: int = 7) -> None:
        super().__init__()
        conv = nn.Conv2d(1 + n_classes, channels, kernel)  # PyTorch's default init for that layout
        self.weight, self.bias = conv.weight, conv.bias
        self.n_classes, self.kernel = n_classes, kernel

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        p = self.kernel // 2
        xp = F.pad(x, (p, p, p, p), mode="reflect")
        w_face = self.weight[:, :1]
        if x.device.type == "cpu":
            y = torch.matmul(w_face.reshape(w_face.shape[0], -1), F.unfold(xp, self.kernel)).view(
                x.shape[0], -1, *x.shape[-2:])  # fmt: skip
        else:
            y = F.conv2d(xp, w_face)
        y = instance_norm(y + self.bias[:, None, None])
        shift = target_codes(c, self.n_classes, x) @ self.weight[:, 1:].sum((2, 3)).t()
        return y + shift[:, :, None, None]


class ExpressionGenerator(nn.Module):
    """``G(x, c)``: faces ``float [N, 1, H, W]`` in [-1, 1] and target emotions ``c`` -> edited faces.

    H and W must be multiples of 4. ``forward`` returns the face; ``forward_with_mask`` also ``A``
    (``[N, 1, H, W]`` in [0, 1]; ``None`` for residual and warp output); for warp output
    ``forward_with_field`` returns the displacement field instead (``[N, 2, H, W]``, pixels; also
    :meth:`displacement`).
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 6, output: ExpressionOutput = "attention",
                 n_classes: int = N_EMOTIONS, max_shift: float = 3.0) -> None:  # fmt: skip
        super().__init__()
        if ngf < 1 or n_blocks < 0 or n_classes < 2 or max_shift <= 0:
            raise ValueError(f"need ngf >= 1, n_blocks >= 0, n_classes >= 2 and max_shift > 0, got ngf={ngf}, "
                             f"n_blocks={n_blocks}, n_classes={n_classes}, max_shift={max_shift}")  # fmt: skip
        if output not in ("residual", "attention", "warp"):
            raise ValueError(f"unknown expression generator output {output!r}: expected residual, attention or warp")
        self.arch: dict[str, Any] = {"name": "expression-generator", "ngf": ngf, "n_blocks": n_blocks,
                                     "output": output, "n_classes": n_classes}  # fmt: skip
        if output == "warp":
            self.arch["max_shift"] = max_shift
        self.output, self.n_classes, self.max_shift = output, n_classes, max_shift
        self.stem = ConditionedStem(n_classes, ngf, 7)  # includes the stem's instance norm
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 4, stride=2, padding=1),
                       norm_layer("instance", ngf * mult * 2), nn.ReLU(inplace=True)]  # fmt: skip
        layers += [ResidualBlock(ngf * 4, "instance") for _ in range(n_blocks)]
        self._register_load_state_dict_pre_hook(self._refuse_unconditioned)
        self.head: nn.Conv2d
        if output == "warp":  # the field from the H/4 features: no decoder
            self.body = nn.Sequential(*layers)
            self.head = nn.Conv2d(ngf * 4, 2, 3, padding=1)
        else:
            for mult in (4, 2):  # resize-convolution: nearest x2, then a 3x3 conv (computed at low resolution)
                layers += [ResizeConv2d(ngf * mult, ngf * mult // 2), norm_layer("instance", ngf * mult // 2),
                           nn.ReLU(inplace=True)]  # fmt: skip
            self.body = nn.Sequential(*layers, nn.ReflectionPad2d(3))
            # one output channel: HeadConv2d's GEMM + fold (~2x faster on CPU); two: the library conv is faster
            self.head = HeadConv2d(ngf, 1, 7) if output == "residual" else nn.Conv2d(ngf, 2, 7)
        nn.init.zeros_(self.head.weight)  # starts as (near) the identity: see the module docstring
        nn.init.zeros_(self.head.bias)
        if output == "attention":
            with torch.no_grad():
                self.head.bias[1] = MASK_INIT_LOGIT

    @staticmethod
    def _refuse_unconditioned(state: dict[str, Any], prefix: str, *_: Any) -> None:
        """Checkpoints of the earlier layout (the stem's norm first in ``body``, so ``body.2`` was a conv) came
        from a generator whose instance norm erased the target code: it made the same edit for every emotion."""
        if f"{prefix}body.2.weight" in state:
            raise ValueError("this expression generator checkpoint was written by an earlier feraug whose generator "
                             "ignored the target emotion (its stem's instance norm erased the target code), so it "
                             "makes the same edit for every emotion: train it again")  # fmt: skip

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x, c)[0]

    @staticmethod
    def _check_size(x: torch.Tensor) -> None:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input must have H and W divisible by 4, got {tuple(x.shape[-2:])}")

    def forward_with_mask(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The edited faces and, for attention output, the mask ``A`` (share of the input kept per pixel)."""
        self._check_size(x)
        if self.output == "warp":
            return self.forward_with_field(x, c)[0], None
        h = self.head(self.body(self.stem(x, c)))
        if self.output == "residual":
            return (x + h).clamp(-1.0, 1.0), None
        color, mask = torch.tanh(h[:, :1]), torch.sigmoid(h[:, 1:])
        return mask * x + (1.0 - mask) * color, mask

    def forward_with_field(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp output only: the edited faces and the displacement field that made them."""
        field = self.displacement(x, c)
        return displace(x, field), field

    def displacement(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Warp output only: the field ``[N, 2, H, W]`` (x then y, pixels) that moves ``x`` toward emotion ``c``."""
        if self.output != "warp":
            raise ValueError(f"a displacement field exists only for warp output, not {self.output!r}")
        self._check_size(x)
        field = self.max_shift * torch.tanh(self.head(self.body(self.stem(x, c))).float())
        return F.interpolate(field, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)


class ExpressionDiscriminator(nn.Module):
    """``D(x) -> (scores [N, 1 or n_classes, s, s], logits [N, n_classes])`` with ``s = size / 2**d_layers``
    (``n_classes`` score maps with ``per_emotion``: pick each face's with :func:`emotion_scores`)."""

    def __init__(self, ndf: int = 64, d_layers: int = 4, size: int = 48, spectral_norm: bool = True,
                 n_classes: int = N_EMOTIONS, per_emotion: bool = False) -> None:  # fmt: skip
        super().__init__()
        if ndf < 1 or d_layers < 1 or n_classes < 2:
            raise ValueError(f"need ndf >= 1, d_layers >= 1 and n_classes >= 2, got ndf={ndf}, d_layers={d_layers}, "
                             f"n_classes={n_classes}")  # fmt: skip
        if size % 2**d_layers:
            raise ValueError(f"the discriminator halves the face {d_layers} times: size must be divisible by "
                             f"{2**d_layers}, got {size}")  # fmt: skip
        self.arch: dict[str, Any] = {"name": "expression-discriminator", "ndf": ndf, "d_layers": d_layers,
                                     "size": size, "spectral_norm": spectral_norm, "n_classes": n_classes}  # fmt: skip
        if per_emotion:  # only then: checkpoints of the shared head keep the arch they were written with
            self.arch["per_emotion"] = True
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(d_layers):
            c_out = ndf * min(2**i, 8)
            layers += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        side = size // 2**d_layers
        self.trunk = nn.Sequential(*layers)
        self.score = sn(nn.Conv2d(c_in, n_classes if per_emotion else 1, 3, padding=1))
        self.classify = sn(nn.Conv2d(c_in, n_classes, side))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.score(h), self.classify(h).flatten(1)


def emotion_scores(scores: torch.Tensor, emotions: torch.Tensor) -> torch.Tensor:
    """Each face's real/fake map ``[N, 1, s, s]``: the one for its emotion (``emotions``, ``long [N]``) when D
    scores per emotion, else D's single map."""
    if scores.shape[1] == 1:
        return scores
    index = emotions.to(scores.device).view(-1, 1, 1, 1).expand(-1, 1, *scores.shape[-2:])
    return scores.gather(1, index)
