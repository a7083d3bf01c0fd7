#!/usr/bin/env bash
# Builds the CUDA binary on a machine without a GPU or a system CUDA toolkit, for H100/H200
# (compute capability 9.0) machines with driver 580 / CUDA 13.0. The default build stays CPU-only:
# nothing here is needed for `cargo build`.
#
#   bash .ci/build-cuda.sh            # → target/release/inkling built with --features cuda
#
# What it does (each step is skipped when already done):
#   1. installs nvcc, the CUDA 13.0 headers and libraries from PyPI wheels into $CUDA_PY
#      (~1.2 GB; 13.0.x on purpose: a newer nvcc emits PTX the 580 driver rejects);
#   2. makes the unversioned library links the linker needs, and a link-time stub of
#      libcuda.so.1 (no wheel ships the driver library; the real one is loaded at run time on
#      the GPU machine) generated from the `cu*` functions cudarc declares;
#   3. builds with CUDA_COMPUTE_CAP=90 (sm_90a). A cold build takes 30-40 minutes on 2 cores.
# Run the result on the GPU machine with the libraries on LD_LIBRARY_PATH: see benches/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_PY="${CUDA_PY:-$HOME/.cache/inkling/cuda13}"

if [ ! -x "$CUDA_PY/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip install --quiet --no-deps --target "$CUDA_PY" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
fi
export CUDA_HOME="$CUDA_PY/nvidia/cu13" CUDA_ROOT="$CUDA_PY/nvidia/cu13" CUDA_PATH="$CUDA_PY/nvidia/cu13"
export PATH="$CUDA_HOME/bin:$PATH" CUDA_COMPUTE_CAP=90
lib="$CUDA_HOME/lib"

# Unversioned names for the linker.
for name in cudart nvrtc cublas cublasLt curand; do
  if [ ! -e "$lib/lib$name.so" ]; then
    real=$(ls "$lib"/lib$name.so.* 2>/dev/null | sort | tail -1 || true)
    [ -n "$real" ] && ln -sf "$(basename "$real")" "$lib/lib$name.so"
  fi
done

# A libcuda.so link stub: every cu* symbol cudarc may reference, each returning an error.
stubs="$lib/stubs"
if [ ! -e "$stubs/libcuda.so" ]; then
  mkdir -p "$stubs"
  cudarc_src=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-* 2>/dev/null | sort | tail -1)
  [ -n "$cudarc_src" ] || { cargo fetch >/dev/null; cudarc_src=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-* | sort | tail -1); }
  grep -rhoE '\bcu[A-Z][A-Za-z0-9_]+\b' "$cudarc_src/src/driver/sys" | sort -u \
    | awk '{ printf "int %s(void) { return 999; }\n", $1 }' > "$stubs/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda_stub.c"
  ln -sf libcuda.so "$stubs/libcuda.so.1"
fi
export LIBRARY_PATH="$lib:$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"

cargo build --release --features cuda --bin inkling
strip -o target/release/inkling-cuda target/release/inkling
ls -la target/release/inkling-cuda
echo "built target/release/inkling-cuda (sm_90a); needs libcuda (driver), libcublas, libcurand, libcudart at run time"
