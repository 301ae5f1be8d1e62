"""The model artifact: one file holding the weights and every runtime setting.

The inference library owns this format; training imports it to write.

File layout (integers little-endian)::

    offset  bytes  field
         0      8  magic b"\\x89MSART\\r\\n" (the high byte and CR LF catch
                   7-bit and newline-translating copies, as PNG's does)
         8      4  u32 format version (FORMAT_VERSION)
        12      4  u32 header length H in bytes
        16      8  u64 payload length P: every byte after this 64-byte preamble
        24     32  sha256 of the payload
        56      8  reserved, zero
        64      H  header: canonical JSON (sorted keys, no spaces, ASCII)
         .      .  zero padding to a multiple of 64 (absolute file offset)
         D      .  data section: raw little-endian C-order tensors, each at an
                   offset (relative to D) that is a multiple of 64, in header order

The header's "tensors" list describes each blob: name, dtype, shape, offset,
nbytes. The sha256 of the whole file is the model's version id. `encode` is a
pure function of its arguments, so equal models give byte-identical files.

No numpy here: this module is part of the inference runtime, which must run
without it. `encode` takes any C-contiguous buffer (numpy arrays included) of
one of the `DTYPES`; `decode` returns each tensor as a read-only `memoryview`
of the file bytes, cast to its struct format and shape (a tensor with no
elements is an empty 1-D view: memoryview cannot have zeros in its shape).
numpy callers wrap them with `np.asarray(view)` (no copy).

The second half of this module is the classifier schema (schema version 1):
which header fields and tensors a model must have, checked by
`classifier_spec` before any of it reaches the kernels.
"""

import dataclasses
import hashlib
import json
import math
import struct
import sys

from inference import errors

# Tensors are stored little-endian and decoded as views of the file bytes in
# native order, so the runtime needs a little-endian host (x86-64, arm64).
if sys.byteorder != "little":
    raise ImportError(
        f"inference.artifact reads little-endian tensors in place; this host is {sys.byteorder}-"
        "endian, which this library does not support.")

MAGIC = b"\x89MSART\r\n"
FORMAT_VERSION = 1
ALIGNMENT = 64
_PREAMBLE = struct.Struct("<8sIIQ32s8s")
PREAMBLE_NBYTES = _PREAMBLE.size  # 64
_RESERVED = bytes(8)

# dtype names used in headers -> struct formats of their (little-endian) items.
DTYPES = {
    "float16": "e",
    "float32": "f",
    "int8": "b",
    "int32": "i",
    "uint8": "B",
}
_NAMES = {fmt: name for name, fmt in DTYPES.items()}
# memoryview cannot be cast to half floats: a float16 tensor decodes as its raw
# 16-bit patterns (numpy callers: `np.asarray(view).view(np.float16)`).
_VIEW_FORMATS = {"e": "H"}


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A decoded, verified artifact. Tensors are read-only views of the file bytes."""

    header: dict
    tensors: dict
    version: str


def canonical_json(obj):
    """The one byte encoding of a JSON header: sorted keys, no whitespace, ASCII."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _align(n):
    return -(-n // ALIGNMENT) * ALIGNMENT


def dtype_of(view):
    """The header dtype name of a buffer's items, or None if the format cannot hold it.

    Accepts struct formats in native or little-endian byte order ('f', '<f',
    '=f', '@f', ...), as numpy arrays of the exact dtype export them.
    """
    fmt = view.format
    if fmt[:1] in ("@", "=", "<"):
        fmt = fmt[1:]
    name = _NAMES.get(fmt)
    if name is None or view.itemsize != struct.calcsize("<" + fmt):
        return None
    return name


def encode(header, tensors):
    """Serialises `header` (a JSON-able dict) and `tensors` ({name: buffer}) to bytes.

    A tensor is any C-contiguous buffer (a numpy array, array.array,
    memoryview) whose items are float16, float32, int8, int32 or uint8; pass arrays of
    the exact dtype, nothing is converted. Tensors are stored in name order.
    The header must not have a "tensors" key: the encoder writes it.
    """
    if "tensors" in header:
        raise ValueError("header must not contain 'tensors'; encode() describes them")
    entries, blobs, offset = [], [], 0
    for name in sorted(tensors):
        try:
            view = memoryview(tensors[name])
        except TypeError as err:
            raise ValueError(
                f"tensor {name!r} is a {type(tensors[name]).__name__}, not a buffer; pass an "
                f"array of one of {sorted(DTYPES)}") from err
        stored = dtype_of(view)
        if stored is None:
            raise ValueError(
                f"tensor {name!r} has items of format {view.format!r}, which cannot be stored; "
                f"convert it to one of {sorted(DTYPES)} (e.g. numpy's .astype(np.float32)).")
        if not view.c_contiguous:
            raise ValueError(
                f"tensor {name!r} is not C-contiguous; pass a contiguous copy "
                "(e.g. np.ascontiguousarray).")
        raw = view.tobytes()
        offset = _align(offset)
        entries.append({"name": name, "dtype": stored, "shape": list(view.shape),
                        "offset": offset, "nbytes": len(raw)})
        blobs.append((offset, raw))
        offset += len(raw)
    header_bytes = canonical_json(dict(header, tensors=entries))
    data_start = _align(PREAMBLE_NBYTES + len(header_bytes))
    data = bytearray(offset)
    for start, raw in blobs:
        data[start:start + len(raw)] = raw
    payload = header_bytes + bytes(data_start - PREAMBLE_NBYTES - len(header_bytes)) + data
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header_bytes), len(payload),
                              hashlib.sha256(payload).digest(), _RESERVED)
    return preamble + payload


