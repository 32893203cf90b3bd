"""Reference fixtures for quantbench's Whisper tests (run by a developer, never at run time).

Produces tests/fixtures/whisper_reference.json:
  * `mel`: log-mel features of one bundled clip computed by faster-whisper 1.2.1's numpy FeatureExtractor
    (independent of our Rust code): shape, global stats and sampled values.
  * `transcripts`: CTranslate2 greedy decoding (beam_size=1, suppress_blank, suppress_tokens=[-1]) of the
    bundled 16 kHz clips with faster-whisper's padding convention: +160 samples before the STFT, the last
    frame dropped, the window zero-padded to 3000 frames (faster_whisper.audio.pad_or_trim).

Usage: python tools/make_whisper_fixtures.py CT2_TINY_DIR [CT2_BASE_DIR]
Needs: pip install faster-whisper==1.2.1 ctranslate2 (brings numpy, av).
"""
import json, sys, wave
import numpy as np
import ctranslate2
import av
from faster_whisper.feature_extractor import FeatureExtractor
from faster_whisper.audio import pad_or_trim

MANIFEST = "datasets/speech-en/manifest.jsonl"


def load16k(path):
    if path.endswith(".wav"):
        with wave.open(path) as w:
            if w.getframerate() != 16000 or w.getsampwidth() != 2 or w.getnchannels() != 1:
                return None
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    with av.open(path) as c:
        s = c.streams.audio[0]
        if s.rate != 16000:
            return None
        frames = [f.to_ndarray() for f in c.decode(s)]
        a = np.concatenate(frames, axis=-1)
        if a.dtype == np.int16 or a.dtype == np.dtype("<i2"):
            return a.reshape(-1).astype(np.float32) / 32768.0
        if a.dtype == np.int32:
            return a.reshape(-1).astype(np.float32) / 2147483648.0
        return a.reshape(-1).astype(np.float32)


def main():
    items = [json.loads(l) for l in open(MANIFEST)]
    fe = FeatureExtractor(feature_size=80)
    out = {"generator": "tools/make_whisper_fixtures.py (faster-whisper 1.2.1, ctranslate2 %s)" % ctranslate2.__version__,
           "transcripts": {}}
    mel_done = False
    for name, ct2_dir in zip(["whisper-tiny.en", "whisper-base"], sys.argv[1:]):
        model = ctranslate2.models.Whisper(ct2_dir, device="cpu", compute_type="float32")
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(ct2_dir + "/tokenizer.json")
        multilingual = model.is_multilingual
        prompt_tokens = ["<|startoftranscript|>"] + (["<|en|>", "<|transcribe|>"] if multilingual else []) + ["<|notimestamps|>"]
        prompt = [tok.token_to_id(t) for t in prompt_tokens]
        res = {}
        for it in items:
            path = "datasets/speech-en/" + it["audio"]
            audio = load16k(path)
            if audio is None:
                continue
            feats = fe(audio, padding=160)
            content = feats[:, :-1]
            if not mel_done:
                out["mel"] = {
                    "audio": it["audio"], "shape": list(feats.shape),
                    "max": float(feats.max()), "mean": float(feats.mean()), "min": float(feats.min()),
                    "samples": [[m, f, float(feats[m, f])] for m, f in [(0, 0), (10, 5), (40, 100), (79, 200), (20, feats.shape[1] - 2), (5, 57), (60, 333)]],
                }
                mel_done = True
            ids = []
            for seek in range(0, content.shape[1], 3000):
                seg = pad_or_trim(content[:, seek:seek + 3000])
                r = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(seg[None])), [prompt],
                                   beam_size=1, suppress_blank=True, suppress_tokens=[-1], max_length=224)
                ids.extend(r[0].sequences_ids[0])
            res[it["audio"]] = {"ids": ids, "text": tok.decode(ids, skip_special_tokens=True).strip()}
            print(name, it["audio"], res[it["audio"]]["text"], flush=True)
        out["transcripts"][name] = res
    json.dump(out, open("tests/fixtures/whisper_reference.json", "w"), indent=1)


main()
