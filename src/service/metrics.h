// Metrics: the process's counters and histograms, and gauges read when scraped, rendered in
// Prometheus' text exposition format (0.0.4) for GET /metrics. Written by hand: Debian 12 has no
// Prometheus client library, and the format is a few lines of text.
//
// A family is a metric name with label names; each combination of label values is a series,
// created on first use and kept for the life of the process (label values must come from small
// closed sets: routes, statuses, outcomes; never ids or user input). Updating a series is a
// lock-free atomic add, safe from any thread; creating one takes the family's lock. Gauges are
// callbacks evaluated at render() time on the scraping thread; they must be cheap and thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sra {

class Counter {
 public:
  void add(double v = 1) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (set, or added to).
class GaugeValue {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double v) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i]; i == bounds().size() is +Inf.
  std::uint64_t cumulative(std::size_t i) const noexcept;
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

// A metric name, its help text and label names, with one series per set of label values.
template <typename Series>
class Family {
 public:
  Family(
      std::string name, std::string help, std::vector<std::string> labels,
      std::function<std::unique_ptr<Series>()> make = [] { return std::make_unique<Series>(); })
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        make_(std::move(make)) {}

  // The series of `values` (as many as the family has labels), created on first use.
  Series& with(const std::vector<std::string>& values) {
    std::lock_guard lock(mutex_);
    auto& slot = series_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  template <typename F>
  void each(F f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, series] : series_) f(values, *series);
  }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& labels() const { return labels_; }

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::function<std::unique_ptr<Series>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;
};

// Every metric the service exposes. One instance per process (see metrics()).
struct Metrics {
  Metrics();

  Family<Counter> http_requests{
      "sra_http_requests_total", "HTTP requests answered", {"route", "status"}};
  Family<Histogram> http_duration;  // sra_http_request_duration_seconds{route}
  Family<Counter> jobs{"sra_transcriptions_total",
                       "transcriptions ended, by outcome (done, failed, cancelled, expired)",
                       {"outcome"}};
  Counter audio_seconds;      // sra_audio_seconds_total: audio transcribed
  Counter inference_seconds;  // sra_inference_seconds_total: time spent transcribing it
  Family<Counter> refused{
      "sra_refused_total", "requests refused by admission control, by reason", {"reason"}};
  Family<Counter> stage_seconds{"sra_model_stage_seconds_total",
                                "seconds models spent per stage (encode, decode), where measured",
                                {"stage"}};
  Family<GaugeValue> model_load_seconds{
      "sra_model_load_seconds", "seconds the model took to load, by served name", {"model"}};
  Family<Counter> part_errors{"sra_part_errors_total",
                              "failed calls to the storage and the message bus, by operation",
                              {"part", "operation"}};
  Family<Counter> async_submitted{
      "sra_async_tasks_submitted_total", "async tasks this process created, by bus", {"bus"}};
  Family<Counter> async_tasks{
      "sra_async_tasks_total",
      "async task runs of this process, by bus and outcome (success, failed, cancelled, retry)",
      {"bus", "outcome"}};
  Family<Counter> realtime{"sra_realtime_total",
                           "realtime sessions and what happened in them, by kind (session, "
                           "partial, turn, client_error, closed_by_server)",
                           {"kind"}};
  Family<Counter> wyoming{"sra_wyoming_total",
                          "Wyoming connections and what happened in them, by kind (connection, "
                          "transcript, error)",
                          {"kind"}};
  Family<GaugeValue> async_running{
      "sra_async_tasks_running", "async tasks this process is running now, by bus", {"bus"}};

  // A gauge: name, help and a function read at scrape time.
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  // Adds a gauge (e.g. the inference queue of a server), replacing one of the same name;
  // thread-safe.
  void add_gauge(std::string name, std::string help, std::function<double()> read);
  void remove_gauge(const std::string& name);
  // The whole exposition, in Prometheus' text format.
  std::string render() const;

 private:
  mutable std::mutex gauges_mutex_;
  std::vector<Gauge> gauges_;
};

// The process's metrics.
Metrics& metrics();

}  // namespace sra
