"""Write single-subgraph ``.tflite`` files with the ``flatbuffers`` runtime and the ``tflite``
schema bindings (host-side only; the on-device reader is :mod:`wavenet_edge.tflite_file`).

Layout facts both LiteRT 2.3 and tflite-micro accept (measured, see ``tests/test_tflite_file.py``):
``Model.version = 3``, file identifier ``TFL3``, buffer 0 empty, every constant buffer 16-byte
aligned, operator codes carrying both ``deprecated_builtin_code`` (= min(code, 127)) and
``builtin_code``.

Operator versions (:data:`OPERATOR_VERSIONS`) are the ones TFLite's converter assigns to the
int8 graphs we emit (``lite/tools/versioning/op_version.cc``): FULLY_CONNECTED 4 (int8 with bias,
per-channel weights do not change it; 12 is per-channel *hybrid*), GATHER 2 (int8 params), MUL 2
or 3 (3 when ``s_a * s_b / s_out >= 1``, chosen at build time), every other op 2 (RESHAPE 1).
Measured on this machine by sweeping versions 1..16 over single-op int8 models
(``tests/test_tflite_file.py`` keeps the boundary checks): LiteRT's builtin and reference resolvers
refuse a version above their registration (``Didn't find op for builtin opcode ... version``) but
accept every version from 1 up, whatever the tensor types; tflite-micro ignores the number.
:data:`ACCEPTED_VERSIONS` records the highest version both LiteRT resolvers load.
"""

from __future__ import annotations

import importlib
import os

import flatbuffers
import numpy as np
import tflite

from wavenet_edge._fileio import atomic_write
from wavenet_edge.errors import ConversionError
from wavenet_edge.graph_spec import MAX_CONCAT_INPUTS  # TFLM's limit, defined once
from wavenet_edge.tflite_file import ACTIVATIONS, BUILTIN_OPERATORS, TENSOR_TYPES


def _schema(table: str):
    """The ``tflite.<table>`` module (the package re-exports the classes under the same names)."""
    return importlib.import_module(f"tflite.{table}")


__all__ = ["GraphBuilder", "write_tflite", "OPERATOR_VERSIONS", "ACCEPTED_VERSIONS",
           "MAX_CONCAT_INPUTS"]

SCHEMA_VERSION = 3

#: Version written for each operator (int8 kernels); override per call with ``version=``.
#: MUL is computed from its scales at build time (2 or 3), see the module docstring.
OPERATOR_VERSIONS = {
    "FULLY_CONNECTED": 4,
    "SOFTMAX": 2,
    "CONCATENATION": 2,
    "ADD": 2,
    "MUL": 2,
    "TANH": 2,
    "LOGISTIC": 2,
    "GATHER": 2,
    "RESHAPE": 1,
    "RELU": 2,
    "QUANTIZE": 1,
    "SLICE": 2,
}

#: Inclusive (lowest, highest) version that both LiteRT 2.3 resolvers (builtin and reference) load
#: for our int8 operators; tflite-micro accepts any version.
ACCEPTED_VERSIONS = {
    "FULLY_CONNECTED": (1, 14),
    "SOFTMAX": (1, 3),  # builtin 4, reference 3
    "CONCATENATION": (1, 7),
    "ADD": (1, 5),  # builtin 6, reference 5
    "MUL": (1, 7),  # builtin 8, reference 7
    "TANH": (1, 3),
    "LOGISTIC": (1, 3),
    "GATHER": (1, 8),
    "RESHAPE": (1, 1),
    "RELU": (1, 3),
    "QUANTIZE": (1, 3),
    "SLICE": (1, 8),  # frame graphs of F > 1; 1-8 load in all three (no upper bound probed)
}

#: tflite-micro's CONCATENATION kernel limit on inputs.

#: Output quantization (scale, zero point) the int8 kernels require.
_FIXED_OUTPUT_QUANT = {"TANH": (1 / 128, 0), "LOGISTIC": (1 / 256, -128),
                       "SOFTMAX": (1 / 256, -128)}
_INT8 = 9

_OPCODES = {name: code for code, name in enumerate(BUILTIN_OPERATORS)}
_TYPES = {np.dtype(dt).newbyteorder("="): code for code, (name, dt) in TENSOR_TYPES.items()
          if dt is not None}
