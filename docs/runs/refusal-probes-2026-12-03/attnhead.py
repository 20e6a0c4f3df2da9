"""LOMO experiment: attention-pooling heads over frozen MiniLM token states."""
import sys, time, json, numpy as np, torch, torch.nn as nn
sys.path.insert(0, "src")  # run from the repository root
from ccai.evaluation.refusal_classifier import scores, CLASSES
torch.set_num_threads(2)
d = np.load(sys.argv[1]); H, M, T, y, models = d["H"], d["M"], d["T"], d["y"], d["model"]
Y = np.array([CLASSES.index(c) for c in y])
cfg = dict(heads=4, hidden=128, epochs=30, lr=1e-3, wd=1e-2, drop=0.2, seed=0, bs=32, layer=0)
for a in sys.argv[2:]:
    k, v = a.split("="); cfg[k] = type(cfg[k])(v)
print(cfg, flush=True)

class Head(nn.Module):
    def __init__(s, h, hid, drop):
        super().__init__()
        s.norm = nn.LayerNorm(384); s.score = nn.Linear(384, h)
        s.mlp = nn.Sequential(nn.Dropout(drop), nn.Linear(384 * (h + 3), hid), nn.GELU(), nn.Dropout(drop), nn.Linear(hid, 3))
    def forward(s, x, m, t):
        x = s.norm(x)
        reply = (m > 0) & (t > 0); prompt = (m > 0) & (t == 0)
        sc = s.score(x).masked_fill(~reply[..., None], -1e4).softmax(1)  # B L h
        pooled = torch.einsum("blh,bld->bhd", sc, x).flatten(1)
        rmean = (x * reply[..., None]).sum(1) / reply.sum(1, keepdim=True).clamp(min=1)
        pmean = (x * prompt[..., None]).sum(1) / prompt.sum(1, keepdim=True).clamp(min=1)
        return s.mlp(torch.cat([pooled, rmean, pmean, x[:, 0]], 1))

def batch(idx):
    L = int(M[idx].sum(1).max())
    return (torch.from_numpy(H[idx, :L].astype(np.float32)), torch.from_numpy(M[idx, :L].astype(np.int64)), torch.from_numpy(T[idx, :L].astype(np.int64)))

def train(tr):
    torch.manual_seed(cfg["seed"]); rng = np.random.default_rng(cfg["seed"])
    net = Head(cfg["heads"], cfg["hidden"], cfg["drop"])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    counts = np.bincount(Y[tr], minlength=3); w = torch.tensor(len(tr) / (3 * counts), dtype=torch.float32)
    steps = cfg["epochs"] * int(np.ceil(len(tr) / cfg["bs"])); sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=steps)
    lossf = nn.CrossEntropyLoss(weight=w)
    for ep in range(cfg["epochs"]):
        net.train(); perm = rng.permutation(tr)
        for s in range(0, len(perm), cfg["bs"]):
            idx = np.sort(perm[s:s + cfg["bs"]]); x, m, t = batch(idx)
            loss = lossf(net(x, m, t), torch.from_numpy(Y[idx])); opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    return net

def predict(net, idx):
    net.eval(); out = []
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            x, m, t = batch(idx[s:s + 64]); out.append(net(x, m, t).softmax(1).numpy())
    return np.vstack(out)

t0 = time.time(); P = np.zeros((len(Y), 3))
for held in sorted(set(models)):
    tr = np.flatnonzero(models != held); te = np.flatnonzero(models == held)
    P[te] = predict(train(tr), te)
    print(held, round(scores(list(y[te]), [CLASSES[k] for k in P[te].argmax(1)])["macro_f1"], 3), round(time.time() - t0), flush=True)
s = scores(list(y), [CLASSES[k] for k in P.argmax(1)])
print("POOLED macro", round(s["macro_f1"], 4), "acc", round(s["accuracy"], 4), {c: round(v["f1"], 3) for c, v in s["per_class"].items()})
np.save("/tmp/refusal-probes/P_%s.npy" % "_".join(f"{k}{v}" for k, v in cfg.items()), P)
