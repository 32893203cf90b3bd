#!/usr/bin/env bash
# Audio fixtures for tests/audio_formats.rs, made by real encoders (Debian's ffmpeg and lame); run by a
# developer, never at run time: apt-get install ffmpeg lame.
#
# From 3 s of a bundled clip (LibriVox, public domain: "he was not an ill disposed young man") it writes, in
# tests/fixtures/audio/:
#   clip.mp3 (lame), clip.m4a, clip.aac (ADTS), clip.ogg (Vorbis), clip-video.mp4 / .mov (a tiny video and
#   stereo AAC), clip-video.mkv (video and stereo Vorbis), and what must be refused: clip.opus (Ogg Opus),
#   clip-ac3.mkv (AC-3), video-only.mp4 (no audio track);
#   and for each decodable one FILE.ref.flac: ffmpeg's own decoding of it (16-bit, channels and rate kept),
#   the reference the test compares quantbench's decoding with.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/fixtures/audio
src=datasets/speech-en/librivox/sense_and_sensibility_01_austen_64kb-0880.wav
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

ff -i "$src" -t 3 -ac 1 -ar 16000 -c:a pcm_s16le "$tmp/clip.wav"
# Stereo at 44.1 kHz for the videos: the right channel delayed by 2 ms, so a mix-down is not a copy.
ff -i "$tmp/clip.wav" -filter_complex "[0:a]asplit[l][r];[r]adelay=2[rd];[l][rd]join=inputs=2:channel_layout=stereo,aresample=44100" \
    "$tmp/stereo.wav"
video=(-f lavfi -i "color=c=gray:s=64x48:r=5:d=3")

lame --quiet -b 32 "$tmp/clip.wav" "$out/clip.mp3"
ff -i "$tmp/clip.wav" -c:a aac -b:a 48k "$out/clip.m4a"
ff -i "$tmp/clip.wav" -c:a aac -b:a 48k -f adts "$out/clip.aac"
ff -i "$tmp/clip.wav" -c:a libvorbis -q:a 2 "$out/clip.ogg"
ff "${video[@]}" -i "$tmp/stereo.wav" -shortest -c:v mpeg4 -c:a aac -b:a 64k "$out/clip-video.mp4"
ff "${video[@]}" -i "$tmp/stereo.wav" -shortest -c:v mjpeg -c:a aac -b:a 64k "$out/clip-video.mov"
ff "${video[@]}" -i "$tmp/stereo.wav" -shortest -c:v mpeg4 -c:a libvorbis -q:a 2 "$out/clip-video.mkv"

ff -i "$tmp/clip.wav" -c:a libopus -b:a 24k "$out/clip.opus"
ff "${video[@]}" -i "$tmp/stereo.wav" -shortest -c:v mpeg4 -c:a ac3 -b:a 96k "$out/clip-ac3.mkv"
ff "${video[@]}" -c:v mpeg4 "$out/video-only.mp4"

for f in clip.mp3 clip.m4a clip.aac clip.ogg clip-video.mp4 clip-video.mov clip-video.mkv; do
    ff -i "$out/$f" -map 0:a:0 -c:a flac -sample_fmt s16 "$out/$f.ref.flac"
done
ls -l "$out"
