#!/usr/bin/env python3
"""Checks ONNX files as ONNX's own tools do: the full checker and strict shape inference,
which must also infer the graph output's shape. Used by the ONNX export tests
(tests/test_onnx_export.cpp). Usage: onnx_check.py MODEL.onnx... ; exit 1 with the reason
on the first model that fails."""
import sys

import onnx


def check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    declared = [d.dim_value or d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim]
    if not declared:
        raise ValueError("the graph output has no declared shape")
    for node in inferred.graph.node:
        if not node.output:
            raise ValueError(f"node {node.name} has no output")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for path in sys.argv[1:]:
        try:
            check(path)
        except Exception as e:  # the checker's own exception types vary between versions
            print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
