# PyTorch CPU peer for bench/networks.mjs: a plain-torch UNet2DModel (diffusers' architecture, the subset
# ddpm-wasm implements) that loads our safetensors, driven over stdin/stdout one JSON line per command so
# that the node process can interleave its calls with ours and onnxruntime's:
#   {"cmd": "load", "config": {...}, "weights": path, "threads": T}        -> {"ok": true, "torch": version}
#   {"cmd": "forward", "N": N, "input": path, "timesteps": [...], "output": path}  (writes the output, f32)
#   {"cmd": "time_forward", "N": N, "reps": R}     -> {"seconds": per call}   (on the last forward's input)
#   {"cmd": "train_setup", "B": B}                 ; {"cmd": "time_train", "reps": R} -> {"seconds": per step}
# A train step is what ddpm-wasm's Trainer.trainStep does: q_sample, forward, MSE on ε, backward,
# clip_grad_norm_(1), AdamW (torch defaults, lr 1e-4), an EMA update (decay 0.9999).
# Needs only torch (Debian python3-torch); safetensors is parsed here (a JSON header and raw tensors).
import json
import math
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == '__metadata__':
            continue
        assert meta['dtype'] == 'F32', meta['dtype']
        a, b = meta['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[base + a:base + b]), dtype=torch.float32).reshape(meta['shape'])
    return out


def timestep_embedding(t, dim, flip, shift):
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - shift)
    arg = t.float()[:, None] * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


class Resnet(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps, scale):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.scale = scale

    def forward(self, x, temb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(temb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        s = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return (s + h) / self.scale


class Attention(nn.Module):
    def __init__(self, c, head_dim, groups, eps, scale):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=eps)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])
        self.heads = c // head_dim
        self.scale = scale

    def forward(self, x):
        n, c, hh, ww = x.shape
        h = self.group_norm(x).view(n, c, hh * ww).transpose(1, 2)  # (N, P, C)
        split = lambda t: t.view(n, -1, self.heads, c // self.heads).transpose(1, 2)  # (N, heads, P, d)
        q, k, v = split(self.to_q(h)), split(self.to_k(h)), split(self.to_v(h))
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)
        o = (w @ v).transpose(1, 2).reshape(n, hh * ww, c)
        o = self.to_out[0](o).transpose(1, 2).reshape(n, c, hh, ww)
        return (o + x) / self.scale


class Block(nn.Module):
    pass


class UNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        boc = c['block_out_channels']
        c0, e = boc[0], 4 * boc[0]
        g, eps = c['norm_num_groups'], c['norm_eps']
        hd = lambda ch: c.get('attention_head_dim') or ch
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = nn.Linear(c0, e)
        self.time_embedding.linear_2 = nn.Linear(e, e)
        self.conv_in = nn.Conv2d(c['in_channels'], c0, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        ch = c0
        skip_ch = [c0]
        for i, t in enumerate(c['down_block_types']):
            b = Block()
            b.resnets = nn.ModuleList()
            b.attentions = nn.ModuleList() if t == 'AttnDownBlock2D' else None
            for _ in range(c['layers_per_block']):
                b.resnets.append(Resnet(ch, boc[i], e, g, eps, 1))
                ch = boc[i]
                if b.attentions is not None:
                    b.attentions.append(Attention(ch, hd(ch), g, eps, 1))
                skip_ch.append(ch)
            if i != len(boc) - 1:
                b.downsamplers = nn.ModuleList([nn.Module()])
                pad = c['downsample_padding']
                b.downsamplers[0].conv = nn.Conv2d(ch, ch, 3, stride=2, padding=pad)
                b.pad0 = pad == 0
                skip_ch.append(ch)
            else:
                b.downsamplers = None
            self.down_blocks.append(b)
        s = c['mid_block_scale_factor']
        self.mid_block = nn.Module()
        self.mid_block.resnets = nn.ModuleList([Resnet(ch, ch, e, g, eps, s), Resnet(ch, ch, e, g, eps, s)])
        self.mid_block.attentions = nn.ModuleList([Attention(ch, hd(ch), g, eps, s)])
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        for i, t in enumerate(c['up_block_types']):
            b = Block()
            b.resnets = nn.ModuleList()
            b.attentions = nn.ModuleList() if t == 'AttnUpBlock2D' else None
            for _ in range(c['layers_per_block'] + 1):
                b.resnets.append(Resnet(ch + skip_ch.pop(), rev[i], e, g, eps, 1))
                ch = rev[i]
                if b.attentions is not None:
                    b.attentions.append(Attention(ch, hd(ch), g, eps, 1))
            if i != len(boc) - 1:
                b.upsamplers = nn.ModuleList([nn.Module()])
                b.upsamplers[0].conv = nn.Conv2d(ch, ch, 3, padding=1)
            else:
                b.upsamplers = None
            self.up_blocks.append(b)
        self.conv_norm_out = nn.GroupNorm(g, ch, eps=eps)
        self.conv_out = nn.Conv2d(ch, c['out_channels'], 3, padding=1)

    def forward(self, x, t):
        c = self.c
        emb = timestep_embedding(t, c['block_out_channels'][0], c['flip_sin_to_cos'], c['freq_shift'])
        emb = self.time_embedding.linear_2(F.silu(self.time_embedding.linear_1(emb)))
        ta = F.silu(emb)
        if c.get('center_input_sample'):
            x = 2 * x - 1
        h = self.conv_in(x)
        skips = [h]
        for b in self.down_blocks:
            for l, r in enumerate(b.resnets):
                h = r(h, ta)
                if b.attentions is not None:
                    h = b.attentions[l](h)
                skips.append(h)
            if b.downsamplers is not None:
                if b.pad0:
                    h = F.pad(h, (0, 1, 0, 1))
                h = b.downsamplers[0].conv(h)
                skips.append(h)
        h = self.mid_block.resnets[0](h, ta)
        h = self.mid_block.attentions[0](h)
        h = self.mid_block.resnets[1](h, ta)
        for b in self.up_blocks:
            for l, r in enumerate(b.resnets):
                h = r(torch.cat([h, skips.pop()], dim=1), ta)
                if b.attentions is not None:
                    h = b.attentions[l](h)
            if b.upsamplers is not None:
                h = b.upsamplers[0].conv(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def main():
    model = None
    interop_set = False
    x = t = None
    train = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd['cmd']
        reply = {'ok': True}
        if op == 'load':
            torch.set_num_threads(cmd['threads'])
            if not interop_set:  # allowed once per process, before any parallel work
                torch.set_num_interop_threads(1)
                interop_set = True
            model = UNet(cmd['config'])
            missing, unexpected = model.load_state_dict(read_safetensors(cmd['weights']), strict=True), None
            model.eval()
            reply['torch'] = torch.__version__
            reply['threads'] = torch.get_num_threads()
        elif op == 'forward':
            c = model.c
            n = cmd['N']
            with open(cmd['input'], 'rb') as f:
                x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, c['in_channels'], c['sample_size'], c['sample_size'])
            t = torch.tensor(cmd['timesteps'], dtype=torch.float32)
            with torch.no_grad():
                y = model(x, t)
            with open(cmd['output'], 'wb') as f:
                f.write(y.contiguous().numpy().tobytes())
        elif op == 'time_forward':
            with torch.no_grad():
                t0 = time.perf_counter()
                for _ in range(cmd['reps']):
                    model(x, t)
                reply['seconds'] = (time.perf_counter() - t0) / cmd['reps']
        elif op == 'train_setup':
            c = model.c
            b = cmd['B']
            model.train()
            gen = torch.Generator().manual_seed(0)
            data = torch.rand(4 * b, c['in_channels'], c['sample_size'], c['sample_size'], generator=gen) * 2 - 1
            betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
            ab = torch.cumprod(1 - betas, 0).float()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            ema = [p.detach().clone() for p in model.parameters()]
            train = (data, ab, opt, ema, gen, b)
        elif op == 'time_train':
            data, ab, opt, ema, gen, b = train
            params = list(model.parameters())
            t0 = time.perf_counter()
            for _ in range(cmd['reps']):
                idx = torch.randint(0, data.shape[0], (b,), generator=gen)
                x0 = data[idx]
                ts = torch.randint(0, 1000, (b,), generator=gen)
                eps = torch.randn(x0.shape, generator=gen)
                a = ab[ts][:, None, None, None]
                xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
                loss = F.mse_loss(model(xt, ts), eps)
                opt.zero_grad(set_to_none=False)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                with torch.no_grad():
                    torch._foreach_mul_(ema, 0.9999)
                    torch._foreach_add_(ema, params, alpha=1 - 0.9999)
            reply['seconds'] = (time.perf_counter() - t0) / cmd['reps']
            reply['loss'] = float(loss)
        else:
            reply = {'ok': False, 'error': f'unknown command {op}'}
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
