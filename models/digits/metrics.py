"""Classification metrics (numpy only), shared by training, the release gate and tests."""

import numpy as np

DIGITS = 6  # metrics are recorded rounded to this many decimals


def confusion(y_true, y_pred, n_classes):
    """counts[t, p]: examples of class t predicted as p."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def accuracy(y_true, y_pred):
    """Fraction of exact matches (0.0 for no examples)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def per_class(y_true, y_pred, labels):
    """{label: {precision, recall, f1, support}}; 0.0 where a ratio is undefined."""
    counts = confusion(y_true, y_pred, len(labels))
    out = {}
    for c, label in enumerate(labels):
        hits, predicted, actual = counts[c, c], counts[:, c].sum(), counts[c, :].sum()
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": round(float(precision), DIGITS),
                      "recall": round(float(recall), DIGITS),
                      "f1": round(float(f1), DIGITS), "support": int(actual)}
    return out


def macro_f1(y_true, y_pred, n_classes):
    """Unweighted mean of the per-class F1 scores (unrounded)."""
    counts = confusion(y_true, y_pred, n_classes)
    hits = np.diag(counts).astype(np.float64)
    denominator = counts.sum(axis=0) + counts.sum(axis=1)
    f1 = np.divide(2 * hits, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return float(f1.mean())
