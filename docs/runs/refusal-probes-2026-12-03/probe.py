"""LOMO logistic probes on SmolLM2 features, alone and with the committed MiniLM features."""
import sys, numpy as np
sys.path.insert(0, "src")  # run from the repository root
from ccai.evaluation.refusal_classifier import scores, CLASSES
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
d = np.load("/tmp/refusal-probes/lm.npz"); F, y, models = d["F"], d["y"], d["model"]
def lomo(X, C):
    pred = np.empty(len(y), dtype=object); P = np.zeros((len(y), 3))
    for held in sorted(set(models)):
        tr = models != held
        sc = StandardScaler().fit(X[tr])
        clf = LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(sc.transform(X[tr]), y[tr])
        P[~tr] = clf.predict_proba(sc.transform(X[~tr]))
    pred = [clf.classes_[k] for k in P.argmax(1)]
    s = scores(list(y), pred); return s, P
for name, X in [("last L16", F[:, 1, 0]), ("last L24", F[:, 2, 0]), ("last L30", F[:, 3, 0]), ("mean L16", F[:, 1, 1]), ("mean L24", F[:, 2, 1]),
                ("last L16+24", F[:, 1:3, 0].reshape(len(y), -1)), ("last+mean L16,24", F[:, 1:3].reshape(len(y), -1))]:
    for C in [0.01, 0.05]:
        s, _ = lomo(X, C)
        print(f"{name:18s} C={C}: macro {s['macro_f1']:.4f} acc {s['accuracy']:.3f}", {c: round(v['f1'], 3) for c, v in s['per_class'].items()}, flush=True)
