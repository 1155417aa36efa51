"""Pure-Python reader of the TFLite flatbuffer subset that wavenet-edge step graphs use.

No ``flatbuffers`` package: the on-device runtime depends on numpy and numba only, so the
flatbuffer wire format (little-endian tables addressed through vtables, see the FlatBuffers
internals document and ``tensorflow/compiler/mlir/lite/schema/schema.fbs``) is decoded here with
``struct`` and ``numpy.frombuffer``.  Every offset, length and vtable is checked against the file
size before it is followed; anything malformed raises :class:`~wavenet_edge.errors.ModelFileError`
naming the file and the problem.

Supported: one subgraph; tensors of fixed-size numeric types with constant buffers stored inline
(or at an absolute ``offset``/``size`` in the file, the > 2 GB layout); per-tensor and per-channel
affine quantization; builtin options of FULLY_CONNECTED, SOFTMAX, CONCATENATION, ADD, MUL, TANH,
LOGISTIC, GATHER, RESHAPE and RELU (any other builtin operator is reported by name with empty
options); ``Model.metadata`` entries.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, ModelFileError

__all__ = ["TensorInfo", "OperatorInfo", "TFLiteModel", "read_tflite", "load_model",
           "BUILTIN_OPERATORS", "TENSOR_TYPES", "ACTIVATIONS"]

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3

#: BuiltinOperator enum of the TFLite schema, index = code.
BUILTIN_OPERATORS = tuple("""
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
    EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
    LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
    RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
    SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
    BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
    UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
    LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG
    PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE
    EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
    REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
    REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
    SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
    RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
    NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
    BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
    IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
    CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
    RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
    RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
    UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD
    STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP
    STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE
    STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE
    STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE
    STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
    STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
    STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
    STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE
    STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW
    STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT
""".split())

#: TensorType code -> (name, numpy dtype or None if it has no fixed-size numpy equivalent).
TENSOR_TYPES = {
    0: ("FLOAT32", np.dtype("<f4")), 1: ("FLOAT16", np.dtype("<f2")), 2: ("INT32", np.dtype("<i4")),
    3: ("UINT8", np.dtype("u1")), 4: ("INT64", np.dtype("<i8")), 5: ("STRING", None),
    6: ("BOOL", np.dtype("?")), 7: ("INT16", np.dtype("<i2")), 8: ("COMPLEX64", np.dtype("<c8")),
    9: ("INT8", np.dtype("i1")), 10: ("FLOAT64", np.dtype("<f8")),
    11: ("COMPLEX128", np.dtype("<c16")),
    12: ("UINT64", np.dtype("<u8")), 13: ("RESOURCE", None), 14: ("VARIANT", None),
    15: ("UINT32", np.dtype("<u4")), 16: ("UINT16", np.dtype("<u2")), 17: ("INT4", None),
    18: ("BFLOAT16", None),
}

#: ActivationFunctionType code -> name.
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
_FC_WEIGHTS_FORMATS = ("DEFAULT", "SHUFFLED4x16INT8")

# BuiltinOptions union member numbers (schema order) of the options we decode.
_OPT_FULLY_CONNECTED = 8
_OPT_SOFTMAX = 9
_OPT_CONCATENATION = 10
_OPT_ADD = 11
_OPT_RESHAPE = 17
_OPT_MUL = 21
_OPT_GATHER = 23


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the subgraph.

    ``data`` is the constant buffer viewed (read-only, no copy) as ``dtype`` and ``shape``, or None
    for activations / graph inputs.  ``scale`` (float32) and ``zero_point`` (int64) are the affine
    quantization as stored (both empty when unquantized; one entry per channel along
    ``quantized_dimension`` when per-channel): ``real = scale * (q - zero_point)``.
    """

    index: int
    name: str
    shape: tuple
    dtype: np.dtype
    data: np.ndarray | None
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int

    @property
    def is_quantized(self) -> bool:
        return self.scale.size > 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass(frozen=True)
class OperatorInfo:
    """One operator: ``opcode`` is the BuiltinOperator name (``"FULLY_CONNECTED"``); ``inputs`` and
    ``outputs`` are tensor indices (-1 = omitted optional input); ``options`` are the builtin
    options in snake_case (activation names as strings); ``version`` is the operator-code
    version."""

    index: int
    opcode: str
    inputs: tuple
    outputs: tuple
    options: dict
    version: int = 1


