#!/bin/bash
# The CLI table (scripts/bench/cli_table.sh) on the GPU machine: 16 CPU cores, one H100, no Swift, no network.
# How it was run (docs/PERFORMANCE.md, "CLI end to end (issue #6)"): build here with
#   swift build -c release --static-swift-stdlib --product colgrep -Xlinker -L<folder with libcurl.so -> libcurl.so.4>
#   strip .build/release/colgrep
# then fill <repo>/.devrun/cli/ with: colgrep.xz (xz of the binary), lib/ (libopenblas.so.0.xz,
# libgfortran.so.5, libquadmath.so.0, rg.xz and libpcre2-8.so.0 of this machine's ripgrep, curl-libs.tar.xz:
# libcurl.so.4 and the libraries it needs beyond glibc), grammars/ (bundle.tar.gz and manifest.json of .deps/grammars/linux-x86_64),
# minilm/ (every small file of .deps/models/all-MiniLM-L6-v2, without model.safetensors: the weights
# are too large to carry, so random weights of the same shapes are made there with transformers — the
# timings do not depend on the values, retrieval quality is not measured here), repos.tar.xz
# (small/ = this repo's Sources, medium/ = nvim-lspconfig, large/ = the 20 eval checkouts and /usr/lib/python3.11
# together, 5,372 files),
# cli_table.sh and this script as run.sh; on the GPU machine: bash .devrun/cli/run.sh
set -u
cd "$(dirname "$0")"; D=$PWD
W=/tmp/cli; mkdir -p $W/lib $W/grammars $W/repos
python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/colgrep.xz'),open('$W/colgrep','wb'));shutil.copyfileobj(lzma.open('$D/lib/libopenblas.so.0.xz'),open('$W/lib/libopenblas.so.0','wb'))"
chmod +x $W/colgrep; cp $D/lib/*.so.* $W/lib/ 2>/dev/null; xz -dc $D/lib/rg.xz > $W/lib/rg && chmod +x $W/lib/rg
export PATH=$W/lib:$PATH
export LD_LIBRARY_PATH=$W/lib:${LD_LIBRARY_PATH:-}
# The static Swift runtime still links libcurl (FoundationNetworking, for the Hub client): carried, used
# only where the machine has none.
if ! ldconfig -p | grep -q 'libcurl.so.4 '; then mkdir -p $W/curl && tar xJf $D/lib/curl-libs.tar.xz -C $W/curl && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$W/curl; fi
tar xzf $D/grammars/bundle.tar.gz -C $W/grammars && cp $D/grammars/manifest.json $W/grammars/
tar xJf $D/repos.tar.xz -C $W/repos
cp -r $D/minilm $W/minilm
python3 - $W/minilm <<'PY'
import sys, torch
from transformers import BertConfig, BertModel
torch.manual_seed(0)
model = BertModel(BertConfig.from_pretrained(sys.argv[1]), add_pooling_layer=False)
model.save_pretrained(sys.argv[1] + "/random", safe_serialization=True)
PY
mv $W/minilm/random/model.safetensors $W/minilm/model.safetensors
export COLGREP_FALLBACK_MODEL=$W/minilm COLGREP_GRAMMARS_DIR=$W/grammars
dirs=$(find /usr/local /usr/lib /opt $(python3 -c 'import site;print(" ".join(site.getsitepackages()))' 2>/dev/null) -xdev \( -name 'libnvrtc.so.1[23]' -o -name 'libcublasLt.so.1[23]' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | paste -sd: -)
export COLGREP_CUDA_LIBRARY_PATH=$dirs
command -v rg >/dev/null || echo "no ripgrep on this machine: its column stays empty"
nproc; nvidia-smi --query-gpu=name --format=csv,noheader
# CPU only (16 threads): small and medium, cold index included.
COLGREP_FORCE_CPU=1 bash $D/cli_table.sh --binary $W/colgrep --runs ${RUNS:-5} --out $W/cpu \
  small=$W/repos/small medium=$W/repos/medium 2>&1 | tee $OUT/cpu16.md
cp $W/cpu/logs/*.err $OUT/ 2>/dev/null; (cd $W/cpu/logs && tar czf $OUT/cpu-logs.tgz .)
# Large: documents encoded on the GPU (auto routing), queries on the CPU as always.
bash $D/cli_table.sh --binary $W/colgrep --runs ${RUNS:-5} --out $W/gpu large=$W/repos/large 2>&1 | tee $OUT/large.md
(cd $W/gpu/logs && tar czf $OUT/large-logs.tgz .)
