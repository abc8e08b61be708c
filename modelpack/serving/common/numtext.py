"""float32 outputs written as JSON in their shortest round-tripping form: 0.001, not 0.0010000000474974513.

Shipped inside every generated handler; depends only on numpy. json.dumps writes a Python float (a float64) with
the fewest digits that read back as that float64; a float32 widened to float64 keeps all the digits of its exact
binary value. shortest() gives instead, for each float32, the float64 nearest its shortest decimal that reads back
as the same float32, so json.dumps writes that decimal and a client's json.loads (or JSON.parse) cast to float32
gets the output bit for bit. Small arrays go through numpy's own float32 text (the shortest, Dragon4) and back;
big ones are rounded to 1..9 significant digits in float64, keeping for each value the fewest that read back as
it (faster from about a hundred values on; unit tests check both agree on random float32 bit patterns).
"""

from __future__ import annotations

import numpy as np

POW = 10.0 ** np.arange(64)
SMALL = 128  # values up to which numpy's float32 text is the faster way


def shortest(values: np.ndarray) -> np.ndarray:
    """float32 values as the float64 numbers nearest their shortest round-tripping decimals: json.dumps then
    writes 0.001 for float32 0.001 (not 0.0010000000474974513), and json.loads of that text cast to float32 gives
    the value back, bit for bit. Other dtypes come back unchanged."""
    values = np.asarray(values)
    if values.dtype != np.float32:
        return values
    return written(values) if values.size <= SMALL else rounded(values)


def written(values: np.ndarray) -> np.ndarray:
    """shortest() for a float32 array through numpy's shortest float32 text (at most 19 characters: a sign, 16
    digits before scientific notation takes over, a point and a digit) read back as float64."""
    return values.astype("S24").astype(np.float64)


def rounded(values: np.ndarray) -> np.ndarray:
    """shortest() for a float32 array, vectorised: k significant digits, k = 1..9, the fewest that read back."""
    flat = values.reshape(-1)
    wide = flat.astype(np.float64)
    out = wide.copy()
    todo = np.flatnonzero(np.isfinite(wide) & (wide != 0))
    with np.errstate(divide="ignore"):
        top = np.floor(np.log10(np.abs(wide[todo]))).astype(np.int64)
    for digits in range(1, 10):
        if not len(todo):
            break
        power = top - digits + 1  # the candidate is mantissa * 10**power, mantissa of `digits` digits
        exact = np.abs(power) <= 22  # then one multiplication or division rounds once: the nearest float64
        scale = POW[np.minimum(np.abs(power), 63)]
        with np.errstate(over="ignore", invalid="ignore"):
            mantissa = np.rint(np.where(power >= 0, wide[todo] / scale, wide[todo] * scale))
            candidate = np.where(power >= 0, mantissa * scale, mantissa / scale)
        for i in np.flatnonzero(~exact).tolist():  # beyond 10**22: Python rounds the decimal correctly
            candidate[i] = float(f"{int(mantissa[i])}e{int(power[i])}") if np.isfinite(mantissa[i]) else wide[todo[i]]
        with np.errstate(over="ignore"):
            done = candidate.astype(np.float32) == flat[todo]
        out[todo[done]] = candidate[done]
        todo, top = todo[~done], top[~done]
    return out.reshape(values.shape)  # what is left (none, in practice) keeps its exact float64 value