@dataclass
class TFLiteModel:
    """A parsed single-subgraph ``.tflite`` file; ``inputs``/``outputs`` are tensor indices;
    ``data`` is the file's content (what a real interpreter is given)."""

    version: int
    description: str
    tensors: list
    operators: list
    inputs: list
    outputs: list
    metadata: dict
    size_bytes: int
    name: str = "<bytes>"
    _by_name: dict = field(default_factory=dict, repr=False)
    data: bytes = field(default=b"", repr=False, compare=False)

    def tensor(self, name: str) -> TensorInfo:
        """The tensor called ``name``; ModelFileError if there is none (or several)."""
        idx = self._by_name.get(name)
        if idx is None:
            raise ModelFileError(f"no tensor named {name!r}", path=self.name)
        if idx < 0:
            raise ModelFileError(f"several tensors are named {name!r}", path=self.name)
        return self.tensors[idx]

    def has_tensor(self, name: str) -> bool:
        return self._by_name.get(name, -1) >= 0


class _Corrupt(Exception):
    """Internal: the file is malformed; turned into ModelFileError with the file name."""


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_SCALARS = {"B": _U8, "b": struct.Struct("<b"), "?": _U8, "H": _U16, "i": _I32, "I": _U32,
            "Q": _U64, "q": struct.Struct("<q"), "f": _F32}


class _Table:
    """A flatbuffer table: position plus its vtable field offsets (bounds already checked)."""

    __slots__ = ("buf", "pos", "fields", "size", "what")

    def __init__(self, buf: "_Buf", pos: int, what: str):
        self.buf, self.pos, self.what = buf, pos, what
        n = buf.n
        if pos < 0 or pos + 4 > n:
            raise _Corrupt(f"{what}: table offset {pos} out of bounds")
        vt = pos - _I32.unpack_from(buf.b, pos)[0]
        if vt < 0 or vt + 4 > n:
            raise _Corrupt(f"{what}: vtable offset {vt} out of bounds")
        vt_size, t_size = struct.unpack_from("<HH", buf.b, vt)
        if vt_size < 4 or vt_size % 2 or vt + vt_size > n:
            raise _Corrupt(f"{what}: bad vtable (size {vt_size})")
        if t_size < 4 or pos + t_size > n:
            raise _Corrupt(f"{what}: bad table size {t_size}")
        self.fields = struct.unpack_from(f"<{(vt_size - 4) // 2}H", buf.b, vt + 4)
        self.size = t_size

    def _field(self, i: int, width: int) -> int:
        """Absolute position of field i, or 0 when absent; checks it lies inside the table."""
        if i >= len(self.fields):
            return 0
        off = self.fields[i]
        if off == 0:
            return 0
        if off < 4 or off + width > self.size:
            raise _Corrupt(f"{self.what}: field {i} at offset {off} outside its table")
        return self.pos + off

    def scalar(self, i: int, fmt: str, default):
        st = _SCALARS[fmt]
        p = self._field(i, st.size)
        if not p:
            return default
        v = st.unpack_from(self.buf.b, p)[0]
        return bool(v) if fmt == "?" else v

    def ref(self, i: int) -> int:
        """Absolute position the offset field i points at, or 0 when absent."""
        p = self._field(i, 4)
        if not p:
            return 0
        target = p + _U32.unpack_from(self.buf.b, p)[0]
        if target >= self.buf.n:
            raise _Corrupt(f"{self.what}: field {i} points outside the file")
        return target

    def table(self, i: int, what: str) -> "_Table | None":
        p = self.ref(i)
        return _Table(self.buf, p, what) if p else None

    def vector(self, i: int, elem_size: int, what: str) -> tuple:
        """(start of the elements, count) of vector field i; (0, 0) when absent."""
        p = self.ref(i)
        if not p:
            return 0, 0
        return self.buf.vector_at(p, elem_size, what)

    def numbers(self, i: int, dtype: str, what: str) -> np.ndarray:
        dt = np.dtype(dtype)
        start, count = self.vector(i, dt.itemsize, what)
        if count == 0:
            return np.zeros(0, dt)
        return np.frombuffer(self.buf.b, dt, count, start)

    def string(self, i: int, what: str) -> str | None:
        p = self.ref(i)
        if not p:
            return None
        start, count = self.buf.vector_at(p, 1, what)
        try:
            return self.buf.b[start:start + count].decode("utf-8")
        except UnicodeDecodeError:
            raise _Corrupt(f"{what} is not valid UTF-8") from None

    def tables(self, i: int, what: str) -> list:
        start, count = self.vector(i, 4, what)
        out = []
        b = self.buf.b
        for k in range(count):
            p = start + 4 * k
            out.append(_Table(self.buf, p + _U32.unpack_from(b, p)[0], f"{what}[{k}]"))
        return out


