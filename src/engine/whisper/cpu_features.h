// The instruction sets the engine's kernels are built for (simd_kernels.h) and which of them
// this CPU runs. The choice is made once per process:
// the best set the CPU and the operating system support, or a lower one named by the
// environment variable SRA_KERNELS (portable, avx2, avx512) for tests and benchmarks; naming a
// set the CPU lacks falls back to the best it has, any other name is refused. Thread-safe.
#pragma once

namespace sra::whisper {

enum class Isa { portable, avx2, avx512 };

// The best set this CPU runs.
Isa best_isa();
// The set the kernels use in this process (SRA_KERNELS, else best_isa()). Throws
// sra::Error(config) naming SRA_KERNELS for a name that is not a set (every call, until fixed).
Isa active_isa();
const char* isa_name(Isa isa);

// Whether this process may use AMX tiles with `bf16` (AMX-BF16) or int8 (AMX-INT8) products:
// the active set is avx512, the CPU has AMX-TILE and that type, and the kernel granted the
// process the tiles' state (Linux asks each process to request it: done once, on first call).
bool amx_supported(bool bf16);

}  // namespace sra::whisper
