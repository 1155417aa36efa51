"""The int8 arithmetic of wavenet-edge, specified once, exactly as the real runtimes compute it.

Activations are int8, per-tensor asymmetric; weights int8 symmetric per output channel; biases
int32.  Every op is parameterised by a runtime *profile* (``PROFILES``: name -> small int id passed
to jitted code):

* ``tflm`` (0): TFLite Micro reference kernels (CMSIS-NN claims the same arithmetic).
* ``litert`` (1): LiteRT builtin optimized kernels (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``)
  as built for x86-64 (NEON code paths through NEON_2_SSE, ruy GEMM, float lookup tables).
* ``litert-ref`` (2): LiteRT reference kernels (``OpResolverType.BUILTIN_REF``).
* ``xnnpack`` (3): LiteRT with its default XNNPACK delegate (``OpResolverType.BUILTIN``); ops the
  delegate does not take run on the builtin kernels (= ``litert``).

Load time (Python, from the float32 scales / int zero points stored in the model):
:func:`quantize_multiplier`, :func:`fc_params`, :func:`add_params`, :func:`mul_params`,
:func:`tanh_table`, :func:`logistic_table`, :func:`softmax_params`, and the sampler's weight table
:func:`logit_weight_table` (the SOFTMAX's exponential at temperature T, on the logits).

Per sample (jitted with :data:`wavenet_edge._jit.kernel`, callable from other numba kernels, no
allocation): :func:`requantize`, :func:`requantize_int8`, :func:`add_int8`, :func:`mul_int8`,
:func:`add_int8_vec`, :func:`mul_int8_vec`, :func:`lookup_int8`, :func:`softmax_int8`.

Each op's module docstring states the exact algorithm per profile, including which scale products
are float32 and which float64.  Runtimes that agree "almost always" still differ at rounding ties:
measured TFLM-vs-LiteRT differences per output are about 3e-4 (FC), 0.16 (ADD, NEON-path folded
shifts), 0.05 (MUL, int16 saturation), 2e-4 (LOGISTIC, mostly input scales > 2 where TFLM's input
radius saturates), 1e-6 (TANH, SOFTMAX); each profile reproduces its own runtime bit for bit.

int8 → int8 QUANTIZE (the conditioned step graph's per-layer requantization of ``cond``):
:func:`quantize_params`, :func:`quantize_int8`, tabulated by :func:`quantize_tables`.

CONCATENATION and GATHER are byte copies in every runtime (identical input/output quantization
is required by the graph contract), so they need no arithmetic here.
"""

from .activations import LOGISTIC_OUT, TANH_OUT, logistic_table, lookup_int8, tanh_table
from .elementwise import (ElementwiseParams, add_int8, add_int8_vec, add_params, mul_int8,
                          mul_int8_vec, mul_params)
from .multiplier import activation_range, quantize_multiplier
from .quantize import (QuantizeParams, quantize_int8, quantize_int8_vec, quantize_params,
                       quantize_tables)
from .requant import (LITERT, LITERT_REF, PROFILE_NAMES, PROFILES, TFLM, XNNPACK, FCParams,
                      fc_params, fold_input_offset, profile_id, requantize, requantize_int8)
from .sampling import logit_weight_table
from .softmax import (SOFTMAX_OUT, SoftmaxParams, softmax_exp_table, softmax_from_exps,
                      softmax_int8, softmax_params)

__all__ = [
    "PROFILES", "PROFILE_NAMES", "TFLM", "LITERT", "LITERT_REF", "XNNPACK", "profile_id",
    "quantize_multiplier", "activation_range",
    "FCParams", "fc_params", "fold_input_offset", "requantize", "requantize_int8",
    "ElementwiseParams", "add_params", "mul_params", "add_int8", "mul_int8",
    "add_int8_vec", "mul_int8_vec",
    "tanh_table", "logistic_table", "lookup_int8", "TANH_OUT", "LOGISTIC_OUT",
    "SoftmaxParams", "softmax_params", "softmax_int8", "softmax_exp_table",
    "softmax_from_exps", "SOFTMAX_OUT", "logit_weight_table",
    "QuantizeParams", "quantize_params", "quantize_int8", "quantize_int8_vec", "quantize_tables",
]
