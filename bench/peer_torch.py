#!/usr/bin/env python3
"""peer_torch.py -- the plain PyTorch reference that bench/bench_peer.sh times against normlab.

The same GPT as normlab's defaults: byte vocabulary, learned positions, Pre-LN blocks
(x + attn(norm1(x)), x + mlp(norm2(x))), causal multi-head attention with a fused qkv Linear,
GELU (tanh) MLP, final norm, head tied to the token embedding, biases on every Linear.
DyT/Derf get a learnable scalar embedding scale initialised to sqrt(d); alpha0 = 1, Derf shift 0.
AdamW (betas 0.9/0.99, eps 1e-8, lr 1e-3 with linear warm-up and cosine decay, weight decay 0.1
on 2-D weights only), gradient clipping at 1.0.

  peer_torch.py --norm layernorm --layers 4 --threads 2 [--steps 12 --warmup 3] [--foreach]
  peer_torch.py --show-config

Prints one line: 'tok/s <rate> ms/step <ms> loss <last loss>'. Environment variables such as
OPENBLAS_CORETYPE and OMP_WAIT_POLICY are the caller's (they are read when the libraries load).
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DyT(nn.Module):
    def __init__(self, d, alpha0, erf=False, shift0=0.0):
        super().__init__()
        self.erf = erf
        self.alpha = nn.Parameter(torch.full((1,), float(alpha0)))
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        if erf:
            self.shift = nn.Parameter(torch.full((1,), float(shift0)))

    def forward(self, x):
        if self.erf:
            return self.weight * torch.erf(self.alpha * x + self.shift) + self.bias
        return self.weight * torch.tanh(self.alpha * x) + self.bias


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def make_norm(kind, d):
    if kind == "layernorm":
        return nn.LayerNorm(d, eps=1e-5)
    if kind == "rmsnorm":
        return RMSNorm(d)
    if kind == "dyt":
        return DyT(d, 1.0)
    if kind == "derf":
        return DyT(d, 1.0, erf=True, shift0=0.0)
    raise ValueError(kind)


class Block(nn.Module):
    def __init__(self, d, heads, dff, T, kind):
        super().__init__()
        self.h = heads
        self.norm1 = make_norm(kind, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = make_norm(kind, d)
        self.fc = nn.Linear(d, dff)
        self.fc_proj = nn.Linear(dff, d)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        hd = C // self.h
        q = q.view(B, T, self.h, hd).transpose(1, 2)
        k = k.view(B, T, self.h, hd).transpose(1, 2)
        v = v.view(B, T, self.h, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc_proj(F.gelu(self.fc(self.norm2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, d, heads, dff, T, kind, vocab=256, std=0.02):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(T, d)
        self.escale = nn.Parameter(torch.full((1,), math.sqrt(d))) if kind in ("dyt", "derf") else None
        self.blocks = nn.ModuleList(Block(d, heads, dff, T, kind) for _ in range(L))
        self.norm_f = make_norm(kind, d)
        self.register_buffer("pos", torch.arange(T), persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                out_proj = name.endswith("proj.weight")
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * L) if out_proj else std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        tok = self.wte(idx)
        if self.escale is not None:
            tok = tok * self.escale
        x = tok + self.wpe(self.pos[: idx.shape[1]])
        for b in self.blocks:
            x = b(x)
        logits = F.linear(self.norm_f(x), self.wte.weight)   # tied head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def lr_at(step, total, lr=1e-3, warmup=100, min_lr=1e-4):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, p)))


def batches(path, B, T, gen):
    data = None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    while True:
        if data is None:
            x = torch.randint(0, 256, (B, T + 1), generator=gen)
        else:
            start = torch.randint(0, data.numel() - T - 1, (B,), generator=gen)
            x = torch.stack([data[s: s + T + 1] for s in start.tolist()])
        yield x[:, :-1].contiguous(), x[:, 1:].contiguous()


def openblas_core():
    """The kernel set OpenBLAS picked (torch's BLAS_INFO=generic resolves to it on Debian)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return "%s, %d threads by default (%s)" % (lib.openblas_get_corename().decode(),
                                                   lib.openblas_get_num_threads(),
                                                   lib.openblas_get_config().decode())
    except (OSError, AttributeError):
        return "unknown (no libopenblas.so.0)"


def set_blas_threads(n):
    """torch.set_num_threads does not reach OpenBLAS's own pthread pool (it starts one thread per
    core); without this a '1-thread' run still multiplies matrices on every core."""
    try:
        import ctypes
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--norm", default="layernorm", choices=["layernorm", "rmsnorm", "dyt", "derf"])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dff", type=int, default=1024)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--data", default="")
    ap.add_argument("--foreach", action="store_true", help="AdamW's multi-tensor (foreach) path")
    ap.add_argument("--show-config", action="store_true")
    a = ap.parse_args()
    if a.show_config:
        print(torch.__version__)
        print(torch.__config__.show().strip())
        print(torch.__config__.parallel_info().strip())
        print("OpenBLAS core in use:", openblas_core())
        return 0

    torch.set_num_threads(a.threads)
    set_blas_threads(a.threads)
    torch.manual_seed(1)
    model = GPT(a.layers, a.d, a.heads, a.dff, a.seq, a.norm)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8, foreach=a.foreach)
    gen = torch.Generator().manual_seed(1)
    data = batches(a.data, a.batch, a.seq, gen)
    total = a.warmup + a.steps
    loss = None
    t0 = 0.0
    for step in range(total):
        if step == a.warmup:
            t0 = time.perf_counter()
        x, y = next(data)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, 1000)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    tps = a.steps * a.batch * a.seq / dt
    print(f"tok/s {tps:.1f} ms/step {1e3 * dt / a.steps:.1f} loss {loss.item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
