"""The public API: load a model artifact, classify batches of 8x8 digit images.

    from inference.model import Model

    model = Model.load("digits.model", expected_version=None)
    probabilities = model.predict_proba(batch)   # (N, 10) float32
    best = model.topk(batch, k=3)                # [[(label, probability), ...], ...]
    model.version, model.metadata

Everything the model needs (input shape, value range, labels, weights) comes
from the artifact; callers never configure it. How awkward inputs are treated
is documented in inference/README.md and pinned by inference/tests.
"""

import copy
import numbers

import numpy as np

from inference import _kernels, artifact, errors

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


class Model:
    """A loaded, verified classifier. Safe to share between threads (no mutable state)."""

    def __init__(self, loaded, spec, source):
        """Use `Model.load`; the constructor's arguments are internal."""
        self._version = loaded.version
        self._labels = spec.labels
        self._n_inputs = spec.n_inputs
        self._n_classes = len(spec.labels)
        self._image_shape = spec.image_shape
        self._max_level = spec.max_level
        self._source = source
        network = _network(spec)
        self._forward_f32 = network.forward_f32
        self._forward_f64 = network.forward_f64
        self._network = network
        header = loaded.header
        self._metadata = {
            "version": loaded.version,
            "model": header.get("model", {}),
            "input": header["input"],
            "output": header["output"],
            "labels": list(spec.labels),
            "metrics": header["metrics"],
            "quantization": header.get("quantization", {}),
            "preprocessing": header.get("preprocessing", {}),
            "training": header.get("training", {}),
            "formats": {
                "artifact_format_version": artifact.FORMAT_VERSION,
                "output_schema_version": header["output"]["schema_version"],
            },
        }

    @classmethod
    def load(cls, path, expected_version=None):
        """Loads and verifies the artifact at `path`.

        Checks the magic bytes, format version, embedded sha256, header and
        tensor bounds, and the classifier schema; raises an `errors.ArtifactError`
        subclass naming the problem. With `expected_version` (a sha256 hex
        string), refuses any other model with `errors.VersionMismatchError`.
        """
        loaded = artifact.read(path)
        if expected_version is not None and loaded.version != expected_version:
            raise errors.VersionMismatchError(
                f"{path} is model version {loaded.version}, but version {expected_version} "
                "was expected. Deploy the expected artifact or update the pinned version.")
        return cls(loaded, artifact.classifier_spec(loaded, source=str(path)), str(path))

    @property
    def version(self):
        """The model version id: sha256 (hex) of the artifact file."""
        return self._version

    @property
    def labels(self):
        """Class labels, in the order of the probability columns."""
        return self._labels

    @property
    def metadata(self):
        """A copy of the model's description: input/output specs, labels, metrics, formats."""
        return copy.deepcopy(self._metadata)

    def predict_proba(self, batch):
        """Class probabilities for each row of `batch`: a new (N, n_classes) float32 array.

        `batch`: an array-like of integer or float pixel levels, shape (N, 64)
        or (N, 8, 8); values are rounded to the nearest level (halves up).
        Raises `errors.InputError` for anything else (see inference/README.md).
        """
        x = batch
        # The fast path takes the caller's array as it is (any strides, no copy).
        # Exact type: subclasses (masked arrays, matrices) take the slow path.
        if type(x) is not np.ndarray or (  # pylint: disable=unidiomatic-typecheck
                x.ndim != 2 or x.shape[1] != self._n_inputs
                or (x.dtype is not _F64 and x.dtype is not _F32)):
            x = self._coerce(batch)
        out = np.empty((x.shape[0], self._n_classes), dtype=np.float32)
        bad = (self._forward_f64 if x.dtype is _F64 else self._forward_f32)(x, out)
        if bad >= 0:
            raise self._invalid_value(x, bad)
        return out

    def topk(self, batch, k=1):
        """The k most probable labels of each row: [[(label, probability), ...], ...].

        Sorted by probability, highest first; equal probabilities keep label order.
        """
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) \
                or not 1 <= k <= self._n_classes:
            raise errors.InputError(f"k must be an integer from 1 to {self._n_classes}, got {k!r}.")
        proba = self.predict_proba(batch)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :int(k)]
        labels = self._labels
        return [[(labels[c], float(row[c])) for c in best] for row, best in zip(proba, order)]

    def __repr__(self):
        return f"Model(version={self._version[:12]}..., source={self._source!r})"

    def _coerce(self, batch):
        """The slow path: any array-like to a 2-D native float32/float64 array, or InputError."""
        if isinstance(batch, np.ma.MaskedArray):  # np.asarray would drop the mask silently
            raise errors.InputError(
                "batch is a masked array; fill the masked pixels first, e.g. batch.filled(0).")
        try:
            x = np.asarray(batch)
        except (TypeError, ValueError) as err:
            raise errors.InputError(
                f"batch is not a rectangular array of numbers ({err}). Pass an array of shape "
                f"(N, {self._n_inputs}).") from err
        if x.dtype.kind not in "iuf":
            raise errors.InputError(
                f"batch has dtype {x.dtype}; pixel values must be integers or floats "
                f"(levels 0..{self._max_level}).")
        if x.ndim == 1 and x.size == 0:
            x = x.reshape(0, self._n_inputs)
        if x.ndim == 1 + len(self._image_shape) and x.shape[1:] == self._image_shape:
            x = x.reshape(x.shape[0], self._n_inputs)
        if x.ndim != 2 or x.shape[1] != self._n_inputs:
            hint = ""
            if x.ndim in (1, len(self._image_shape)) and x.size == self._n_inputs:
                hint = f" A single image is a batch of one: reshape it to (1, {self._n_inputs})."
            raise errors.InputError(
                f"batch has shape {x.shape}; expected (N, {self._n_inputs}) or "
                f"(N, {', '.join(map(str, self._image_shape))}).{hint}")
        for native in (_F64, _F32):
            if x.dtype == native:  # an equal dtype object may still be a distinct one
                return x if x.dtype is native else x.view(native)
        return x.astype(_F64)

    def _invalid_value(self, x, flat_index):
        row, col = divmod(flat_index, self._n_inputs)
        value = float(x[row, col])
        where = f"row {row}, pixel {col}"
        if len(self._image_shape) == 2:
            width = self._image_shape[1]
            where += f" (image row {col // width}, column {col % width})"
        if np.isnan(value):
            what = "is NaN"
        elif np.isinf(value):
            what = f"is {value}"
        else:
            what = f"is {value!r}, outside the range [0, {self._max_level}]"
        return errors.InputError(
            f"batch {where} {what}. Pixel values must be finite levels from 0 (background) "
            f"to {self._max_level} (full ink); rescale images to that range.")


def _network(spec):
    """Binds the artifact's weights, padded to whole kernel blocks, to a kernel Network."""
    h_pad = -(-spec.n_hidden // _kernels.HIDDEN_PADDING) * _kernels.HIDDEN_PADDING
    c_pad = -(-len(spec.labels) // _kernels.CLASS_PADDING) * _kernels.CLASS_PADDING

    def padded(layer, part, shape, dtype=np.float32):
        array = spec.weights[artifact.tensor_name(layer, part)]
        out = np.zeros(shape, dtype=dtype)
        out[tuple(slice(0, n) for n in array.shape)] = array
        return out

    return _kernels.Network(
        padded("dense1", artifact.WEIGHT, (spec.n_inputs, h_pad), np.int16),
        padded("dense1", artifact.SCALE, (h_pad,)),
        padded("dense1", artifact.BIAS, (h_pad,)),
        padded("dense2", artifact.WEIGHT, (h_pad, c_pad)),
        padded("dense2", artifact.SCALE, (c_pad,)),
        padded("dense2", artifact.BIAS, (c_pad,)),
        len(spec.labels),
        spec.max_level,
    )
