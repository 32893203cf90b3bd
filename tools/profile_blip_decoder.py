# Usage: python tools/profile_blip_decoder.py FOLDER/text_decoder_with_past.onnx: ORT profile of one step (T = 577 image states, past 8), 2 threads
import onnxruntime as ort, numpy as np, json, sys, collections
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.enable_profiling = True
s = ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])
print([o.name for o in s.get_outputs()][:3])
rng = np.random.default_rng(0); T, past = 577, 8
feed = {'input_ids': np.array([[7]], np.int64), 'attention_mask': np.ones((1, past + 1), np.int64),
        'encoder_hidden_states': rng.standard_normal((1, T, 768)).astype(np.float32),
        'encoder_attention_mask': np.ones((1, T), np.int64)}
for i in s.get_inputs():
    if i.name.startswith('past'): feed[i.name] = rng.standard_normal((1, 12, past, 64)).astype(np.float32)
o = s.run(None, feed); print(o[0].shape, o[0].ravel()[:4])
for _ in range(10): s.run(None, feed)
p = s.end_profiling()
ev = json.load(open(p)); agg = collections.Counter(); byname = collections.Counter()
for e in ev:
    if e.get('cat') == 'Node' and e['name'].endswith('kernel_time'):
        agg[e['args']['op_name']] += e['dur']; byname[e['name']] += e['dur']
tot = sum(agg.values())
for k, v in agg.most_common(8): print(k, round(v / 11 / 1000, 2), 'ms', round(100 * v / tot), '%')
for k, v in byname.most_common(8): print(k, round(v / 11 / 1000, 2))
