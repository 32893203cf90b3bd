# Usage: python tools/bench_packed_qkv.py WIDTH ROWS (e.g. 384 1500: tiny.en's encoder; 384 1: a decoder step)
# Packed Q/K/V: three DynamicQuantizeMatMul (1500x384 . 384x384, +bias on Q and V) against one
# (384x1152) and a Split, in one interleaved loop, 2 threads.
import onnx, onnxruntime as ort, numpy as np, time
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(0); D, N = int(__import__('sys').argv[1]), int(__import__('sys').argv[2])
w = [rng.integers(0, 256, (D, D), dtype=np.uint8) for _ in range(3)]
sc = [np.float32(0.01 + 0.001 * i) for i in range(3)]
b = [rng.standard_normal(D).astype(np.float32) for _ in range(3)]
def model(packed):
    inits, nodes = [], []
    x = h.make_tensor_value_info('x', T.FLOAT, [1, N, D])
    outs = [h.make_tensor_value_info(f'y{i}', T.FLOAT, [1, N, D]) for i in range(3)]
    if packed:
        inits += [nh.from_array(np.concatenate(w, 1), 'w'), nh.from_array(np.concatenate([np.full(D, s, np.float32) for s in sc]), 's'),
                  nh.from_array(np.full(3 * D, 128, np.uint8), 'z'), nh.from_array(np.concatenate(b), 'b'),
                  nh.from_array(np.array([D] * 3, np.int64), 'sp')]
        nodes += [h.make_node('DynamicQuantizeMatMul', ['x', 'w', 's', 'z', 'b'], ['p'], domain='com.microsoft'),
                  h.make_node('Split', ['p', 'sp'], ['y0', 'y1', 'y2'], axis=2)]
    else:
        for i in range(3):
            inits += [nh.from_array(w[i], f'w{i}'), nh.from_array(np.array(sc[i], np.float32), f's{i}'),
                      nh.from_array(np.array(128, np.uint8), f'z{i}'), nh.from_array(b[i], f'b{i}')]
            nodes.append(h.make_node('DynamicQuantizeMatMul', ['x', f'w{i}', f's{i}', f'z{i}', f'b{i}'], [f'y{i}'], domain='com.microsoft'))
    g = h.make_graph(nodes, 'g', [x], outs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid('', 17), h.make_opsetid('com.microsoft', 1)], ir_version=10)
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    return ort.InferenceSession(m.SerializeToString(), so, providers=['CPUExecutionProvider'])
a, p = model(False), model(True)
feed = {'x': rng.standard_normal((1, N, D)).astype(np.float32)}
ra, rp = a.run(None, feed), p.run(None, feed)
print('max diff', max(float(np.abs(u - v).max()) for u, v in zip(ra, rp)))
ta, tp = [], []
for r in range(60):
    for s, t in ((a, ta), (p, tp)) if r % 2 else ((p, tp), (a, ta)):
        t0 = time.perf_counter(); s.run(None, feed); t.append(time.perf_counter() - t0)
print(f'D={D} N={N}: separate {1000*np.median(ta):.3f} ms, packed {1000*np.median(tp):.3f} ms')
