"""numpy's own compiled loop of a float64 ufunc, called from kernels (:mod:`mgenv._jit`).

Why: a kernel must give numpy's numbers bit for bit, and for a transcendental function
numpy's numbers depend on the machine. numba calls the C library's ``log1p``; numpy's ufunc
does too, except where it has a vectorised loop of its own (with AVX-512, for instance),
which rounds some results differently (1,005 of 12,800 uniforms' ``log1p(-u)`` on an AVX-512
Xeon). Where they differ, a kernel that needs numpy's ``log1p`` would have to stop, let
numpy compute it, and be called again: ~2-3 µs per env step of calls for 48 numbers.
Calling numpy's loop itself from the kernel gives numpy's numbers on every machine, by
construction, at the cost of the loop (~0.1 µs for 48 numbers).

How: a ufunc keeps its inner loops in its C struct (``PyUFuncObject`` of numpy's public
header ``ufuncobject.h``: ``functions``, ``data``, ``ntypes``, ``name``, ``types``), already
set to the variant for this CPU when numpy was imported; numpy's own call of ``np.log1p``
on a float64 array runs ``functions[i](args, dimensions, steps, data[i])`` for the first
``i`` whose types are ``d->d``. :func:`unary_loop` reads that entry, after checking that the
struct holds what the Python attributes say (``nin``, ``nout``, ``nargs``, ``ntypes``, the
name and the type codes), and :func:`log1p_loop` keeps it only if calling it gives
``np.log1p``'s numbers, bit for bit, on 65,536 uniforms and special values. Otherwise (a
layout it does not recognise, another Python implementation, numba missing) it returns
None and the callers keep their other paths. :func:`call_unary` is the numba intrinsic a
kernel calls the loop with (its address a runtime argument, so kernels stay cacheable).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mgenv import _jit

F64 = NDArray[np.float64]
_PTR = ctypes.sizeof(ctypes.c_void_p)


def unary_loop(ufunc: np.ufunc, dtype: type = np.float64) -> tuple[int, int] | None:
    """``(address, data)`` of the inner loop numpy runs for ``ufunc`` on ``dtype`` -> ``dtype``.

    Read from the ufunc's C struct (CPython, 64-bit): the first loop whose input and output
    types are ``dtype``'s, as numpy's type resolution picks it. None if the struct does not
    hold what the ufunc's Python attributes say (another layout) or there is no such loop.
    Nothing is called here; :func:`log1p_loop` checks a loop's numbers before use.
    """
    if sys.implementation.name != "cpython" or _PTR != 8 or type(ufunc) is not np.ufunc:
        return None
    if (ufunc.nin, ufunc.nout) != (1, 1):
        return None
    base = id(ufunc) + object.__basicsize__  # after PyObject_HEAD
    ints = (ctypes.c_int * 4).from_address(base)  # nin, nout, nargs, identity
    # functions, data; then ntypes (int) and reserved1 (int); then name, types
    ptrs = (ctypes.c_void_p * 2).from_address(base + 16)
    ntypes = ctypes.c_int.from_address(base + 32).value
    functions, data_at = ptrs
    if (ints[0], ints[1], ints[2], ntypes) != (1, 1, 2, ufunc.ntypes) or not functions:
        return None
    name_at, types_at = (ctypes.c_void_p * 2).from_address(base + 40)
    if not name_at or not types_at or ctypes.string_at(name_at) != ufunc.__name__.encode():
        return None
    codes = ctypes.string_at(types_at, 2 * ntypes)  # type numbers, (input, output) per loop
    chars = [np.dtype(c).num for sig in ufunc.types for c in sig.split("->")]
    if list(codes) != chars:
        return None
    num = np.dtype(dtype).num
    for i in range(ntypes):
        if codes[2 * i] == num and codes[2 * i + 1] == num:
            address = ctypes.c_void_p.from_address(functions + _PTR * i).value
            data = ctypes.c_void_p.from_address(data_at + _PTR * i).value if data_at else 0
            return (address, data or 0) if address else None
    return None


def _make_call_unary() -> Any:
    """The numba intrinsic ``call_unary(address, data, src, dst, n)`` (see :func:`call_unary`)."""
    ir: Any = importlib.import_module("llvmlite.ir")
    cgutils: Any = importlib.import_module("numba.core.cgutils")
    types: Any = importlib.import_module("numba.core.types")
    intrinsic: Any = importlib.import_module("numba.core.extending").intrinsic

    def f64_vector(ty: Any) -> bool:
        return isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.float64

    def typer(typingctx: Any, address: Any, data: Any, src: Any, dst: Any, n: Any) -> Any:
        ints = all(isinstance(t, types.Integer) for t in (address, data, n))
        if not (ints and f64_vector(src) and f64_vector(dst) and dst.mutable):
            return None
        sig = types.void(address, data, src, dst, n)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            address_v, data_v, src_v, dst_v, n_v = args
            i8p = ir.IntType(8).as_pointer()
            i64 = ir.IntType(64)
            arrays = [
                context.make_array(ty)(context, builder, v)
                for ty, v in zip(signature.args[2:4], (src_v, dst_v), strict=True)
            ]
            # the loop's arguments: char *args[2], npy_intp dimensions[1], npy_intp steps[2]
            pointers = cgutils.alloca_once(builder, i8p, size=2)
            steps = cgutils.alloca_once(builder, i64, size=2)
            for k, a in enumerate(arrays):
                at = ir.Constant(i64, k)
                builder.store(builder.bitcast(a.data, i8p), builder.gep(pointers, [at]))
                stride = cgutils.unpack_tuple(builder, a.strides, 1)[0]
                builder.store(builder.sext(stride, i64), builder.gep(steps, [at]))
            dims = cgutils.alloca_once(builder, i64)
            builder.store(builder.sext(n_v, i64) if n_v.type.width < 64 else n_v, dims)
            loop_ty = ir.FunctionType(
                ir.VoidType(), [i8p.as_pointer(), i64.as_pointer(), i64.as_pointer(), i8p]
            )
            loop = builder.inttoptr(address_v, loop_ty.as_pointer())
            builder.call(loop, [pointers, dims, steps, builder.inttoptr(data_v, i8p)])
            return context.get_dummy_value()

        return sig, codegen

    return intrinsic(typer)


def _no_numba(address: int, data: int, src: F64, dst: F64, n: int) -> None:
    raise RuntimeError("call_unary runs in compiled kernels only (numba is not available)")


#: ``call_unary(address, data, src, dst, n)``, in a kernel: ``dst[:n] = ufunc(src[:n])`` by the
#: loop :func:`unary_loop` found (1-d float64 arrays of at least n elements, any strides;
#: ``src`` may be ``dst`` itself, but must not overlap it otherwise: numpy's vectorised loops
#: then fall back to their scalar code, whose numbers may differ).
call_unary: Any = _make_call_unary() if _jit.AVAILABLE else _no_numba


@_jit.kernel
def _negated_log1p(address: int, data: int, u: F64) -> F64:
    """``np.log1p(-u)`` as a kernel computes it with numpy's loop: negated, then in place."""
    out = np.empty(u.size, dtype=np.float64)
    for k in range(u.size):
        out[k] = -u[k]
    call_unary(address, data, out, out, u.size)
    return out


