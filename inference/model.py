"""The public API: load a model artifact, classify batches of 8x8 digit images.

    from inference.model import Model

    model = Model.load("my.model", expected_version=None)
    probabilities = model.predict_proba(batch)   # one row of 10 probabilities per image
    best = model.topk(batch, k=3)                # [[(label, probability), ...], ...]
    model.version, model.metadata

Arrays in, arrays out; lists in, lists out:

  * a numpy array (or, when the caller has imported numpy, any other
    array-like that is not a list or tuple) gives a new (N, 10) float32 array;
  * a list or tuple of rows (each 64 numbers, or 8 lists of 8) gives a list of
    N lists of 10 Python floats, with the same bits as the array result.

This module does not import numpy: the inference runtime runs without it.
Arrays are handled with the numpy module the caller already imported.

Everything the model needs (input shape, value range, labels, weights) comes
from the artifact; callers never configure it. How awkward inputs are treated
is documented in inference/README.md and pinned by inference/tests.
"""

import array
import copy
import math
import numbers
import sys

from inference import _kernels, artifact, errors

# Repeated (a C memset-speed copy) to allocate zeroed buffers.
_ZERO_F64 = array.array("d", [0.0])
_ZERO_F32 = array.array("f", [0.0])
# {numpy.ndarray: (numpy, native float32 dtype, native float64 dtype)}, filled when
# the first array arrives: this module never imports numpy itself.
_NUMPY_TYPES = {}
# Nested lists deeper than this are a wrong shape whatever they hold.
_MAX_DEPTH = 32


