#include "engine/whisper/cpu_features.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/config.h"
#include "core/errors.h"

namespace sra::whisper {

Isa best_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma")) {
    return Isa::avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    // F16C has no __builtin_cpu_supports name in GCC 12; every AVX2 CPU made has it.
    return Isa::avx2;
  }
#endif
  return Isa::portable;
}

Isa active_isa() {
  static const Isa chosen = [] {
    const Isa best = best_isa();
    const std::optional<std::string> asked = Config::from_environment().get("SRA_KERNELS");
    if (!asked) return best;
    const std::string_view name(*asked);
    Isa want = best;
    if (name == "portable") {
      want = Isa::portable;
    } else if (name == "avx2") {
      want = Isa::avx2;
    } else if (name == "avx512") {
      want = Isa::avx512;
    } else {
      throw config_error("SRA_KERNELS: '" + std::string(name.substr(0, 40)) +
                         "' is not a kernel set (portable, avx2 or avx512)");
    }
    return static_cast<int>(want) <= static_cast<int>(best) ? want : best;
  }();
  return chosen;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::portable:
      return "portable";
  }
  return "portable";
}

}  // namespace sra::whisper

namespace sra::whisper {

bool amx_supported(bool bf16) {
#if defined(__x86_64__)
  static const bool granted = [] {
    unsigned a, b, c, d;
    if (active_isa() != Isa::avx512 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 24) & 1u)) return false;         // AMX-TILE
    constexpr long kRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long kTileData = 18;               // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  if (!granted) return false;
  unsigned a, b, c, d;
  __get_cpuid_count(7, 0, &a, &b, &c, &d);
  return (d >> (bf16 ? 22 : 25)) & 1u;  // AMX-BF16, AMX-INT8
#else
  (void)bf16;
  return false;
#endif
}

}  // namespace sra::whisper
