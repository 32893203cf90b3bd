"""faster-whisper's language detection (and translation) of the synthesised clips: the reference for
tests/languages.rs. Usage: python tools/make_language_fixtures.py CT2_BASE_DIR FIXTURE_DIR"""
import json, sys, os
from faster_whisper.audio import decode_audio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fw_model

ct2, out = sys.argv[1], sys.argv[2]
model = fw_model.load(ct2)
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
