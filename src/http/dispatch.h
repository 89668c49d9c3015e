// dispatch(): the one way a request's work reaches the inference pool, for every upload route and
// for the turns of live sessions.
//
// A JobRun owns everything its job uses (the bytes or samples, the cancel token, the queue place,
// the memory reservation), shared between the inference thread that runs it and the coroutine
// that waits for it, so that either may finish first. start() posts it; next() waits on the
// caller's strand for the segments finished since the last call (for streamed responses) or the
// end; wait() waits for the end and gives the result or rethrows the job's error. While a client
// connection is given, its peer is watched: if the client leaves, the job is cancelled (it stops
// within one window of work) and waiting ends with sra::Error(cancelled). The service sets the
// job's deadline (MAX_JOB_SECONDS).
//
// Everything here runs on the waiting coroutine's strand except the job itself.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http/upload.h"

namespace sra::http {

struct JobRun {
  enum class Work { transcribe, detect_language, diarize };

  explicit JobRun(boost::asio::any_io_executor waiter) : wake(std::move(waiter)) {}

  Work work = Work::transcribe;
  TranscriptionJob job;                               // its audio views `audio` or `samples`
  std::string audio;                                  // encoded bytes (uploads)
  AudioBuffer samples;                                // or decoded samples (live sessions)
  bool stream_segments = false;                       // keep each segment for next()
  CancelToken cancel;                                 // the job's (deadline set by the service)
  std::unique_ptr<InferencePool::Ticket> ticket;      // released when the job ends
  std::unique_ptr<MemoryBudget::Reservation> memory;  // released with the run

  // Written by the inference thread, read by the waiter, under `mutex`.
  std::mutex mutex;
  std::deque<Segment> segments;  // finished and not taken by next() yet
  bool done = false;
  std::exception_ptr error;
  Transcription transcription;               // Work::transcribe
  LanguageScores languages;                  // Work::detect_language
  speakers::DiarizationOptions diarization;  // Work::diarize (its turns come in `transcription`)

  boost::asio::steady_timer wake;  // cancelled when there is news
};

// Points the job at the run's own audio and token, and posts it to the inference pool.
void start(ApiContext& ctx, const std::shared_ptr<JobRun>& run);

struct JobNews {
  std::deque<Segment> segments;  // finished since the last call
  bool done = false;
};

// Waits for news of `run`. With `ex`, a client that has left cancels the job and this throws
// sra::Error(cancelled).
boost::asio::awaitable<JobNews> next(const std::shared_ptr<JobRun>& run, Exchange* ex);

// Cancels the run's job when destroyed before the job is done (a waiter that gives up, a
// streamed response whose write failed): the job never outlives the interest in it.
class CancelUnlessDone {
 public:
  explicit CancelUnlessDone(std::shared_ptr<JobRun> run) : run_(std::move(run)) {}
  CancelUnlessDone(const CancelUnlessDone&) = delete;
  CancelUnlessDone& operator=(const CancelUnlessDone&) = delete;
  ~CancelUnlessDone();

 private:
  std::shared_ptr<JobRun> run_;
};

// Waits for the end of `run` and rethrows its error, if any.
boost::asio::awaitable<void> wait(const std::shared_ptr<JobRun>& run, Exchange* ex);

// A run for `upload` (its bytes, fields as options, client, place and memory), waited for on
// `ex`'s connection.
std::shared_ptr<JobRun> run_for(Upload& upload, Exchange& ex);

}  // namespace sra::http