_ACT = {name: code for code, name in enumerate(ACTIVATIONS)}
_BO = tflite.BuiltinOptions  # the enum class
_ALIGN = 16


def _act(value, opcode):
    if value not in _ACT:
        raise ConversionError(f"{opcode}: unknown fused_activation_function {value!r}")
    return _ACT[value]


def _options_table(b, opcode: str, opts: dict):
    """Build the builtin-options table; returns (union type, offset) or (0, 0)."""
    opts = dict(opts)

    def take(key, default):
        return opts.pop(key, default)

    if opcode == "FULLY_CONNECTED":
        fa = _act(take("fused_activation_function", "NONE"), opcode)
        wf = {"DEFAULT": 0, "SHUFFLED4x16INT8": 1}[take("weights_format", "DEFAULT")]
        knd = bool(take("keep_num_dims", False))
        aqi = bool(take("asymmetric_quantize_inputs", False))
        M = _schema("FullyConnectedOptions")
        M.FullyConnectedOptionsStart(b)
        M.FullyConnectedOptionsAddFusedActivationFunction(b, fa)
        M.FullyConnectedOptionsAddWeightsFormat(b, wf)
        M.FullyConnectedOptionsAddKeepNumDims(b, knd)
        M.FullyConnectedOptionsAddAsymmetricQuantizeInputs(b, aqi)
        kind, off = _BO.FullyConnectedOptions, M.FullyConnectedOptionsEnd(b)
    elif opcode == "SOFTMAX":
        beta = float(take("beta", 1.0))
        M = _schema("SoftmaxOptions")
        M.SoftmaxOptionsStart(b)
        M.SoftmaxOptionsAddBeta(b, beta)
        kind, off = _BO.SoftmaxOptions, M.SoftmaxOptionsEnd(b)
    elif opcode == "CONCATENATION":
        axis = int(take("axis", 0))
        fa = _act(take("fused_activation_function", "NONE"), opcode)
        M = _schema("ConcatenationOptions")
        M.ConcatenationOptionsStart(b)
        M.ConcatenationOptionsAddAxis(b, axis)
        M.ConcatenationOptionsAddFusedActivationFunction(b, fa)
        kind, off = _BO.ConcatenationOptions, M.ConcatenationOptionsEnd(b)
    elif opcode == "ADD":
        fa = _act(take("fused_activation_function", "NONE"), opcode)
        pot = bool(take("pot_scale_int16", True))
        M = _schema("AddOptions")
        M.AddOptionsStart(b)
        M.AddOptionsAddFusedActivationFunction(b, fa)
        M.AddOptionsAddPotScaleInt16(b, pot)
        kind, off = _BO.AddOptions, M.AddOptionsEnd(b)
    elif opcode == "MUL":
        fa = _act(take("fused_activation_function", "NONE"), opcode)
        M = _schema("MulOptions")
        M.MulOptionsStart(b)
        M.MulOptionsAddFusedActivationFunction(b, fa)
        kind, off = _BO.MulOptions, M.MulOptionsEnd(b)
    elif opcode == "GATHER":
        axis, bd = int(take("axis", 0)), int(take("batch_dims", 0))
        M = _schema("GatherOptions")
        M.GatherOptionsStart(b)
        M.GatherOptionsAddAxis(b, axis)
        M.GatherOptionsAddBatchDims(b, bd)
        kind, off = _BO.GatherOptions, M.GatherOptionsEnd(b)
    elif opcode == "RESHAPE":
        new_shape = take("new_shape", None)
        M = _schema("ReshapeOptions")
        vec = None if new_shape is None else _int_vector(b, new_shape, np.int32)
        M.ReshapeOptionsStart(b)
        if vec is not None:
            M.ReshapeOptionsAddNewShape(b, vec)
        kind, off = _BO.ReshapeOptions, M.ReshapeOptionsEnd(b)
    else:
        kind, off = 0, 0
    if opts:
        raise ConversionError(f"{opcode}: unsupported options {sorted(opts)}")
    return kind, off


def _int_vector(b, values, dtype):
    arr = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))
    return b.CreateNumpyVector(arr)


