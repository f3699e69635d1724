"""Write test/fixtures/logreg-sklearn.json: scikit-learn LogisticRegression reference probabilities.

The TypeScript probe (src/fewshot/probes/logreg.ts) must give the same class probabilities within 1e-3
(test/fewshot/probes/logreg.test.ts). Each case holds raw features, labels, the L2 strength C and the
expected probabilities on held-out points. Features are standardised first (StandardScaler: population
std, a zero-variance column keeps scale 1), as the service does.

Settings: lbfgs, fit_intercept=True, L2, tol=1e-10 and max_iter=10000, so sklearn reaches the unique
optimum instead of stopping at its default tol=1e-4 (the probabilities at the optimum are what both
sides must agree on).

Binary case: scikit-learn >= 1.7 always fits two classes with one logit (binomial), whereas the service
is always multinomial (one weight row per class). With an L2 penalty the two are the same model when the
binomial C is twice the multinomial C (the multinomial optimum has W_0 = -W_1 = w/2, whose penalty is
|w|^2/4), so the binary case fits sklearn with 2*C and records C for the service.

Run: .venv/bin/python training/tools/write_logreg_fixtures.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "logreg-sklearn.json"


def make_case(name: str, *, seed: int, num_classes: int, dim: int, per_class: int, c: float,
              spread: float, constant_column: bool = False, num_test: int = 12) -> dict:
    """Gaussian clusters (one per class) with a per-column offset and scale, rounded to 6 decimals."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(num_classes, dim)) * 1.5
    labels = [f"class_{chr(ord('a') + k)}" for k in range(num_classes)]
    x = np.concatenate([centres[k] + spread * rng.normal(size=(per_class, dim)) for k in range(num_classes)])
    y = np.repeat(np.arange(num_classes), per_class)
    x_test = centres[rng.integers(0, num_classes, size=num_test)] + 1.5 * spread * rng.normal(size=(num_test, dim))
    # The same offset and scale per column for train and test, so standardisation matters.
    scale, offset = rng.uniform(0.5, 3.0, size=dim), rng.normal(0, 2.0, size=dim)
    x, x_test = np.round(x * scale + offset, 6), np.round(x_test * scale + offset, 6)
    if constant_column:
        x[:, 0] = 0.25
        x_test[:, 0] = 0.25
    scaler = StandardScaler().fit(x)
    binary = num_classes == 2
    model = LogisticRegression(C=2 * c if binary else c, solver="lbfgs", tol=1e-10, max_iter=10000)
    model.fit(scaler.transform(x), y)
    probs = model.predict_proba(scaler.transform(x_test))  # (n_test, K), columns in label order
    return {
        "name": name,
        "C": c,
        "labels": labels,
        "x": x.tolist(),
        "y": [labels[i] for i in y],
        "x_test": x_test.tolist(),
        "probabilities": np.round(probs, 8).tolist(),
    }


def main() -> None:
    cases = [
        dict(name="3 classes, D=8, 10 per class, C=1", seed=0, num_classes=3, dim=8, per_class=10, c=1.0, spread=1.0),
        dict(name="4 classes, D=16, 5 per class, C=0.1", seed=1, num_classes=4, dim=16, per_class=5, c=0.1, spread=1.2),
        dict(name="5 classes, D=32, 3 per class, C=10", seed=2, num_classes=5, dim=32, per_class=3, c=10.0, spread=0.8),
        dict(name="2 classes, D=6, 8 per class, C=1 (sklearn binomial C=2)", seed=3, num_classes=2, dim=6,
             per_class=8, c=1.0, spread=1.5),
        dict(name="3 classes, D=5, constant column, C=0.5", seed=4, num_classes=3, dim=5, per_class=6, c=0.5,
             spread=1.0, constant_column=True),
    ]
    out = [make_case(**spec) for spec in cases]
    doc = {
        "generated_by": "training/tools/write_logreg_fixtures.py (do not edit by hand)",
        "sklearn_version": sklearn.__version__,
        "settings": "StandardScaler then LogisticRegression(solver=lbfgs, penalty=l2, fit_intercept=True, "
                    "tol=1e-10, max_iter=10000); binary cases use sklearn C = 2*C",
        "cases": out,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(out)} cases)")


if __name__ == "__main__":
    main()