class _Buf:
    __slots__ = ("b", "n")

    def __init__(self, b: bytes):
        self.b, self.n = b, len(b)

    def vector_at(self, p: int, elem_size: int, what: str) -> tuple:
        if p + 4 > self.n:
            raise _Corrupt(f"{what}: vector header out of bounds")
        count = _U32.unpack_from(self.b, p)[0]
        if p + 4 + count * elem_size > self.n:
            raise _Corrupt(f"{what}: vector of {count} elements runs past the end of the file")
        return p + 4, count


def _activation(code: int, what: str) -> str:
    if not 0 <= code < len(ACTIVATIONS):
        raise _Corrupt(f"{what}: unknown fused activation function {code}")
    return ACTIVATIONS[code]


def _options(opcode: str, op: _Table, what: str) -> dict:
    """Builtin options of the operators we use, defaults filled in when the table is absent."""
    expected = {"FULLY_CONNECTED": _OPT_FULLY_CONNECTED, "SOFTMAX": _OPT_SOFTMAX,
                "CONCATENATION": _OPT_CONCATENATION, "ADD": _OPT_ADD, "MUL": _OPT_MUL,
                "GATHER": _OPT_GATHER, "RESHAPE": _OPT_RESHAPE}.get(opcode)
    if expected is None:
        return {}
    kind = op.scalar(3, "B", 0)
    t = op.table(4, f"{what} options")
    if kind == 0 or t is None:
        t = None
    elif kind != expected:
        raise _Corrupt(f"{what} ({opcode}) carries builtin options of union type {kind}, "
                       f"expected {expected}")
    if t is None:
        if opcode == "RESHAPE":
            return {}
        t = _Table(_EMPTY_BUF, 4, "empty")  # a table with no fields: every default applies
    if opcode == "FULLY_CONNECTED":
        wf = t.scalar(1, "b", 0)
        if not 0 <= wf < len(_FC_WEIGHTS_FORMATS):
            raise _Corrupt(f"{what}: unknown weights format {wf}")
        return {"fused_activation_function": _activation(t.scalar(0, "b", 0), what),
                "weights_format": _FC_WEIGHTS_FORMATS[wf],
                "keep_num_dims": t.scalar(2, "?", False),
                "asymmetric_quantize_inputs": t.scalar(3, "?", False)}
    if opcode == "SOFTMAX":
        return {"beta": t.scalar(0, "f", 0.0)}
    if opcode == "CONCATENATION":
        return {"axis": t.scalar(0, "i", 0),
                "fused_activation_function": _activation(t.scalar(1, "b", 0), what)}
    if opcode == "ADD":
        return {"fused_activation_function": _activation(t.scalar(0, "b", 0), what),
                "pot_scale_int16": t.scalar(1, "?", True)}
    if opcode == "MUL":
        return {"fused_activation_function": _activation(t.scalar(0, "b", 0), what)}
    if opcode == "GATHER":
        return {"axis": t.scalar(0, "i", 0), "batch_dims": t.scalar(1, "i", 0)}
    # RESHAPE
    if t.fields and t.fields[0]:
        return {"new_shape": tuple(int(v) for v in t.numbers(0, "<i4", f"{what} new_shape"))}
    return {}


# A minimal valid table (soffset 4 -> vtable at 0 with vt_size 4, t_size 4): all fields absent.
_EMPTY_BUF = _Buf(struct.pack("<HHi", 4, 4, 4))