def _aligned_bytes(b, data: bytes):
    """A [ubyte] vector whose first element sits on a 16-byte boundary of the finished file."""
    n = len(data)
    b.StartVector(1, n, _ALIGN)
    b.head = b.head - n
    b.Bytes[b.head:b.head + n] = data
    return b.EndVector()


class GraphBuilder:
    """Collects tensors, operators and metadata of one subgraph and serializes them.

    Tensor and operator indices are returned in creation order.  Constant ``data`` is converted to
    ``dtype`` and must have exactly ``shape``; ``scale``/``zero_point`` are per tensor (scalars) or
    per channel along ``quantized_dimension`` (zero point defaults to 0).
    """

    def __init__(self):
        self._tensors: list[dict] = []
        self._names: dict[str, int] = {}
        self._ops: list[tuple] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._metadata: list[tuple[str, bytes]] = []

    # -- graph construction -------------------------------------------------------------------
    def add_tensor(self, name, shape, dtype, *, data=None, scale=None, zero_point=None,
                   quantized_dimension=0) -> int:
        """Add a tensor; returns its index. ``shape`` ints ≥ 0, ``dtype`` numpy-compatible."""
        name = str(name)
        if name in self._names:
            raise ConversionError(f"duplicate tensor name {name!r}")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ConversionError(f"tensor {name!r}: negative dimension in {shape}")
        dt = np.dtype(dtype).newbyteorder("=")
        if dt not in _TYPES:
            raise ConversionError(f"tensor {name!r}: dtype {dt} has no TFLite tensor type")
        raw = None
        if data is not None:
            arr = np.asarray(data)
            if arr.shape != shape:
                raise ConversionError(f"tensor {name!r}: data shape {arr.shape} != {shape}")
            if arr.dtype != dt:
                if np.issubdtype(dt, np.integer) and np.issubdtype(arr.dtype, np.integer):
                    info = np.iinfo(dt)
                    if arr.size and (arr.min() < info.min or arr.max() > info.max):
                        raise ConversionError(f"tensor {name!r}: data out of range for {dt}")
                arr = arr.astype(dt)
            raw = np.ascontiguousarray(arr).astype(dt.newbyteorder("<"), copy=False).tobytes()
        sc = zp = None
        if scale is not None:
            sc = np.atleast_1d(np.asarray(scale, dtype=np.float32)).reshape(-1)
            if sc.size == 0 or not np.all(np.isfinite(sc)) or np.any(sc <= 0):
                raise ConversionError(f"tensor {name!r}: scales must be finite and > 0")
            zp = (np.zeros(sc.size, np.int64) if zero_point is None
                  else np.atleast_1d(np.asarray(zero_point, dtype=np.int64)).reshape(-1))
            if zp.size == 1 and sc.size > 1:
                zp = np.full(sc.size, zp[0], np.int64)
            if zp.size != sc.size:
                raise ConversionError(f"tensor {name!r}: {sc.size} scales, {zp.size} zero points")
            if sc.size > 1 and not (0 <= quantized_dimension < len(shape)
                                    and shape[quantized_dimension] == sc.size):
                raise ConversionError(f"tensor {name!r}: {sc.size} scales do not match dimension "
                                      f"{quantized_dimension} of {shape}")
        elif zero_point is not None:
            raise ConversionError(f"tensor {name!r}: zero_point without scale")
        idx = len(self._tensors)
        self._tensors.append(dict(name=name, shape=shape, type=_TYPES[dt], data=raw, scale=sc,
                                  zero_point=zp, qdim=int(quantized_dimension)))
        self._names[name] = idx
        return idx

    def add_operator(self, opcode: str, inputs, outputs, *, version=None, **options) -> int:
        """Add a builtin operator (``opcode`` name as in the schema); returns its index.

        ``options`` are the snake_case builtin options (as
        :func:`wavenet_edge.tflite_file.read_tflite` returns them);
        ``version`` defaults to :data:`OPERATOR_VERSIONS` (1 for other operators).
        """
        if opcode not in _OPCODES or opcode == "CUSTOM":
            raise ConversionError(f"unknown builtin operator {opcode!r}")
        n = len(self._tensors)
        ins, outs = tuple(int(i) for i in inputs), tuple(int(i) for i in outputs)
        for i in ins:
            if not -1 <= i < n:
                raise ConversionError(f"{opcode}: input tensor index {i} out of range")
        for i in outs:
            if not 0 <= i < n:
                raise ConversionError(f"{opcode}: output tensor index {i} out of range")
        if version is not None:
            ver = int(version)
        elif opcode == "MUL" and len(ins) == 2 and len(outs) == 1:
            ver = self._mul_version(ins, outs[0])
        else:
            ver = OPERATOR_VERSIONS.get(opcode, 1)
        self._check_int8_constraints(opcode, ins, outs)
        self._ops.append((opcode, ver, ins, outs, dict(options)))
        return len(self._ops) - 1

    def _check_int8_constraints(self, opcode, ins, outs):
        """Reject int8 graphs tflite-micro refuses at Prepare time (measured / kernel checks)."""
        t = self._tensors
        if not outs or t[outs[0]]["type"] != _INT8:
            return
        out = t[outs[0]]
        if opcode in _FIXED_OUTPUT_QUANT:
            s, zp = _FIXED_OUTPUT_QUANT[opcode]
            if (out["scale"] is None or out["scale"].size != 1 or out["scale"][0] != np.float32(s)
                    or out["zero_point"][0] != zp):
                raise ConversionError(f"{opcode} output {out['name']!r}: int8 needs scale "
                                      f"{s:g}, zero point {zp}")
        if opcode == "CONCATENATION":
            if len(ins) > MAX_CONCAT_INPUTS:
                raise ConversionError(f"CONCATENATION {out['name']!r}: {len(ins)} inputs, "
                                      f"tflite-micro takes at most {MAX_CONCAT_INPUTS}")
            for i in ins:
                x = t[i]
                if x["type"] != _INT8 or x["scale"] is None or out["scale"] is None or not (
                        np.array_equal(x["scale"], out["scale"])
                        and np.array_equal(x["zero_point"], out["zero_point"])):
                    raise ConversionError(f"CONCATENATION {out['name']!r}: int8 input "
                                          f"{x['name']!r} is not quantized like the output")

    def _mul_version(self, ins, out) -> int:
        """op_version.cc: int8 MUL is version 3 when the rescale s_a*s_b/s_out is >= 1."""
        sc = [self._tensors[i]["scale"] if i >= 0 else None for i in (*ins, out)]
        if all(s is not None and s.size == 1 for s in sc):
            if float(sc[0][0]) * float(sc[1][0]) / float(sc[2][0]) >= 1.0:
                return 3
        return OPERATOR_VERSIONS["MUL"]

    def _check_indices(self, idx, what):
        idx = [int(i) for i in idx]
        for i in idx:
            if not 0 <= i < len(self._tensors):
                raise ConversionError(f"{what}: tensor index {i} out of range")
        return idx

    def set_inputs(self, inputs):
        self._inputs = self._check_indices(inputs, "graph inputs")

    def set_outputs(self, outputs):
        self._outputs = self._check_indices(outputs, "graph outputs")

    def add_metadata(self, name: str, data: bytes):
        if not isinstance(data, (bytes, bytearray)):
            raise ConversionError(f"metadata {name!r}: data must be bytes")
        if any(n == name for n, _ in self._metadata):
            raise ConversionError(f"duplicate metadata name {name!r}")
        self._metadata.append((str(name), bytes(data)))

    def tensor_index(self, name: str) -> int:
        return self._names[name]

    # -- serialization ------------------------------------------------------------------------
    def build(self, description: str = "") -> bytes:
        """Serialize to ``.tflite`` bytes."""
        total = sum(len(t["data"] or b"") for t in self._tensors)
        total += sum(len(d) for _, d in self._metadata)
        b = flatbuffers.Builder(total + 64 * len(self._tensors) + 4096)

        # Buffers: 0 empty, then one per constant tensor, then one per metadata entry.
        buf_payloads = [None]
        tensor_buf = []
        for t in self._tensors:
            if t["data"] is not None and len(t["data"]) > 0:
                tensor_buf.append(len(buf_payloads))
                buf_payloads.append(t["data"])
            else:
                tensor_buf.append(0)
        meta_buf = []
        for _, d in self._metadata:
            meta_buf.append(len(buf_payloads))
            buf_payloads.append(d)
        data_vecs = [None if p is None else _aligned_bytes(b, p) for p in buf_payloads]
        buffers = []
        for v in data_vecs:
            _schema("Buffer").BufferStart(b)
            if v is not None:
                _schema("Buffer").BufferAddData(b, v)
            buffers.append(_schema("Buffer").BufferEnd(b))

        # Tensors.
        tensors = []
        for t, bi in zip(self._tensors, tensor_buf):
            name = b.CreateString(t["name"])
            shape = _int_vector(b, t["shape"], np.int32)
            q = None
            if t["scale"] is not None:
                sc = b.CreateNumpyVector(t["scale"].astype(np.float32))
                zp = b.CreateNumpyVector(t["zero_point"].astype(np.int64))
                Q = _schema("QuantizationParameters")
                Q.QuantizationParametersStart(b)
                Q.QuantizationParametersAddScale(b, sc)
                Q.QuantizationParametersAddZeroPoint(b, zp)
                Q.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
                q = Q.QuantizationParametersEnd(b)
            T = _schema("Tensor")
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, t["type"])
            T.TensorAddBuffer(b, bi)
            T.TensorAddName(b, name)
            if q is not None:
                T.TensorAddQuantization(b, q)
            tensors.append(T.TensorEnd(b))

        # Operator codes (one per (opcode, version)) and operators.
        code_index: dict = {}
        ops = []
        for opcode, ver, ins, outs, opts in self._ops:
            ci = code_index.setdefault((opcode, ver), len(code_index))
            kind, opt_off = _options_table(b, opcode, opts)
            vin = _int_vector(b, ins, np.int32)
            vout = _int_vector(b, outs, np.int32)
            O = _schema("Operator")
            O.OperatorStart(b)
            O.OperatorAddOpcodeIndex(b, ci)
            O.OperatorAddInputs(b, vin)
            O.OperatorAddOutputs(b, vout)
            if kind:
                O.OperatorAddBuiltinOptionsType(b, kind)
                O.OperatorAddBuiltinOptions(b, opt_off)
            ops.append(O.OperatorEnd(b))
        codes = []
        for (opcode, ver) in code_index:
            code = _OPCODES[opcode]
            C = _schema("OperatorCode")
            C.OperatorCodeStart(b)
            C.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            C.OperatorCodeAddVersion(b, ver)
            C.OperatorCodeAddBuiltinCode(b, code)
            codes.append(C.OperatorCodeEnd(b))

        def table_vector(offsets):
            b.StartVector(4, len(offsets), 4)
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        S = _schema("SubGraph")
        v_tensors = table_vector(tensors)
        v_ops = table_vector(ops)
        v_in = _int_vector(b, self._inputs, np.int32)
        v_out = _int_vector(b, self._outputs, np.int32)
        sg_name = b.CreateString("main")
        S.SubGraphStart(b)
        S.SubGraphAddTensors(b, v_tensors)
        S.SubGraphAddInputs(b, v_in)
        S.SubGraphAddOutputs(b, v_out)
        S.SubGraphAddOperators(b, v_ops)
        S.SubGraphAddName(b, sg_name)
        subgraph = S.SubGraphEnd(b)

        metas = []
        for (mname, _), bi in zip(self._metadata, meta_buf):
            s = b.CreateString(mname)
            _schema("Metadata").MetadataStart(b)
            _schema("Metadata").MetadataAddName(b, s)
            _schema("Metadata").MetadataAddBuffer(b, bi)
            metas.append(_schema("Metadata").MetadataEnd(b))

        v_codes = table_vector(codes)
        v_sgs = table_vector([subgraph])
        v_bufs = table_vector(buffers)
        v_meta = table_vector(metas) if metas else None
        desc = b.CreateString(description)
        M = _schema("Model")
        M.ModelStart(b)
        M.ModelAddVersion(b, SCHEMA_VERSION)
        M.ModelAddOperatorCodes(b, v_codes)
        M.ModelAddSubgraphs(b, v_sgs)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, v_bufs)
        if v_meta is not None:
            M.ModelAddMetadata(b, v_meta)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def write_tflite(path, data: bytes) -> None:
    """Write ``data`` (from :meth:`GraphBuilder.build`) to ``path`` atomically."""
    path = os.fspath(path)
    with atomic_write(path) as f:
        f.write(data)
