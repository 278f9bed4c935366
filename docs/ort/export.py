"""Writes the ViT-B ONNX models that docs/speed-ort.sh times: fp32, and its dynamic int8 twin.

Usage: python3 docs/ort/export.py OUT_DIR

OUT_DIR/vitb-fp32.onnx is torch.onnx.export of vitb.ViTB (opset 17, batch and token axes dynamic).
OUT_DIR/vitb-int8.onnx is that graph with every linear layer quantized the way onnxruntime's
quantize_dynamic(weight_type=QInt8) quantizes it (onnxruntime.quantization is a PyPI package, not at hand here):
  - only MatMul nodes whose B is an initializer (quantize_dynamic's default MatMulConstBOnly=True), so the
    attention products Q·Kᵀ and A·V stay fp32;
  - weights: per-tensor, symmetric int8 in [-127, 127], scale max|W|/127, zero point 0;
  - activations: DynamicQuantizeLinear (per-tensor uint8, scale and zero point computed at run time), once per
    tensor even when several MatMuls read it;
  - MatMulInteger → Cast(float) → Mul(activation scale · weight scale), the pattern that onnxruntime fuses into
    its DynamicQuantizeMatMul / MatMulIntegerToFloat kernels; the bias Add stays fp32.
OUT_DIR/check-{input,output}-1x64.bin hold a seeded input x[1,64,768] and PyTorch's fp32 output for it (raw
little-endian float32), so that bench.mjs check can test both ONNX files against PyTorch.
"""

import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitb  # noqa: E402


def export_fp32(path: str) -> None:
    """torch.onnx.export of the seeded ViT-B, batch and tokens dynamic."""
    model = vitb.ViTB().eval()
    with torch.no_grad():
        torch.onnx.export(
            model,
            (vitb.tokens_input(1, 16),),
            path,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "tokens"}, "y": {0: "batch", 1: "tokens"}},
            opset_version=17,
            do_constant_folding=True,
        )


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Per-tensor symmetric int8: scale = max|w|/127, values rounded half to even and clipped to [-127, 127]."""
    absmax = float(np.abs(w).max())
    scale = np.float32(absmax / 127.0 if absmax > 0 else 1.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def quantize_dynamic_linear(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrites every MatMul with an initializer B as quantize_dynamic does; returns the model and their count."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes, quantized_inputs, used = [], {}, set()
    count = 0
    for node in g.node:
        w_name = node.input[1] if node.op_type == "MatMul" else ""
        if w_name not in inits or len(inits[w_name].dims) != 2:
            nodes.append(node)
            used.update(node.input)
            continue
        a = node.input[0]
        if a not in quantized_inputs:
            q = (a + "_quantized", a + "_scale", a + "_zero_point")
            nodes.append(helper.make_node("DynamicQuantizeLinear", [a], list(q), name=a + "_QuantizeLinear"))
            quantized_inputs[a] = q
            used.add(a)
        a_q, a_scale, a_zp = quantized_inputs[a]
        wq, ws = quantize_weight(numpy_helper.to_array(inits[w_name]))
        g.initializer.extend(
            [
                numpy_helper.from_array(wq, w_name + "_quantized"),
                numpy_helper.from_array(np.array(ws, dtype=np.float32), w_name + "_scale"),
                numpy_helper.from_array(np.array(0, dtype=np.int8), w_name + "_zero_point"),
            ]
        )
        used.update([w_name + "_quantized", w_name + "_scale", w_name + "_zero_point"])
        out, base = node.output[0], node.name or out
        nodes += [
            helper.make_node(
                "MatMulInteger",
                [a_q, w_name + "_quantized", a_zp, w_name + "_zero_point"],
                [out + "_output_quantized"],
                name=base + "_quant",
            ),
            helper.make_node("Cast", [out + "_output_quantized"], [out + "_output_quantized_cast"], to=TensorProto.FLOAT, name=base + "_cast"),
            helper.make_node("Mul", [a_scale, w_name + "_scale"], [out + "_scales_mul"], name=base + "_scales_mul"),
            helper.make_node("Mul", [out + "_output_quantized_cast", out + "_scales_mul"], [out], name=base + "_output_scale_mul"),
        ]
        count += 1
    del g.node[:]
    g.node.extend(nodes)
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return model, count


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python3 docs/ort/export.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    fp32, int8 = os.path.join(out, "vitb-fp32.onnx"), os.path.join(out, "vitb-int8.onnx")
    export_fp32(fp32 + ".tmp")
    model = onnx.load(fp32 + ".tmp")
    onnx.checker.check_model(model)
    os.replace(fp32 + ".tmp", fp32)
    qmodel, n = quantize_dynamic_linear(model)
    if n != 4 * vitb.DEPTH:
        sys.exit(f"export.py: quantized {n} MatMuls, want {4 * vitb.DEPTH} (4 linear layers per block)")
    onnx.checker.check_model(qmodel)
    onnx.save(qmodel, int8 + ".tmp")
    os.replace(int8 + ".tmp", int8)
    x = vitb.tokens_input(1, 64)
    with torch.no_grad():
        y = vitb.ViTB().eval()(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, "check-input-1x64.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(out, "check-output-1x64.bin"))
    print(f"wrote {fp32} ({os.path.getsize(fp32) / 1e6:.0f} MB) and {int8} ({os.path.getsize(int8) / 1e6:.0f} MB, {n} linear layers int8)")


if __name__ == "__main__":
    main()