def _parse(b: bytes) -> TFLiteModel:
    n = len(b)
    if n == 0:
        raise _Corrupt("file is empty")
    if n < 8:
        raise _Corrupt(f"file is too short to be a .tflite model ({n} bytes)")
    if b[4:8] != FILE_IDENTIFIER:
        raise _Corrupt(f"not a .tflite model (file identifier {bytes(b[4:8])!r}, expected b'TFL3')")
    buf = _Buf(b)
    root = _Table(buf, _U32.unpack_from(b, 0)[0], "Model")
    version = root.scalar(0, "I", 0)
    if version != SCHEMA_VERSION:  # LiteRT and TFLM refuse any other schema version too
        raise _Corrupt(f"unsupported schema version {version} (expected {SCHEMA_VERSION})")
    description = root.string(3, "Model.description") or ""

    # Buffers: (start, length) of each buffer's bytes.
    buffers = []
    for k, bt in enumerate(root.tables(4, "Model.buffers")):
        start, count = bt.vector(0, 1, f"buffer {k}")
        if count == 0:
            off, size = bt.scalar(1, "Q", 0), bt.scalar(2, "Q", 0)
            if off > 1:  # large-model layout: absolute position in the file
                if off + size > n:
                    raise _Corrupt(f"buffer {k}: offset {off} + size {size} past the end "
                                   "of the file")
                start, count = off, size
        buffers.append((start, count))

    codes = []
    for k, ct in enumerate(root.tables(1, "Model.operator_codes")):
        code = max(ct.scalar(0, "b", 0), ct.scalar(3, "i", 0))
        if not 0 <= code < len(BUILTIN_OPERATORS):
            raise _Corrupt(f"operator code {k}: unknown builtin operator number {code}")
        name = BUILTIN_OPERATORS[code]
        if name == "CUSTOM":
            custom = ct.string(1, f"operator code {k} custom_code")
            name = f"CUSTOM:{custom}"
        codes.append((name, ct.scalar(2, "i", 1)))

    subgraphs = root.tables(2, "Model.subgraphs")
    if len(subgraphs) != 1:
        raise _Corrupt(f"expected exactly one subgraph, found {len(subgraphs)}")
    sg = subgraphs[0]

    tensors = []
    by_name: dict = {}
    for k, tt in enumerate(sg.tables(0, "tensors")):
        what = f"tensor {k}"
        name = tt.string(3, f"{what} name") or ""
        what = f"tensor {k} ({name!r})"
        shape_arr = tt.numbers(0, "<i4", f"{what} shape")
        if shape_arr.size and shape_arr.min() < 0:
            raise _Corrupt(f"{what}: negative dimension in shape {tuple(shape_arr.tolist())}")
        shape = tuple(int(v) for v in shape_arr)
        type_code = tt.scalar(1, "b", 0)
        tname, dtype = TENSOR_TYPES.get(type_code, (None, None))
        if tname is None:
            raise _Corrupt(f"{what}: unknown tensor type {type_code}")
        if dtype is None:
            raise _Corrupt(f"{what}: unsupported tensor type {tname} ({type_code})")
        buf_idx = tt.scalar(2, "I", 0)
        if buf_idx >= len(buffers):
            raise _Corrupt(f"{what}: buffer index {buf_idx} out of range ({len(buffers)} buffers)")
        data = None
        if buf_idx:
            start, count = buffers[buf_idx]
            if count:
                numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if count != numel * dtype.itemsize:
                    raise _Corrupt(f"{what}: buffer {buf_idx} holds {count} bytes, shape {shape} "
                                   f"of {tname} needs {numel * dtype.itemsize}")
                data = np.frombuffer(b, dtype, numel, start).reshape(shape)
        scale = np.zeros(0, np.float32)
        zero_point = np.zeros(0, np.int64)
        qdim = 0
        qt = tt.table(4, f"{what} quantization")
        if qt is not None:
            scale = qt.numbers(2, "<f4", f"{what} scale").astype(np.float32)
            zero_point = qt.numbers(3, "<i8", f"{what} zero_point").astype(np.int64)
            qdim = qt.scalar(6, "i", 0)
            if scale.size != zero_point.size and not (scale.size == 0 or zero_point.size == 0):
                raise _Corrupt(f"{what}: {scale.size} scales but {zero_point.size} zero points")
            if scale.size > 1:
                if not 0 <= qdim < len(shape) or shape[qdim] != scale.size:
                    raise _Corrupt(f"{what}: {scale.size} per-channel scales do not match "
                                   f"dimension {qdim} of shape {shape}")
            if scale.size and not np.all(np.isfinite(scale)):
                raise _Corrupt(f"{what}: non-finite quantization scale")
        for arr in (scale, zero_point):
            arr.flags.writeable = False
        tensors.append(TensorInfo(k, name, shape, dtype, data, scale, zero_point, qdim))
        by_name[name] = -1 if name in by_name else k

    nt = len(tensors)

    def indices(t: _Table, i: int, what: str, optional: bool) -> tuple:
        arr = t.numbers(i, "<i4", what)
        if arr.size and (arr.max() >= nt or arr.min() < (-1 if optional else 0)):
            raise _Corrupt(f"{what}: tensor index out of range ({nt} tensors): {arr.tolist()}")
        return tuple(int(v) for v in arr)

    operators = []
    for k, ot in enumerate(sg.tables(3, "operators")):
        ci = ot.scalar(0, "I", 0)
        if ci >= len(codes):
            raise _Corrupt(f"operator {k}: opcode index {ci} out of range ({len(codes)} codes)")
        opcode, opver = codes[ci]
        what = f"operator {k} ({opcode})"
        operators.append(OperatorInfo(k, opcode, indices(ot, 1, f"{what} inputs", True),
                                      indices(ot, 2, f"{what} outputs", True),
                                      _options(opcode, ot, what), opver))

    metadata = {}
    for k, mt in enumerate(root.tables(6, "Model.metadata")):
        mname = mt.string(0, f"metadata {k} name") or ""
        bi = mt.scalar(1, "I", 0)
        if bi >= len(buffers):
            raise _Corrupt(f"metadata {mname!r}: buffer index {bi} out of range")
        start, count = buffers[bi]
        metadata[mname] = bytes(b[start:start + count])

    return TFLiteModel(version=version, description=description, tensors=tensors,
                       operators=operators,
                       inputs=list(indices(sg, 1, "subgraph inputs", False)),
                       outputs=list(indices(sg, 2, "subgraph outputs", False)),
                       metadata=metadata, size_bytes=n, _by_name=by_name, data=b)


