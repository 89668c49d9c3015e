#!/usr/bin/env bash
# Downloads a published whisper.cpp model by name from its Hugging Face repository, for users with
# internet access (the tests never call this). Names: tiny, tiny.en, base, base.en, small,
# small.en, medium, medium.en, large-v1, large-v2, large-v3, large-v3-turbo (and -q5_0 ... only
# once quantized files are supported).
# Usage: scripts/download-model.sh NAME [MODELS_DIR]
set -euo pipefail
name="${1:?usage: $0 NAME [MODELS_DIR]}"
dir="${2:-models}"
case "$name" in
  tiny|tiny.en|base|base.en|small|small.en|medium|medium.en|large-v1|large-v2|large-v3|large-v3-turbo) ;;
  *) echo "unknown model '$name'" >&2; exit 2 ;;
esac
mkdir -p "$dir"
url="https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-$name.bin"
echo "downloading $url" >&2
curl -fL --retry 3 -o "$dir/ggml-$name.bin.part" "$url"
mv "$dir/ggml-$name.bin.part" "$dir/ggml-$name.bin"
echo "$dir/ggml-$name.bin"
