"""Plain numpy implementation of the classifier's maths (the yardstick for the kernels).

For a batch of raw pixel values x (levels 0..max, already validated):

    q      = floor(x + 0.5)                       integer levels, computed in float64
    acc1   = q @ W1                               exact: integers below 2**24 (see artifact)
    h      = max(acc1 * s1 + b1, 0)               float32, one rounding per operation
    logits = (h @ W2) * s2 + b2                   float32
    p      = softmax(logits)                      computed in float64, returned as float32

W1, W2 are the int8 weights; s1, s2 their per-output-channel scales; b1, b2
float32 biases; the input preprocessing is folded into W1 and b1 by training.
The Cython kernels compute the same operations; `acc1` and `h` match them bit for
bit, the rest to float32 rounding (summation order differs).
"""

import numpy as np

from inference import artifact


def quantize_input(x):
    """Rounds validated pixel values to integer levels (halves up), as float32."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.float32)


class ReferenceModel:
    """The maths above over one artifact's weights ({tensor name: array})."""

    def __init__(self, weights):
        def layer(name):
            def get(part):
                return np.asarray(weights[artifact.tensor_name(name, part)])
            return (get(artifact.WEIGHT).astype(np.float32), get(artifact.SCALE).astype(np.float32),
                    get(artifact.BIAS).astype(np.float32))
        self._w1, self._s1, self._b1 = layer("dense1")
        self._w2, self._s2, self._b2 = layer("dense2")

    def layer1_accumulators(self, x):
        """The exact integer sums q @ W1 of the first layer, as float32."""
        return quantize_input(x) @ self._w1

    def logits(self, x):
        """Pre-softmax scores, float32 (N, n_classes)."""
        hidden = np.maximum(self.layer1_accumulators(x) * self._s1 + self._b1, np.float32(0))
        return (hidden @ self._w2) * self._s2 + self._b2

    def predict_proba(self, x):
        """Class probabilities, float32 (N, n_classes)."""
        return softmax(self.logits(x))


def softmax(z):
    """Row-wise softmax in float64, returned as float32."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
