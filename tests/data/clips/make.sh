#!/bin/sh
# The speech clips the tests use: one second each, 16 kHz mono 16-bit PCM, cut with sox from the
# workspace's espeak-ng clips (/work/shared/audio, see its README for voices and texts).
# Run from the repository root: sh tests/data/clips/make.sh
set -e
src=${SPEECH_SRC:-/work/shared/audio}
out=tests/data/clips
sox "$src/speech_a.16k.wav" -r 16000 -c 1 -b 16 "$out/speech_a.wav" trim 0 1
sox "$src/speech_b.16k.wav" -r 16000 -c 1 -b 16 "$out/speech_b.wav" trim 0 1
sox "$src/speech_c.16k.wav" -r 16000 -c 1 -b 16 "$out/speech_c.wav" trim 0 1
sox "$src/speech_b.16k.wav" -r 16000 -c 1 -b 16 "$out/speech_d.wav" trim 3 1
