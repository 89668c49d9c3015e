// Giving memory back to the system: the engine's two ways of keeping its resident set to what
// the current phase of a window needs (the encoder's work and the decoder's caches are not held
// at the same time).
//
// Both only change what is resident, never what any pointer reads: safe to call from any thread
// at any time.
#pragma once

namespace sra::whisper {

// The pages wholly inside [begin, end) of a read-only private file mapping leave the process's
// memory; read again, they come back from the file.
void drop_file_pages(const void* begin, const void* end);

// The allocator hands the free pages it holds back to the system (glibc: malloc_trim), after a
// phase that freed large buffers which the next phase will not reuse.
void return_free_heap();

}  // namespace sra::whisper
