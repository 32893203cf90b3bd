# Usage: python tools/profile_whisper.py MODEL_FOLDER ENCODER_RUNS DECODER_STEPS (ONNX Runtime 1.31.1 from PyPI; 2 threads)
# ORT profile of a Whisper folder: encoder (runs) and decoder_with_past step (steps, 32-token cache).
import onnxruntime as ort, numpy as np, json, sys, collections, os
folder, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
def profile(path, feed, n):
    so2 = ort.SessionOptions(); so2.intra_op_num_threads = 2; so2.enable_profiling = True
    so2.profile_file_prefix = os.path.join(os.environ.get('TMPDIR', '/tmp'), os.path.basename(path))
    s = ort.InferenceSession(path, so2, providers=['CPUExecutionProvider'])
    for _ in range(n + 2): s.run(None, feed)
    ev = json.load(open(s.end_profiling()))
    runs_ = [e for e in ev if e.get('cat') == 'Session' and e['name'] == 'model_run']
    skip_until = runs_[1]['ts'] + runs_[1]['dur']   # drop the first two runs
    agg, cnt = collections.Counter(), collections.Counter()
    for e in ev:
        if e.get('cat') == 'Node' and e['name'].endswith('kernel_time') and e['ts'] > skip_until:
            agg[e['args']['op_name']] += e['dur']; cnt[e['args']['op_name']] += 1
    wall = np.median([r['dur'] for r in runs_[2:]]) / 1000
    tot = sum(agg.values()) / n / 1000
    print(f'{os.path.basename(path)}: model_run median {wall:.2f} ms, kernels {tot:.2f} ms per run')
    for k, v in agg.most_common(9):
        print(f'  {k} ({cnt[k] // n}) {v / n / 1000:.2f} ms {100 * v / n / 1000 / tot:.0f} %')
enc = os.path.join(folder, 'encoder_model.onnx')
profile(enc, {'input_features': rng.standard_normal((1, 80, 3000)).astype(np.float32)}, runs)
dec = os.path.join(folder, 'decoder_with_past_model.onnx')
s = ort.InferenceSession(dec, providers=['CPUExecutionProvider'])
feed = {'input_ids': np.array([[50257]], np.int64)}
for i in s.get_inputs():
    if i.name.startswith('past'):
        heads, d = i.shape[1], i.shape[3]
        n = 1500 if '.encoder.' in i.name else 32
        feed[i.name] = rng.standard_normal((1, heads, n, d)).astype(np.float32)
    elif i.name != 'input_ids':
        print('unexpected input', i.name)
profile(dec, feed, steps)
