"""The safetensors file format, read and written with numpy (no torch, no extra package).

A file is: 8 bytes, the little-endian u64 length n of a JSON header; n bytes
of JSON, {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
"__metadata__": {str: str}}; then the tensors' bytes, little-endian, C order,
offsets relative to the end of the header (https://github.com/huggingface/safetensors).
bfloat16 ("BF16") arrays come back as ml_dtypes.bfloat16 (installed with jax).
tests/hf checks these functions against the `safetensors` package.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import ml_dtypes
import numpy as np

DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {v: k for k, v in DTYPES.items()}
_MAX_HEADER = 100 * 2**20  # the reference implementation's limit


class SafetensorsError(ValueError):
    """A file that is not valid safetensors; the message names the file and the fault."""


def load_file(path: str) -> dict[str, np.ndarray]:
    """{name: array} of a .safetensors file (arrays are copies, safe to keep)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError(f"{path} is too short to be safetensors ({len(raw)} bytes).")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise SafetensorsError(f"{path}: header length {n} does not fit the file.")
    try:
        header = json.loads(raw[8 : 8 + n])
    except ValueError as err:
        raise SafetensorsError(f"{path}: the header is not JSON ({err}).") from None
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise SafetensorsError(
                f"{path}: {name} has dtype {info['dtype']}; readable: {sorted(DTYPES)}."
            )
        dtype, shape = DTYPES[info["dtype"]], tuple(info["shape"])
        begin, end = info["data_offsets"]
        if end > len(data) or end - begin != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
            raise SafetensorsError(
                f"{path}: the offsets of {name} do not fit its shape or the file."
            )
        out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
    return out


def save_file(
    tensors: Mapping[str, np.ndarray], path: str, metadata: Mapping[str, str] | None = None
) -> None:
    """Writes {name: array} as safetensors (tensors in name order, 8-byte aligned header)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        code = _CODES.get(array.dtype.newbyteorder("<"))
        if code is None:
            raise SafetensorsError(f"{name}: dtype {array.dtype} has no safetensors code.")
        blob = array.astype(DTYPES[code], copy=False).tobytes()
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors start 8-byte aligned, as the reference writes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
