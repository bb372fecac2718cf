#!/usr/bin/env python3
"""nasc's TensorBoard event files, read back by a decoder nasc did not write: Python code
that Debian's protoc generates from TensorBoard's event schema
(tests/tensorboard/tensorboard_event.proto), and protoc's own C++ decoder.

A small `nasc search` writes an event file. Every record's framing and CRC32C are checked
(TFRecord: length, masked CRC of the length, data, masked CRC of the data); every Event
must decode, re-encode to the same bytes (no unknown or misnumbered field survives that),
and protoc --decode must print the same event. The first Event names the file version;
every other one is a scalar whose tag, step and value are a number of metrics.jsonl.

    tfevents_protoc_check.py NASC_BINARY PROTOC
"""
import glob
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "tensorboard")
SCHEMA = "tensorboard_event.proto"

SPACE = """
network tiny(x: tensor[1, 8, 8], width: int = 4) {
  let h = choice "op" { conv: conv(x, 1, kernel=3, pad=1), pool: max_pool(x, 3, stride=1, pad=1) };
  return linear(global_avg_pool(relu(conv(h, width, kernel=1))), 3);
}
"""

CONFIG = {
    "epochs": 3, "seed": 5, "threads": 1,
    "data": {"name": "synthetic", "synthetic_samples": 192, "synthetic_classes": 3,
             "batch_size": 32},
}


def crc32c(data):
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError("%s: a truncated record header at byte %d" % (path, at))
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if length_crc != masked(crc32c(data[at:at + 8])):
            raise ValueError("%s: the length CRC of the record at byte %d is wrong" % (path, at))
        body = data[at + 12:at + 12 + length]
        if len(body) != length or at + 16 + length > len(data):
            raise ValueError("%s: a truncated record at byte %d" % (path, at))
        (body_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if body_crc != masked(crc32c(body)):
            raise ValueError("%s: the data CRC of the record at byte %d is wrong" % (path, at))
        yield at, body
        at += 16 + length


def generated_module(protoc, out_dir):
    subprocess.run([protoc, "-I", SCHEMA_DIR, "--python_out=" + out_dir, SCHEMA], check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module(SCHEMA.replace(".proto", "_pb2"))


def protoc_text(protoc, body):
    r = subprocess.run([protoc, "-I", SCHEMA_DIR, "--decode=tensorboard.Event", SCHEMA],
                       input=body, capture_output=True, check=True)
    return r.stdout.decode()


def expected_scalars(metrics_path):
    """{(tag, step): float32 value} for every number of metrics.jsonl but the epoch."""
    expected = {}
    with open(metrics_path) as f:
        for line in f:
            record = json.loads(line)
            for key, value in record.items():
                if key != "epoch" and isinstance(value, (int, float)) \
                        and not isinstance(value, bool):
                    rounded = struct.unpack("<f", struct.pack("<f", value))[0]
                    expected[("search/" + key, record["epoch"])] = rounded
    return expected


def check_events(protoc, pb, event_file, metrics_path):
    failures = []
    expected = expected_scalars(metrics_path)
    seen = {}
    from google.protobuf import text_format
    for index, (offset, body) in enumerate(records(event_file)):
        where = "record %d (byte %d)" % (index, offset)
        event = pb.Event()
        event.ParseFromString(body)
        if event.SerializeToString() != body:
            failures.append(where + ": re-encoding the decoded Event gives other bytes")
        if index < 3 and text_format.Parse(protoc_text(protoc, body), pb.Event()) != event:
            failures.append(where + ": protoc --decode reads another Event")
        if index == 0:
            if event.WhichOneof("what") != "file_version" or \
                    event.file_version != "brain.Event:2":
                failures.append(where + ": the first Event is not file_version brain.Event:2")
            continue
        if event.WhichOneof("what") != "summary" or len(event.summary.value) != 1:
            failures.append(where + ": not a summary of one value")
            continue
        value = event.summary.value[0]
        if value.WhichOneof("value") != "simple_value":
            failures.append(where + ": %r is not a simple_value scalar" % value.tag)
            continue
        if event.wall_time < 1.5e9:
            failures.append(where + ": wall_time %r is not a Unix time" % event.wall_time)
        seen[(value.tag, event.step)] = value.simple_value
    if seen != expected:
        missing = sorted(set(expected) - set(seen))[:5]
        extra = sorted(set(seen) - set(expected))[:5]
        differ = [k for k in expected if k in seen and seen[k] != expected[k]][:5]
        failures.append("the scalars differ from metrics.jsonl: missing %s, extra %s, other "
                        "values %s" % (missing, extra, differ))
    return failures, len(seen)


def main():
    nasc, protoc = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="nasc_tfevents_") as tmp:
        pb = generated_module(protoc, tmp)
        space, config, run = (os.path.join(tmp, n) for n in ("tiny.nas", "cfg.json", "run"))
        with open(space, "w") as f:
            f.write(SPACE)
        with open(config, "w") as f:
            json.dump(CONFIG, f)
        r = subprocess.run([nasc, "search", space, "-c", config, "-o", run],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            print("FAIL: nasc search exited", r.returncode)
            return 1
        files = glob.glob(os.path.join(run, "events.out.tfevents.*"))
        if len(files) != 1:
            print("FAIL: expected one event file in the run folder, found", files)
            return 1
        failures, scalars = check_events(protoc, pb, files[0],
                                         os.path.join(run, "metrics.jsonl"))
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("%s: %d scalars decoded by protoc's generated code, equal to metrics.jsonl"
              % (os.path.basename(files[0]), scalars))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