def gives_numpys_log1p(negated_log1p: Callable[[F64], F64]) -> bool:
    """Whether ``negated_log1p(u)`` is ``np.log1p(-u)`` bit for bit (signs of zeros included).

    On 65,536 uniforms, negated as the network's jitters are, and on special values. The
    check of both ways a kernel can take numpy's ``log1p``: numpy's loop
    (:func:`log1p_loop`) and the C library's (``kernels_pbft.log1p_matches_numpy``).
    """
    u = np.random.default_rng(0).random(1 << 16)
    u[:8] = (0.0, -0.0, 0.5, 1.0 - 2.0**-53, 2.0**-60, 2.0**-1074, -1.0, 1e300)
    with np.errstate(all="ignore"):
        want = np.log1p(-u)
        got = negated_log1p(u)
    same = np.array_equal(got, want, equal_nan=True)
    return same and np.array_equal(np.signbit(got), np.signbit(want))


@functools.cache
def log1p_loop() -> tuple[int, int] | None:
    """The float64 ``log1p`` loop of numpy, ``(address, data)``, if a kernel can call it.

    None without numba or where :func:`unary_loop` does not find it, or where calling it
    does not give ``np.log1p``'s numbers (:func:`gives_numpys_log1p`).
    """
    if not _jit.AVAILABLE:
        return None
    found = unary_loop(np.log1p)
    if found is None:
        return None
    address, data = found
    return found if gives_numpys_log1p(lambda u: _negated_log1p(address, data, u)) else None