class Model:
    """A loaded, verified classifier. Safe to share between threads (no mutable state)."""

    def __init__(self, loaded, spec, source):
        """Use `Model.load`; the constructor's arguments are internal."""
        self._version = loaded.version
        self._labels = spec.labels
        self._n_inputs = spec.n_inputs
        self._n_classes = len(spec.labels)
        self._image_shape = spec.image_shape
        # Rows of the image (8 for 8x8) when images may come as nested rows, else 0.
        self._height = spec.image_shape[0] if len(spec.image_shape) == 2 else 0
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
        """Class probabilities for each row of `batch`.

        `batch`: integer or float pixel levels, N images of 64 values or 8x8;
        values are rounded to the nearest level (halves up). A list or tuple of
        rows gives a list of N lists of n_classes floats; a numpy array gives a
        new (N, n_classes) float32 array. Raises `errors.InputError` for
        anything else (see inference/README.md).
        """
        numpy_types = _NUMPY_TYPES.get(type(batch))  # one lookup for the common array case
        if numpy_types is None:
            if isinstance(batch, (list, tuple)):
                return self._proba_rows(batch)
            np = sys.modules.get("numpy")
            if np is None:  # nobody imported numpy, so `batch` cannot be an array of it
                raise errors.InputError(
                    f"batch has type {type(batch).__name__}; pass a list of rows "
                    f"({self._n_inputs} numbers each, or {self._image_phrase()}) or a numpy "
                    f"array of shape (N, {self._n_inputs}).")
            numpy_types = _numpy_types(np)
        np, f32, f64 = numpy_types
        x = batch
        # The fast path takes the caller's array as it is (any strides, no copy).
        # Exact type: subclasses (masked arrays, matrices) take the slow path.
        if type(x) is not np.ndarray or (  # pylint: disable=unidiomatic-typecheck
                x.ndim != 2 or x.shape[1] != self._n_inputs
                or (x.dtype is not f64 and x.dtype is not f32)):
            x = self._coerce(np, batch)
        out = np.empty((x.shape[0], self._n_classes), dtype=np.float32)
        bad = (self._forward_f64 if x.dtype is f64 else self._forward_f32)(x, out)
        if bad >= 0:
            raise self._invalid_value(x, bad)
        return out

    def topk(self, batch, k=1):
        """The k most probable labels of each row: [[(label, probability), ...], ...].

        Sorted by probability, highest first; equal probabilities keep label order.
        Lists and arrays alike give this form, with Python floats.
        """
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) \
                or not 1 <= k <= self._n_classes:
            raise errors.InputError(f"k must be an integer from 1 to {self._n_classes}, got {k!r}.")
        k, labels = int(k), self._labels
        proba = self.predict_proba(batch)
        if isinstance(proba, list):
            classes = range(self._n_classes)
            ranked = []
            for row in proba:
                # A stable sort: reverse=True keeps equal probabilities in label order.
                best = sorted(classes, key=row.__getitem__, reverse=True)[:k]
                ranked.append([(labels[c], row[c]) for c in best])
            return ranked
        order = sys.modules["numpy"].argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(labels[c], float(row[c])) for c in best] for row, best in zip(proba, order)]

    def __repr__(self):
        return f"Model(version={self._version[:12]}..., source={self._source!r})"

    # --- Lists in, lists out ------------------------------------------------------------

    def _proba_rows(self, rows):
        """Probabilities of a list or tuple of rows, as a list of lists of floats."""
        n_rows, n_inputs = len(rows), self._n_inputs
        if not n_rows:
            return []
        flat = _ZERO_F64 * (n_rows * n_inputs)
        if _kernels.pack_rows(rows, n_inputs, self._height, flat) >= 0:
            self._pack_rows_slowly(rows, flat)  # other number types, or an InputError
        x = memoryview(flat).cast("B").cast("d", (n_rows, n_inputs))
        out = memoryview(_ZERO_F32 * (n_rows * self._n_classes)).cast("B").cast(
            "f", (n_rows, self._n_classes))
        bad = self._forward_f64(x, out)
        if bad >= 0:
            raise self._invalid_value(x, bad)
        return out.tolist()

    def _pack_rows_slowly(self, rows, flat):
        """What `_kernels.pack_rows` leaves to Python: explains bad rows, converts the rest.

        Accepts any real number that is not a bool (int and float subclasses,
        numpy scalars, fractions); refuses the rest naming row and pixel.
        """
        shape = _nested_shape(rows)
        n_inputs = self._n_inputs
        if self._image_shape and shape[1:] == self._image_shape:
            rows = [[value for line in row for value in line] for row in rows]
        elif shape[1:] != (n_inputs,):
            raise self._shape_error(shape)
        for r, row in enumerate(rows):
            for col, value in enumerate(row):
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise errors.InputError(
                        f"batch {self._where(r, col)} is {_describe(value)}; pixel values must "
                        f"be integers or floats (levels 0..{self._max_level}).")
                try:
                    flat[r * n_inputs + col] = float(value)
                except OverflowError:
                    raise self._value_error(
                        r, col, f"is {value!r}, outside the range [0, {self._max_level}]") \
                        from None

    # --- Arrays in, arrays out: the rest of predict_proba ---------------------------------

    def _coerce(self, np, batch):
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
            raise self._shape_error(x.shape)
        for native in _numpy_types(np)[1:]:
            if x.dtype == native:  # an equal dtype object may still be a distinct one
                return x if x.dtype is native else x.view(native)
        return x.astype(np.float64)

    # --- Errors shared by both paths ----------------------------------------------------

    def _image_phrase(self):
        if self._height:
            return f"{self._height} lists of {self._n_inputs // self._height}"
        return f"{self._n_inputs} numbers"

    def _shape_error(self, shape):
        shape = tuple(int(d) for d in shape)
        hint = ""
        if len(shape) in (1, len(self._image_shape)) and math.prod(shape) == self._n_inputs:
            hint = f" A single image is a batch of one: reshape it to (1, {self._n_inputs})."
        return errors.InputError(
            f"batch has shape {shape}; expected (N, {self._n_inputs}) or "
            f"(N, {', '.join(map(str, self._image_shape))}).{hint}")

    def _where(self, row, col):
        where = f"row {row}, pixel {col}"
        if len(self._image_shape) == 2:
            width = self._image_shape[1]
            where += f" (image row {col // width}, column {col % width})"
        return where

    def _value_error(self, row, col, what):
        return errors.InputError(
            f"batch {self._where(row, col)} {what}. Pixel values must be finite levels from 0 "
            f"(background) to {self._max_level} (full ink); rescale images to that range.")

    def _invalid_value(self, x, flat_index):
        row, col = divmod(flat_index, self._n_inputs)
        value = float(x[row, col])
        if math.isnan(value):
            what = "is NaN"
        elif math.isinf(value):
            what = f"is {value}"
        else:
            what = f"is {value!r}, outside the range [0, {self._max_level}]"
        return self._value_error(row, col, what)