def write(path, header, tensors):
    """Writes an artifact file; returns its version id (sha256 of the file)."""
    data = encode(header, tensors)
    with open(path, "wb") as out:
        out.write(data)
    return hashlib.sha256(data).hexdigest()


def read(path):
    """Reads and verifies an artifact file. Raises `errors.ArtifactError` subclasses."""
    try:
        with open(path, "rb") as src:
            data = src.read()
    except OSError as err:
        raise errors.ArtifactUnreadableError(
            f"cannot read model artifact {path}: {err.strerror or err}. Check the path "
            "points at the artifact file the model's training target built.") from err
    return decode(data, source=str(path))


def decode(data, source="<bytes>"):
    """Verifies and decodes artifact bytes: preamble, checksum, header, tensor bounds."""
    data = bytes(data)
    if len(data) < PREAMBLE_NBYTES:
        if not MAGIC.startswith(data[:len(MAGIC)]):
            raise errors.CorruptArtifactError(
                f"{source} is not a model artifact: it is {len(data)} bytes and does not "
                f"start with the artifact magic {MAGIC!r}.")
        raise errors.TruncatedArtifactError(
            f"{source} is truncated: {len(data)} bytes, shorter than the "
            f"{PREAMBLE_NBYTES}-byte preamble. Copy the artifact again.")
    magic, version, header_nbytes, payload_nbytes, digest, reserved = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise errors.CorruptArtifactError(
            f"{source} is not a model artifact: its first bytes are {magic!r}, expected "
            f"{MAGIC!r}. Point the loader at the file the model's training target built.")
    if version != FORMAT_VERSION:
        raise errors.IncompatibleArtifactError(
            f"{source} uses artifact format version {version}; this inference library reads "
            f"format version {FORMAT_VERSION}. Rebuild the artifact with the training "
            "pipeline of this revision, or deploy the inference library that matches it.")
    if reserved != _RESERVED:
        raise errors.CorruptArtifactError(f"{source}: reserved preamble bytes are not zero.")
    found = len(data) - PREAMBLE_NBYTES
    if found < payload_nbytes:
        raise errors.TruncatedArtifactError(
            f"{source} is truncated: the preamble announces {PREAMBLE_NBYTES + payload_nbytes} "
            f"bytes, the file has {len(data)}. Copy the artifact again.")
    if found > payload_nbytes:
        raise errors.CorruptArtifactError(
            f"{source} has {found - payload_nbytes} unexpected trailing bytes after the "
            f"{PREAMBLE_NBYTES + payload_nbytes} bytes the preamble announces.")
    payload = memoryview(data)[PREAMBLE_NBYTES:]
    if hashlib.sha256(payload).digest() != digest:
        raise errors.CorruptArtifactError(
            f"{source} is corrupt: the sha256 of its contents does not match the checksum "
            "in its preamble (bit rot or a partial overwrite). Copy the artifact again.")
    if header_nbytes > payload_nbytes:
        raise errors.CorruptArtifactError(
            f"{source}: the preamble announces a {header_nbytes}-byte header in a "
            f"{payload_nbytes}-byte payload.")
    header = _parse_header(bytes(payload[:header_nbytes]), source)
    data_section = memoryview(data)[_align(PREAMBLE_NBYTES + header_nbytes):]
    tensors = _tensors(header, data_section, source)
    return Artifact(header=header, tensors=tensors, version=hashlib.sha256(data).hexdigest())


