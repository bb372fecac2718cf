#!/usr/bin/env python3
"""An independent reader of the safetensors format, written from its public specification
(https://github.com/huggingface/safetensors, "Format"), not from nasc's C++ code. It stands
in for `safetensors.torch.load_file`, which is not installed here, so that the tests show
a PyTorch user can read what nasc writes, using the standard library only.

Usage: safetensors_reader.py FILE
Prints one JSON object, {"metadata": {key: value}, "tensors": {name: {"dtype": ...,
"shape": [...], "bits": [...]}}}, where "bits" holds each F32 value's bit pattern as an
unsigned 32-bit integer (exact, NaN included). A file that breaks a rule of the format
exits with status 1 and the rule on stderr.

The rules checked, from the specification:
  - 8 bytes: N, an unsigned little-endian 64-bit integer, the header's size;
  - N bytes: a UTF-8 JSON object starting with '{' (it may be padded with trailing
    spaces), no duplicate keys; the special key "__metadata__" maps strings to strings;
    every other key is a tensor {"dtype", "shape", "data_offsets": [BEGIN, END]};
  - the rest of the file is the byte buffer; offsets are relative to its start, and the
    tensors must cover it entirely, without holes or overlap;
  - END - BEGIN is the number of elements times the dtype's size; data are little-endian.
"""
import json
import struct
import sys

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
MAX_HEADER = 100_000_000  # the reference implementation's limit


class FormatError(Exception):
    pass


def no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def load(path):
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 8:
        raise FormatError("shorter than the 8-byte header size")
    (n,) = struct.unpack_from("<Q", b, 0)
    if n > MAX_HEADER:
        raise FormatError(f"header size {n} is over {MAX_HEADER}")
    if 8 + n > len(b):
        raise FormatError(f"header size {n} is beyond the end of the file")
    raw = b[8:8 + n]
    if not raw.startswith(b"{"):
        raise FormatError("the header does not start with '{'")
    header = json.loads(raw.decode("utf-8").rstrip(" "), object_pairs_hook=no_duplicates)
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise FormatError("__metadata__ must map strings to strings")
    buffer = b[8 + n:]
    tensors = {}
    pos = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{name}: keys {sorted(info)}")
        begin, end = info["data_offsets"]
        if begin != pos:
            raise FormatError(f"{name}: starts at {begin}, the previous tensor ends at {pos}")
        numel = 1
        for d in info["shape"]:
            if not isinstance(d, int) or d < 0:
                raise FormatError(f"{name}: bad dimension {d!r}")
            numel *= d
        if info["dtype"] not in DTYPE_SIZES:
            raise FormatError(f"{name}: unknown dtype {info['dtype']!r}")
        if end - begin != numel * DTYPE_SIZES[info["dtype"]]:
            raise FormatError(f"{name}: {end - begin} bytes for shape {info['shape']}")
        if end > len(buffer):
            raise FormatError(f"{name}: ends at {end}, beyond the buffer ({len(buffer)} bytes)")
        entry = {"dtype": info["dtype"], "shape": info["shape"]}
        if info["dtype"] == "F32":
            entry["bits"] = list(struct.unpack_from(f"<{numel}I", buffer, begin))
        tensors[name] = entry
        pos = end
    if pos != len(buffer):
        raise FormatError(f"the buffer has {len(buffer) - pos} bytes after the last tensor")
    return metadata, tensors


def main():
    try:
        metadata, tensors = load(sys.argv[1])
    except (FormatError, ValueError, KeyError, TypeError, struct.error) as e:
        print(f"{sys.argv[1]}: not a valid safetensors file: {e}", file=sys.stderr)
        return 1
    json.dump({"metadata": metadata, "tensors": tensors}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
