#include "service/metrics.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

namespace sra {

namespace {

// Request latencies: 5 ms to 10 min (a long sync transcription).
const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                            2.5,   5,    10,    30,   60,  120,  300, 600};

// A number as Prometheus reads it (+Inf, -Inf, NaN spelled its way).
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// A label value with \, " and newlines escaped, as the format requires.
std::string escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      const std::string& extra = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + escape(values[i]) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double v) noexcept {
  auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                         bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::uint64_t Histogram::cumulative(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b <= i && b <= bounds_.size(); ++b) total += counts_[b].load();
  return total;
}

Metrics::Metrics()
    : http_duration("sra_http_request_duration_seconds",
                    "time from a request's headers to its response, by route", {"route"},
                    [] { return std::make_unique<Histogram>(kLatencyBounds); }) {}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(gauges_mutex_);
  std::erase_if(gauges_, [&](const Gauge& g) { return g.name == name; });
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

void Metrics::remove_gauge(const std::string& name) {
  std::lock_guard lock(gauges_mutex_);
  std::erase_if(gauges_, [&](const Gauge& g) { return g.name == name; });
}

std::string Metrics::render() const {
  std::string out;
  auto counters = [&out](const Family<Counter>& f) {
    header(out, f.name(), f.help(), "counter");
    f.each([&](const std::vector<std::string>& values, const Counter& c) {
      out += f.name() + label_set(f.labels(), values) + " " + number(c.value()) + "\n";
    });
  };
  counters(http_requests);
  header(out, http_duration.name(), http_duration.help(), "histogram");
  http_duration.each([&](const std::vector<std::string>& values, const Histogram& h) {
    const std::string& n = http_duration.name();
    for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
      std::string le = i < h.bounds().size() ? number(h.bounds()[i]) : "+Inf";
      out += n + "_bucket" + label_set(http_duration.labels(), values, "le=\"" + le + "\"") + " " +
             std::to_string(h.cumulative(i)) + "\n";
    }
    out += n + "_sum" + label_set(http_duration.labels(), values) + " " + number(h.sum()) + "\n";
    out += n + "_count" + label_set(http_duration.labels(), values) + " " +
           std::to_string(h.cumulative(h.bounds().size())) + "\n";
  });
  counters(jobs);
  header(out, "sra_audio_seconds_total", "seconds of audio transcribed", "counter");
  out += "sra_audio_seconds_total " + number(audio_seconds.value()) + "\n";
  header(out, "sra_inference_seconds_total",
         "seconds spent transcribing (real-time factor: this over sra_audio_seconds_total)",
         "counter");
  out += "sra_inference_seconds_total " + number(inference_seconds.value()) + "\n";
  counters(refused);
  counters(realtime);
  counters(wyoming);
  counters(stage_seconds);
  auto gauge_family = [&out](const Family<GaugeValue>& f) {
    header(out, f.name(), f.help(), "gauge");
    f.each([&](const std::vector<std::string>& values, const GaugeValue& g) {
      out += f.name() + label_set(f.labels(), values) + " " + number(g.value()) + "\n";
    });
  };
  gauge_family(model_load_seconds);
  counters(part_errors);
  counters(async_submitted);
  counters(async_tasks);
  gauge_family(async_running);
  std::lock_guard lock(gauges_mutex_);
  for (const auto& g : gauges_) {
    double v = std::nan("");
    try {
      v = g.read();
    } catch (...) {
      // A gauge that cannot be read now (the broker is down) is reported as NaN.
    }
    header(out, g.name, g.help, "gauge");
    out += g.name + " " + number(v) + "\n";
  }
  return out;
}

Metrics& metrics() {
  static Metrics* instance = new Metrics();  // never destroyed: threads may update it at exit
  return *instance;
}

}  // namespace sra
