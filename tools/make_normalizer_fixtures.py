"""Reference outputs of Whisper's EnglishTextNormalizer (openai-whisper 20250625) for quantbench's port.

Writes tests/fixtures/normalizer_reference.json: [[input, expected], ...] over hand-picked rule cases, the
bundled references and the reference transcripts. Usage: python tools/make_normalizer_fixtures.py
Needs: pip install openai-whisper==20250625 --no-deps; pip install more-itertools regex
"""
import importlib.util
import json
import sys
import types

# Import whisper.normalizers without whisper/__init__.py (which needs torch).
_pkg = types.ModuleType("whisper")
_pkg.__path__ = list(importlib.util.find_spec("whisper").submodule_search_locations)
sys.modules["whisper"] = _pkg
from whisper.normalizers import EnglishTextNormalizer  # noqa: E402

CASES = [
    "Hello, World!", "I won't go; they can't.", "Mr. Smith and Dr Jones", "Um, the [inaudible] colour (sic) is grey",
    "twenty five dollars", "It costs $20 million.", "one hundred and twenty three", "the 1960s", "two point five percent",
    "Café naïve", "one oh one", "nineteen eighty four", "two thousand and twenty", "the twenty first century",
    "three and a half", "minus five degrees", "double seven", "one", "ones and twos", "five dollars and ten cents",
    "fifty per cent", "He's been there; she'd gone.", "y'all gonna wanna see", "It's 3:45 p.m. on the 4th of July",
    "£3.50 and €2", "1,000,000 people", "the year 2000s", "a quarter past eight", "Hmm, mhm, uh... okay",
    "Œuvre of Æsop", "first second third fourth fifth twelfth", "twentieth thirties", "three hundredths",
    "five million dollars", "point five", "zero zero seven", "St. Louis, Capt. Kirk, Jr.", "ma'am, let's go",
    "Rock 'n' roll", "10.5.3.1 is an address", "plus or minus", "$0.50", "1st 2nd 3rd", "two ones",
    "eleven hundred", "one hundred thousand and one", "seventy-six trombones", "theatre centre organise",
]


def main():
    items = [json.loads(l) for l in open("datasets/speech-en/manifest.jsonl")]
    ref = json.load(open("tests/fixtures/whisper_reference.json"))
    inputs = CASES + [it["text"] for it in items]
    for model in ref["transcripts"].values():
        inputs += [t["text"] for t in model.values()]
    norm = EnglishTextNormalizer()
    json.dump([[s, norm(s)] for s in inputs], open("tests/fixtures/normalizer_reference.json", "w"), indent=0, ensure_ascii=False)


main()
