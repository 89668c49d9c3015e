#include "engine/whisper/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sra::whisper {

void drop_file_pages(const void* begin, const void* end) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t first = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
  const std::uintptr_t last = reinterpret_cast<std::uintptr_t>(end) / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void return_free_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace sra::whisper
