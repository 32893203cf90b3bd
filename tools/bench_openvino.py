#!/usr/bin/env python3
# usage: RUNS=10 python3 tools/bench_openvino.py FP32_DIR DYNAMIC_DIR STATIC_DIR  (pip install onnxruntime==1.31.1 openvino nncf)
import numpy as np
def make_feeds(sess0):
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess0.get_inputs():
        shape = []
        for d in i.shape:
            if isinstance(d, int): shape.append(d)
            elif "encoder" in str(d) or "1500" in str(d): shape.append(1500)
            elif "past" in str(d) or "sequence" in str(d).lower(): shape.append(32)
            else: shape.append(1)
        if i.name == "input_ids": feeds[i.name] = np.array([[50257]], np.int64)
        elif "encoder.key" in i.name or "encoder.value" in i.name:
            shape[2] = 1500; feeds[i.name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        elif "past_key_values" in i.name:
            shape[2] = 32; feeds[i.name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        elif i.type == "tensor(float)": feeds[i.name] = (rng.standard_normal(shape)).astype(np.float32)
        else: feeds[i.name] = np.zeros(shape, np.int64)
    return feeds
# Speed beside OpenVINO + NNCF on this machine: Whisper encoder and one decoder step (32-token cache),
# every arm once per round, order rotated. OV INT8 is nncf.quantize (static, transformer preset, SmoothQuant)
# calibrated on the arms' own inputs: speed only, its accuracy is not measured here.
import sys, os, time, numpy as np, onnxruntime as ort, openvino as ov, nncf
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

fp32, dyn, st = sys.argv[1], sys.argv[2], sys.argv[3]
R = int(os.environ.get("RUNS", "20"))
core = ov.Core()
cfg = {"INFERENCE_NUM_THREADS": 2, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
print("OV", ov.__version__, "NNCF", nncf.__version__, "inference precision", core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
def ort_sess(p):
    so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.inter_op_num_threads = 1
    return ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
def ov_int8(path, feeds_list, alpha):
    m = core.read_model(path)
    q = nncf.quantize(m, nncf.Dataset(feeds_list), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds_list),
        advanced_parameters=AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha)))
    return core.compile_model(q, "CPU", cfg)
def bench(name, arms, feeds, out):
    times = {k: [] for k in arms}
    keys = list(arms)
    for r in range(R):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k in order:
            t = time.perf_counter(); arms[k](feeds); times[k].append(time.perf_counter() - t)
    base = np.median(times["ort fp32"])
    for k in keys:
        med = np.median(times[k])
        print(f"{name:14s} {k:24s} median {med*1000:8.2f} ms  ×{base/med:5.2f}")
rng = np.random.default_rng(0)
# encoder
enc = lambda d: os.path.join(d, "encoder_model.onnx")
x = (rng.standard_normal((1, 80, 3000)) * 0.5).astype(np.float32)
calib = [{"input_features": (rng.standard_normal((1, 80, 3000)) * 0.5).astype(np.float32)} for _ in range(8)]
arms = {}
for label, d in [("ort fp32", fp32), ("quantbench dynamic", dyn), ("quantbench static", st)]:
    s = ort_sess(enc(d)); arms[label] = (lambda s: lambda f: s.run(None, f))(s)
ovf = core.compile_model(core.read_model(enc(fp32)), "CPU", cfg); arms["openvino fp32"] = lambda f: ovf(f)
ovq = ov_int8(enc(fp32), calib, 0.5); arms["openvino+nncf int8"] = lambda f: ovq(f)
for a in arms.values(): a({"input_features": x})
bench("encoder", arms, {"input_features": x}, None)
# decoder step
dec = lambda d: os.path.join(d, "decoder_with_past_model.onnx")
s0 = ort_sess(dec(fp32)); feeds = make_feeds(s0)
arms = {"ort fp32": lambda f: s0.run(["logits"], f)}
for label, d in [("quantbench dynamic", dyn), ("quantbench static", st)]:
    s = ort_sess(dec(d)); arms[label] = (lambda s: lambda f: s.run(["logits"], f))(s)
ovd = core.compile_model(core.read_model(dec(fp32)), "CPU", cfg); arms["openvino fp32"] = lambda f: ovd(f)
cal = [{k: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.1 if v.dtype == np.float32 else v) for k, v in feeds.items()} for _ in range(8)]
ovdq = ov_int8(dec(fp32), cal, 0.95); arms["openvino+nncf int8"] = lambda f: ovdq(f)
for a in arms.values(): a(feeds)
R *= 10
bench("decoder step", arms, feeds, None)