def _parse_header(raw, source):
    try:
        header = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as err:
        raise errors.CorruptArtifactError(f"{source}: the header is not valid JSON ({err}).") \
            from err
    if not isinstance(header, dict) or not isinstance(header.get("tensors"), list):
        raise errors.CorruptArtifactError(
            f"{source}: the header must be a JSON object with a 'tensors' list.")
    return header


def _tensors(header, data, source):
    tensors, end = {}, 0
    for i, entry in enumerate(header["tensors"]):
        where = f"{source}: header tensor #{i}"
        if not isinstance(entry, dict):
            raise errors.CorruptArtifactError(f"{where} is not an object.")
        name, dtype_name = entry.get("name"), entry.get("dtype")
        shape, offset, nbytes = entry.get("shape"), entry.get("offset"), entry.get("nbytes")
        if not isinstance(name, str) or name in tensors:
            raise errors.CorruptArtifactError(f"{where} has a missing or duplicate name {name!r}.")
        where = f"{source}: tensor {name!r}"
        if dtype_name not in DTYPES:
            raise errors.CorruptArtifactError(
                f"{where} has dtype {dtype_name!r}; known dtypes are {sorted(DTYPES)}.")
        if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
            raise errors.CorruptArtifactError(f"{where} has an invalid shape {shape!r}.")
        if not (_is_count(offset) and _is_count(nbytes)):
            raise errors.CorruptArtifactError(f"{where} has an invalid offset or size.")
        fmt = DTYPES[dtype_name]
        if nbytes != math.prod(shape) * struct.calcsize(fmt):
            raise errors.CorruptArtifactError(
                f"{where}: {nbytes} bytes do not hold a {dtype_name} array of shape {shape}.")
        if offset % ALIGNMENT or offset < end or offset + nbytes > len(data):
            raise errors.CorruptArtifactError(
                f"{where} spans bytes {offset}..{offset + nbytes} of a {len(data)}-byte data "
                f"section: out of bounds, misaligned or overlapping the previous tensor.")
        tensors[name] = _view(data[offset:offset + nbytes], _VIEW_FORMATS.get(fmt, fmt), shape,
                              where)
        end = offset + nbytes
    return tensors


def _view(raw, fmt, shape, where):
    """`raw` (a read-only byte view) as items of struct format `fmt` in `shape`."""
    try:
        if 0 in shape:  # memoryview cannot have zeros in its shape
            return raw.cast(fmt)
        return raw.cast(fmt, shape)
    except (TypeError, ValueError) as err:
        raise errors.CorruptArtifactError(f"{where} cannot be viewed with shape {shape}: {err}.") \
            from err


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- Classifier schema, version 1 ---------------------------------------------------------

OUTPUT_SCHEMA_VERSION = 1
ARCHITECTURE = "mlp-relu-softmax"
# Tensor names of the two dense layers; weights are int8 [in, out] with one float32
# scale per output channel (real weight = int8 * scale) and a float32 bias.
LAYERS = ("dense1", "dense2")
WEIGHT, SCALE, BIAS = "weight", "scale", "bias"
INT8_LIMIT = 127
# Layer 1 multiplies integer input levels by int8 weights; float32 holds every
# such sum exactly while it stays below 2**24, so any summation order (ours or
# BLAS's) gives the same bits.
EXACT_FLOAT32_INTEGER = 2 ** 24


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """What the runtime needs from a verified classifier artifact."""

    labels: tuple
    n_inputs: int
    n_hidden: int
    image_shape: tuple
    max_level: int
    weights: dict  # {"dense1.weight": read-only memoryview of int8 [in, out], ...}


def tensor_name(layer, part):
    """Name of a layer's tensor in the artifact, e.g. 'dense1.weight'."""
    return f"{layer}.{part}"


