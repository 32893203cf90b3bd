#!/usr/bin/env bash
# Speech in other languages for tests/languages.rs, synthesised by Debian's espeak-ng (run by a developer,
# never at run time: apt-get install espeak-ng ffmpeg; pip install faster-whisper==1.2.1), then
# faster-whisper's language detection of each with the CTranslate2 whisper-base from quantbench's cache
# (tests/fixtures/languages/reference.json), the reference the test compares with.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/languages
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() {
    espeak-ng -v "$1" -s 140 -w "$tmp/$1.wav" "$2"
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$tmp/$1.wav" -ar 16000 -c:a flac "$out/$1.flac"
}
say de "Guten Morgen. Das Wetter ist heute sehr schön, und wir gehen am Nachmittag in den Park."
say it "Buongiorno a tutti. Oggi il tempo è bello e andiamo a fare una passeggiata nel parco con i nostri amici."
say es "Buenos días a todos. Hoy hace buen tiempo y vamos a caminar por el parque con nuestros amigos."
ct2=$(ls -d "${QUANTBENCH_CACHE:-$HOME/.cache/quantbench}"/whisper-base/ct2* | head -1)
python3 tools/make_language_fixtures.py "$ct2" "$out"
