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

}  // namespace sra::whisper
