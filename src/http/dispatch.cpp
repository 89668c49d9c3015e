#include "http/dispatch.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "core/errors.h"
#include "http/connection_watch.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;

namespace {

// Wakes the run's waiter on its own strand.
void notify(const std::shared_ptr<JobRun>& run) {
  asio::post(run->wake.get_executor(), [run] { run->wake.cancel(); });
}

}  // namespace

void start(ApiContext& ctx, const std::shared_ptr<JobRun>& run) {
  if (run->samples.samples.empty()) {
    run->job.audio = run->audio;
  } else {
    run->job.samples = &run->samples;
  }
  run->job.cancel = &run->cancel;
  if (run->stream_segments) {
    // Weak: the job's own callback must not keep its run alive.
    run->job.on_segment = [weak = std::weak_ptr<JobRun>(run)](const Segment& s) {
      auto run = weak.lock();
      if (!run) return;
      {
        std::lock_guard lock(run->mutex);
        run->segments.push_back(s);
      }
      notify(run);
    };
  }
  asio::post(ctx.inference.executor(), [run, &service = ctx.service] {
    try {
      if (run->work == JobRun::Work::detect_language) {
        LanguageScores scores = service.detect_language(run->job);
        std::lock_guard lock(run->mutex);
        run->languages = std::move(scores);
      } else if (run->work == JobRun::Work::diarize) {
        Transcription t = service.diarize(run->job, run->diarization);
        std::lock_guard lock(run->mutex);
        run->transcription = std::move(t);
      } else {
        Transcription t = service.transcribe(run->job);
        std::lock_guard lock(run->mutex);
        run->transcription = std::move(t);
      }
    } catch (...) {
      std::lock_guard lock(run->mutex);
      run->error = std::current_exception();
    }
    run->ticket.reset();  // the place is free for the next job
    {
      std::lock_guard lock(run->mutex);
      run->done = true;
    }
    notify(run);
  });
}

asio::awaitable<JobNews> next(const std::shared_ptr<JobRun>& run, Exchange* ex) {
  std::optional<PeerWatch> watch;
  if (ex) watch.emplace(ex->stream, run->cancel);
  for (;;) {
    {
      std::lock_guard lock(run->mutex);
      if (!run->segments.empty() || run->done) {
        JobNews news;
        news.segments.swap(run->segments);
        news.done = run->done;
        co_return news;
      }
    }
    // Also every second, so that neither a missed wake-up nor a client that left unnoticed can
    // keep this waiting.
    if (ex && peer_closed(ex->stream.socket())) {
      run->cancel.cancel("the client closed the connection");
    }
    run->wake.expires_after(std::chrono::seconds(1));
    co_await run->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

CancelUnlessDone::~CancelUnlessDone() {
  std::lock_guard lock(run_->mutex);
  if (!run_->done) run_->cancel.cancel("no one waits for the result any more");
}

asio::awaitable<void> wait(const std::shared_ptr<JobRun>& run, Exchange* ex) {
  CancelUnlessDone guard(run);
  while (!(co_await next(run, ex)).done) {
  }
  if (run->error) std::rethrow_exception(run->error);
}

std::shared_ptr<JobRun> run_for(Upload& upload, Exchange& ex) {
  auto run = std::make_shared<JobRun>(ex.stream.get_executor());
  run->audio = std::move(upload.audio);
  run->ticket = std::move(upload.ticket);
  run->memory = std::move(upload.memory);
  run->job.client = upload.client;
  run->job.request_id = ex.request_id;
  run->job.options = upload.fields;
  return run;
}

}  // namespace sra::http