def read_tflite(source, *, name=None) -> TFLiteModel:
    """Parse a ``.tflite`` file (``source``: path or the file's bytes) into a :class:`TFLiteModel`.

    ``name`` is used in error messages (default: the path, or ``"<bytes>"``).  Constant tensor data
    are read-only views into one immutable copy of the file.  Raises ModelFileError for an
    unreadable, empty, truncated, corrupt or unsupported file.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        b = bytes(source)
        label = name or "<bytes>"
    else:
        try:
            path = os.fspath(source)
        except TypeError:
            raise ModelFileError(f"expected a path or bytes, got {type(source).__name__}",
                                 path=name) from None
        label = name or path
        try:
            with open(path, "rb") as f:
                b = f.read()
        except OSError as e:
            raise ModelFileError(f"cannot read model: {e.strerror or e}", path=label) from None
    try:
        model = _parse(b)
    except _Corrupt as e:
        raise ModelFileError(str(e), path=label) from None
    except (struct.error, IndexError, ValueError, OverflowError, TypeError, MemoryError) as e:
        # Every check above should have fired first; keep the promise of one error type anyway.
        raise ModelFileError(f"corrupt model ({type(e).__name__}: {e})", path=label) from None
    model.name = label
    return model


def load_model(model, *, name=None) -> TFLiteModel:
    """The one normalizer of every front door: ``model`` as a ``.tflite`` path, the file's bytes,
    a parsed :class:`TFLiteModel` or anything holding one as ``.model`` (an
    :class:`~wavenet_edge.engine.Engine`) -> the parsed :class:`TFLiteModel` (its ``data`` are the
    file's bytes).

    ``name`` labels a path or bytes in error messages (see :func:`read_tflite`).  Raises
    ModelFileError for an unreadable or malformed file, ConfigError for any other type.
    """
    if isinstance(model, TFLiteModel):
        return model
    if isinstance(getattr(model, "model", None), TFLiteModel):
        return model.model
    if isinstance(model, (bytes, bytearray, memoryview, str, os.PathLike)):
        return read_tflite(model, name=name)
    raise ConfigError(f"model must be a .tflite path, its bytes, a TFLiteModel or an Engine, "
                      f"got {type(model).__name__}")