def classifier_spec(artifact, source="<artifact>"):
    """Checks the classifier schema of a decoded artifact; returns its `ClassifierSpec`."""
    header = artifact.header
    output = _field(header, "output", dict, source)
    schema = output.get("schema_version")
    if schema != OUTPUT_SCHEMA_VERSION:
        raise errors.IncompatibleArtifactError(
            f"{source} declares output schema version {schema!r}; this inference library "
            f"serves output schema version {OUTPUT_SCHEMA_VERSION}. Deploy a matching library.")
    architecture = _field(header, "architecture", dict, source)
    if architecture.get("type") != ARCHITECTURE:
        raise errors.IncompatibleArtifactError(
            f"{source} has architecture {architecture.get('type')!r}; this library runs "
            f"{ARCHITECTURE!r} only.")
    labels = _field(header, "labels", list, source)
    if not labels or len(set(labels)) != len(labels) or \
            not all(isinstance(label, str) for label in labels):
        raise errors.CorruptArtifactError(f"{source}: 'labels' must be distinct strings.")
    spec_input = _field(header, "input", dict, source)
    value_range = spec_input.get("value_range")
    if not (isinstance(value_range, list) and len(value_range) == 2 and value_range[0] == 0
            and _is_count(value_range[1]) and value_range[1] > 0):
        raise errors.IncompatibleArtifactError(
            f"{source}: input value_range {value_range!r} is not supported; schema version "
            f"{OUTPUT_SCHEMA_VERSION} takes integer levels [0, max].")
    _field(header, "metrics", dict, source)
    weights = {}
    for layer in LAYERS:
        for part in (WEIGHT, SCALE, BIAS):
            name = tensor_name(layer, part)
            if name not in artifact.tensors:
                raise errors.CorruptArtifactError(f"{source}: tensor {name!r} is missing.")
            weights[name] = memoryview(artifact.tensors[name])
    spec = ClassifierSpec(
        labels=tuple(labels),
        n_inputs=_dim(weights, "dense1", 0),
        n_hidden=_dim(weights, "dense1", 1),
        image_shape=tuple(spec_input.get("image_shape") or ()),
        max_level=value_range[1],
        weights=weights,
    )
    _check_weights(spec, spec_input, source)
    return spec


def _field(header, key, kind, source):
    value = header.get(key)
    if not isinstance(value, kind):
        raise errors.CorruptArtifactError(
            f"{source}: header field {key!r} is missing or not a JSON {kind.__name__}.")
    return value


def _flat(view):
    """The items of a C-contiguous view of one of the DTYPES as a flat 1-D view (no copy)."""
    return view.cast("B").cast(DTYPES[dtype_of(view)])


def _dim(weights, layer, axis):
    shape = weights[tensor_name(layer, WEIGHT)].shape
    return shape[axis] if len(shape) == 2 else -1


def _check_weights(spec, spec_input, source):
    expected = {
        "dense1": (spec.n_inputs, spec.n_hidden),
        "dense2": (spec.n_hidden, len(spec.labels)),
    }
    for layer, (n_in, n_out) in expected.items():
        shapes = {
            WEIGHT: ("int8", (n_in, n_out)),
            SCALE: ("float32", (n_out,)),
            BIAS: ("float32", (n_out,)),
        }
        for part, (expected_dtype, shape) in shapes.items():
            name = tensor_name(layer, part)
            view = spec.weights[name]
            found = dtype_of(view) or view.format
            if found != expected_dtype or view.shape != shape or min(shape) < 1:
                raise errors.CorruptArtifactError(
                    f"{source}: tensor {name!r} is {found} {list(view.shape)}, expected "
                    f"{expected_dtype} {list(shape)} for {len(spec.labels)} labels.")
        if min(_flat(spec.weights[tensor_name(layer, WEIGHT)])) < -INT8_LIMIT:
            raise errors.CorruptArtifactError(
                f"{source}: {layer} weights must lie in [-{INT8_LIMIT}, {INT8_LIMIT}].")
        scale = _flat(spec.weights[tensor_name(layer, SCALE)])
        bias = _flat(spec.weights[tensor_name(layer, BIAS)])
        if not (all(math.isfinite(value) and value > 0 for value in scale)
                and all(math.isfinite(value) for value in bias)):
            raise errors.CorruptArtifactError(
                f"{source}: {layer} scales must be finite and positive, biases finite.")
    if list(spec_input.get("shape", ())) != [spec.n_inputs] or (
            spec.image_shape and math.prod(spec.image_shape) != spec.n_inputs):
        raise errors.CorruptArtifactError(
            f"{source}: input shape {spec_input.get('shape')} / image_shape "
            f"{list(spec.image_shape)} do not match the {spec.n_inputs} inputs of dense1.")
    if spec.n_inputs * spec.max_level * INT8_LIMIT >= EXACT_FLOAT32_INTEGER:
        raise errors.IncompatibleArtifactError(
            f"{source}: {spec.n_inputs} inputs of up to {spec.max_level} levels overflow the "
            "exact integer range of the first layer.")
