"""faster-whisper's long-form transcription of the composed recordings: the reference for tests/longform.rs.
Usage: python tools/make_longform_reference.py CACHE_DIR WAV_DIR OUT_JSON"""
import json, os, sys, time
from faster_whisper.audio import decode_audio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fw_model

cache, wavs, out = sys.argv[1], sys.argv[2], sys.argv[3]
ref = {
    "faster_whisper": "1.2.1",
    "options": "beam_size=1, without_timestamps=False, condition_on_previous_text=True, language=en, "
    "default temperatures (0.0 … 1.0), compression_ratio_threshold=2.4, log_prob_threshold=-1.0, "
    "no_speech_threshold=0.6, compute_type=float32, cpu_threads=2",
    "models": {},
}
for name in ["whisper-tiny.en", "whisper-base"]:
    model = fw_model.load(os.path.join(cache, name, "ct2"))
    recordings = {}
    for wav in sorted(f for f in os.listdir(wavs) if f.endswith(".wav")):
        audio = decode_audio(os.path.join(wavs, wav), sampling_rate=16000)
        began = time.perf_counter()
        segments, _ = model.transcribe(audio, beam_size=1, without_timestamps=False, language="en",
                                       condition_on_previous_text=True)
        segments = list(segments)
        seconds = time.perf_counter() - began
        recordings[wav[:-4]] = {
            "compute_s": round(seconds, 2),
            "segments": [{"seek": s.seek, "start": round(s.start, 2), "end": round(s.end, 2), "text": s.text,
                          "tokens": s.tokens, "temperature": s.temperature,
                          "avg_logprob": round(s.avg_logprob, 4),
                          "compression_ratio": round(s.compression_ratio, 4),
                          "no_speech_prob": round(s.no_speech_prob, 4)} for s in segments],
        }
        print(name, wav, f"{seconds:.1f} s", len(segments), "segments", file=sys.stderr)
    ref["models"][name] = recordings
with open(out, "w") as f:
    json.dump(ref, f, indent=1, ensure_ascii=False)
    f.write("\n")