def _numpy_types(np):
    """(numpy, its native float32 dtype, float64 dtype), registered for np.ndarray."""
    types = (np, np.dtype(np.float32), np.dtype(np.float64))
    _NUMPY_TYPES[np.ndarray] = types
    return types


def _describe(value):
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a {type(value).__name__} ({text})"


def _nested_shape(obj, index=()):
    """The shape of nested lists and tuples, as numpy would see it, or InputError if ragged.

    Anything that is not a list or tuple is a leaf (shape ()): the caller checks
    the values. Other containers (arrays, dicts, ...) are refused by name.
    `index` locates `obj` in the batch, for the messages.
    """
    if isinstance(obj, (list, tuple)):
        if len(index) >= _MAX_DEPTH:
            raise errors.InputError(f"{_path(index)} is nested more than {_MAX_DEPTH} lists deep.")
        if not obj:
            return (0,)
        first = _nested_shape(obj[0], index + (0,))
        for i in range(1, len(obj)):
            shape = _nested_shape(obj[i], index + (i,))
            if shape != first:
                raise errors.InputError(
                    f"batch is not a rectangular array of numbers: {_path(index + (i,))} has "
                    f"shape {shape}, {_path(index + (0,))} has shape {first}. Pass N rows of "
                    "the same shape.")
        return (len(obj),) + first
    if hasattr(obj, "__len__") and not isinstance(obj, (str, bytes, bytearray)):
        raise errors.InputError(
            f"{_path(index)} has type {type(obj).__name__}, not list or tuple: pass a batch of "
            "lists, or the whole batch as one numpy array.")
    return ()


def _path(index):
    """Where an item sits in the batch, e.g. batch[1][3]."""
    return "batch" + "".join(f"[{i}]" for i in index)


def _network(spec):
    """Binds the artifact's weights, padded to whole kernel blocks, to a kernel Network."""
    h_pad = -(-spec.n_hidden // _kernels.HIDDEN_PADDING) * _kernels.HIDDEN_PADDING
    c_pad = -(-len(spec.labels) // _kernels.CLASS_PADDING) * _kernels.CLASS_PADDING

    def padded(layer, part, shape, typecode="f"):
        """The tensor zero-padded to `shape`, as a view of a new `typecode` array."""
        tensor = spec.weights[artifact.tensor_name(layer, part)]
        rows, cols = shape if len(shape) == 2 else (1, shape[0])
        out = array.array(typecode, bytes(rows * cols * array.array(typecode).itemsize))
        values = tensor.tolist()
        for i, row in enumerate(values if len(shape) == 2 else [values]):
            out[i * cols:i * cols + len(row)] = array.array(typecode, row)
        return memoryview(out).cast("B").cast(typecode, shape)

    return _kernels.Network(
        padded("dense1", artifact.WEIGHT, (spec.n_inputs, h_pad), "h"),
        padded("dense1", artifact.SCALE, (h_pad,)),
        padded("dense1", artifact.BIAS, (h_pad,)),
        padded("dense2", artifact.WEIGHT, (h_pad, c_pad)),
        padded("dense2", artifact.SCALE, (c_pad,)),
        padded("dense2", artifact.BIAS, (c_pad,)),
        len(spec.labels),
        spec.max_level,
    )
