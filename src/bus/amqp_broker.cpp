// Celery over AMQP (RabbitMQ) with rabbitmq-c: the body is the raw JSON of protocol v2 and
// Celery's headers are AMQP headers. Publishing waits for the broker's confirm. Consuming uses
// manual acknowledgements with a prefetch equal to the worker's concurrency, so a worker never
// holds more tasks than it runs; a task is acknowledged after its result is stored, and a worker
// that dies leaves its tasks to be delivered again. rabbitmq-c connections are not thread-safe:
// each connection is used by one thread only.
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/celery_broker.h"
#include "bus/timing.h"
#include "bus/tls_options.h"
#include "core/errors.h"
#include "core/text.h"

namespace sra::bus {
namespace {

namespace json = boost::json;

struct AmqpUrl {
  std::string host, user, password, vhost, text;
  int port = 5672;
  TlsOptions tls;  // amqps://
};

// amqp://user:password@host:port/vhost as kombu reads it: the path after the first '/' is the
// virtual host ("amqp://host//" is "/"), an empty one means "/". amqps:// is AMQP over TLS
// (default port 5671), with the ssl_* parameters of tls_options.h in the query.
AmqpUrl parse_amqp_url(const std::string& url) {
  AmqpUrl out{"127.0.0.1", "guest", "guest", "/", "", 5672, {}};
  std::string rest;
  if (url.rfind("amqp://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("amqps://", 0) == 0) {
    rest = url.substr(8);
    out.tls.enabled = true;
    out.port = 5671;
  } else {
    throw config_error("CELERY_BUS_BROKER=" + redact_url(url) +
                       " is not an amqp:// or amqps:// URL");
  }
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string path;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    out.user = percent_decode(auth.substr(0, colon));
    if (colon != std::string::npos) out.password = percent_decode(auth.substr(colon + 1));
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    try {
      std::size_t used = 0;
      std::string port = rest.substr(colon + 1);
      out.port = std::stoi(port, &used);
      if (used != port.size() || out.port < 1 || out.port > 65535)
        throw std::invalid_argument(port);
    } catch (...) {
      throw config_error("CELERY_BUS_BROKER=" + redact_url(url) + ": the port must be a number");
    }
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) out.host = rest;
  if (!path.empty()) out.vhost = percent_decode(path);
  read_tls_parameters(parse_url_query(query), "CELERY_BUS_BROKER", out.tls);
  out.text = std::string(out.tls.enabled ? "amqps://" : "amqp://") + out.host + ":" +
             std::to_string(out.port) + "/" + out.vhost;
  return out;
}

// A socket for `url`: TCP, or TLS verified as its options say (the system's CAs by default).
amqp_socket_t* open_socket(amqp_connection_state_t conn, const AmqpUrl& url) {
  if (!url.tls.enabled) return amqp_tcp_socket_new(conn);
  amqp_socket_t* socket = amqp_ssl_socket_new(conn);
  if (!socket) return nullptr;
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  amqp_ssl_socket_set_verify_peer(socket, url.tls.verify_peer ? 1 : 0);
  // The host is checked by OpenSSL during the handshake (DNS names and IP addresses alike);
  // rabbitmq-c's own check knows DNS names only.
  amqp_ssl_socket_set_verify_hostname(socket, 0);
  if (url.tls.verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) != 1)
      X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
  }
  if (!url.tls.ca_file.empty()) {
    if (amqp_ssl_socket_set_cacert(socket, url.tls.ca_file.c_str()) != AMQP_STATUS_OK)
      throw unavailable("RabbitMQ at " + url.text + ": cannot read the CA file " + url.tls.ca_file);
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  if (!url.tls.cert_file.empty()) {
    const std::string& key = url.tls.key_file.empty() ? url.tls.cert_file : url.tls.key_file;
    if (amqp_ssl_socket_set_key(socket, url.tls.cert_file.c_str(), key.c_str()) != AMQP_STATUS_OK)
      throw unavailable("RabbitMQ at " + url.text + ": cannot read the client certificate");
  }
  return socket;
}

std::string bytes(amqp_bytes_t b) {
  return std::string(static_cast<const char*>(b.bytes), b.len);
}

json::value field_to_json(const amqp_field_value_t& f);

json::object table_to_json(const amqp_table_t& t) {
  json::object out;
  for (int i = 0; i < t.num_entries; ++i)
    out[bytes(t.entries[i].key)] = field_to_json(t.entries[i].value);
  return out;
}

json::value field_to_json(const amqp_field_value_t& f) {
  switch (f.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return json::value(bytes(f.value.bytes));
    case AMQP_FIELD_KIND_BOOLEAN:
      return json::value(static_cast<bool>(f.value.boolean));
    case AMQP_FIELD_KIND_I8:
      return json::value(f.value.i8);
    case AMQP_FIELD_KIND_U8:
      return json::value(f.value.u8);
    case AMQP_FIELD_KIND_I16:
      return json::value(f.value.i16);
    case AMQP_FIELD_KIND_U16:
      return json::value(f.value.u16);
    case AMQP_FIELD_KIND_I32:
      return json::value(f.value.i32);
    case AMQP_FIELD_KIND_U32:
      return json::value(f.value.u32);
    case AMQP_FIELD_KIND_I64:
      return json::value(f.value.i64);
    case AMQP_FIELD_KIND_U64:
      return json::value(f.value.u64);
    case AMQP_FIELD_KIND_F32:
      return json::value(f.value.f32);
    case AMQP_FIELD_KIND_F64:
      return json::value(f.value.f64);
    case AMQP_FIELD_KIND_TABLE:
      return table_to_json(f.value.table);
    case AMQP_FIELD_KIND_ARRAY: {
      json::array a;
      for (int i = 0; i < f.value.array.num_entries; ++i)
        a.push_back(field_to_json(f.value.array.entries[i]));
      return a;
    }
    default:
      return nullptr;
  }
}

// Owns the memory of an AMQP table built from JSON.
class AmqpTable {
 public:
  explicit AmqpTable(const json::object& o) { table_ = build_table(o); }
  const amqp_table_t& table() const { return table_; }

 private:
  amqp_bytes_t keep(const std::string& s) {
    strings_.push_back(std::make_unique<std::string>(s));
    return amqp_bytes_t{strings_.back()->size(), strings_.back()->data()};
  }
  amqp_field_value_t build_value(const json::value& v) {
    amqp_field_value_t f{};
    if (v.is_string()) {
      f.kind = AMQP_FIELD_KIND_UTF8;
      f.value.bytes = keep(std::string(v.as_string()));
    } else if (v.is_int64()) {
      f.kind = AMQP_FIELD_KIND_I64;
      f.value.i64 = v.as_int64();
    } else if (v.is_bool()) {
      f.kind = AMQP_FIELD_KIND_BOOLEAN;
      f.value.boolean = v.as_bool();
    } else if (v.is_double()) {
      f.kind = AMQP_FIELD_KIND_F64;
      f.value.f64 = v.as_double();
    } else if (v.is_array()) {
      auto& entries = arrays_.emplace_back();
      for (const auto& e : v.as_array()) entries.push_back(build_value(e));
      f.kind = AMQP_FIELD_KIND_ARRAY;
      f.value.array = amqp_array_t{static_cast<int>(entries.size()), entries.data()};
    } else if (v.is_object()) {
      f.kind = AMQP_FIELD_KIND_TABLE;
      f.value.table = build_table(v.as_object());
    } else {
      f.kind = AMQP_FIELD_KIND_VOID;
    }
    return f;
  }
  amqp_table_t build_table(const json::object& o) {
    auto& entries = tables_.emplace_back();
    for (const auto& [k, v] : o)
      entries.push_back(amqp_table_entry_t{keep(std::string(k)), build_value(v)});
    return amqp_table_t{static_cast<int>(entries.size()), entries.data()};
  }

  std::deque<std::unique_ptr<std::string>> strings_;
  std::deque<std::vector<amqp_field_value_t>> arrays_;
  std::deque<std::vector<amqp_table_entry_t>> tables_;
  amqp_table_t table_{};
};

// One AMQP connection with channel 1 open and the queue declared.
class Connection {
 public:
  explicit Connection(const AmqpUrl& url, const std::string& queue) : url_(url) {
    conn_ = amqp_new_connection();
    amqp_socket_t* socket = nullptr;
    try {
      socket = open_socket(conn_, url);
    } catch (...) {
      amqp_destroy_connection(conn_);
      conn_ = nullptr;
      throw;
    }
    timeval timeout{5, 0};
    int status = socket ? amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &timeout)
                        : AMQP_STATUS_NO_MEMORY;
    if (status != AMQP_STATUS_OK) {
      amqp_destroy_connection(conn_);
      conn_ = nullptr;
      throw unavailable("RabbitMQ at " + url.text +
                        " is unreachable: " + amqp_error_string2(status));
    }
    // A throw below leaves the constructor without the destructor: free the connection (and
    // its socket) here, or every refused login leaks a descriptor.
    try {
      check(amqp_login(conn_, url.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                       url.user.c_str(), url.password.c_str()),
            "login");
      amqp_channel_open(conn_, 1);
      check(amqp_get_rpc_reply(conn_), "channel open");
      amqp_exchange_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()),
                            amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
      check(amqp_get_rpc_reply(conn_), "exchange declare");
      amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
      check(amqp_get_rpc_reply(conn_), "queue declare");
      amqp_queue_bind(conn_, 1, amqp_cstring_bytes(queue.c_str()),
                      amqp_cstring_bytes(queue.c_str()), amqp_cstring_bytes(queue.c_str()),
                      amqp_empty_table);
      check(amqp_get_rpc_reply(conn_), "queue bind");

    } catch (...) {
      amqp_destroy_connection(conn_);
      conn_ = nullptr;
      throw;
    }
  }
  ~Connection() {
    if (!conn_) return;
    amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn_);
  }
  amqp_connection_state_t get() const { return conn_; }

  void check(const amqp_rpc_reply_t& r, const char* what) const {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    std::string why;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      why = amqp_error_string2(r.library_error);
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
      why = "connection closed: " + bytes(m->reply_text);
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
      why = "channel closed: " + bytes(m->reply_text);
    } else {
      why = "unexpected reply";
    }
    throw unavailable("RabbitMQ at " + url_.text + ": " + what + " failed: " + why);
  }

 private:
  AmqpUrl url_;
  amqp_connection_state_t conn_ = nullptr;
};

// Publishes on `conn` (channel 1, in confirm mode) and waits for the broker's confirm.
void publish_confirmed(Connection& conn, const std::string& queue, const CeleryTask& task) {
  std::string body = celery_body(task);
  AmqpTable headers(celery_headers(task));
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
                 AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                 AMQP_BASIC_PRIORITY_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                 AMQP_BASIC_REPLY_TO_FLAG;
  props.content_type = amqp_cstring_bytes("application/json");
  props.content_encoding = amqp_cstring_bytes("utf-8");
  props.headers = headers.table();
  props.delivery_mode = 2;
  props.priority = 0;
  props.correlation_id = amqp_cstring_bytes(task.id.c_str());
  props.reply_to = amqp_cstring_bytes(task.id.c_str());
  int rc = amqp_basic_publish(conn.get(), 1, amqp_cstring_bytes(queue.c_str()),
                              amqp_cstring_bytes(queue.c_str()), 0, 0, &props,
                              amqp_bytes_t{body.size(), body.data()});
  if (rc != AMQP_STATUS_OK)
    throw unavailable(std::string("RabbitMQ publish failed: ") + amqp_error_string2(rc));
  timeval timeout{10, 0};
  amqp_frame_t frame;
  while (true) {
    rc = amqp_simple_wait_frame_noblock(conn.get(), &frame, &timeout);
    if (rc != AMQP_STATUS_OK)
      throw unavailable(std::string("RabbitMQ did not confirm the publish: ") +
                        amqp_error_string2(rc));
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return;
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD)
      throw unavailable("RabbitMQ refused the message (nack)");
    if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
        frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      throw unavailable("RabbitMQ closed the channel while publishing");
    }
  }
}

void enable_confirms(Connection& conn) {
  amqp_confirm_select(conn.get(), 1);
  conn.check(amqp_get_rpc_reply(conn.get()), "confirm select");
}

struct Job {
  std::uint64_t generation = 0;
  std::uint64_t tag = 0;
  CeleryTask task;
};
struct Done {
  std::uint64_t generation = 0;
  std::uint64_t tag = 0;
  CeleryTask task;
  Outcome outcome = Outcome::ack;
};

class AmqpBroker final : public CeleryBroker {
 public:
  explicit AmqpBroker(AmqpBrokerOptions options)
      : options_(std::move(options)), url_(parse_amqp_url(options_.url)) {}

  void publish(const CeleryTask& task) override {
    with_publisher([&](Connection& c) {
      publish_confirmed(c, options_.queue, task);
      return 0;
    });
  }

  void check_ready() override {
    std::lock_guard lock(publish_mutex_);
    if (!publisher_) {
      publisher_ = std::make_unique<Connection>(url_, options_.queue);
      enable_confirms(*publisher_);
    }
  }

  std::int64_t unfinished() override {
    return with_publisher([&](Connection& c) -> std::int64_t {
      // A passive declare answers the number of messages ready in the queue.
      auto* ok = amqp_queue_declare(c.get(), 1, amqp_cstring_bytes(options_.queue.c_str()), 1, 0, 0,
                                    0, amqp_empty_table);
      c.check(amqp_get_rpc_reply(c.get()), "queue count");
      return ok ? static_cast<std::int64_t>(ok->message_count) : 0;
    });
  }

  void consume(int concurrency, const DeliveryHandler& handler, std::stop_token stop) override {
    concurrency = std::max(1, concurrency);
    std::vector<std::jthread> workers;
    for (int i = 0; i < concurrency; ++i) {
      workers.emplace_back(
          [this, &handler](std::stop_token worker_stop) { worker_loop(handler, worker_stop); });
    }
    connection_loop(concurrency, stop);
    for (auto& w : workers) w.request_stop();
    jobs_cv_.notify_all();
  }

 private:
  // Runs `f` on the publishing connection (channel 1 in confirm mode), connecting if needed; a
  // stale connection (the broker restarted) gets one fresh try.
  template <typename F>
  auto with_publisher(F f) -> decltype(f(std::declval<Connection&>())) {
    std::lock_guard lock(publish_mutex_);
    for (int attempt = 0;; ++attempt) {
      try {
        if (!publisher_) {
          publisher_ = std::make_unique<Connection>(url_, options_.queue);
          enable_confirms(*publisher_);
        }
        return f(*publisher_);
      } catch (const Error&) {
        publisher_.reset();
        if (attempt >= 1) throw;
      }
    }
  }

  void worker_loop(const DeliveryHandler& handler, std::stop_token stop) {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        jobs_cv_.wait(lock, stop, [this] { return !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      Outcome outcome;
      try {
        outcome = handler(job.task);
      } catch (const std::exception& e) {
        // The result could not be stored (the backend is down): the delivery goes back to the
        // queue, a moment later so that a dead backend does not spin the worker.
        spdlog::warn("task {}: {}; giving the delivery back", job.task.id, e.what());
        std::this_thread::sleep_for(std::chrono::seconds(1));
        outcome = Outcome::release;
      }
      std::lock_guard lock(mutex_);
      done_.push_back({job.generation, job.tag, job.task, outcome});
      --running_;
    }
  }

  void connection_loop(int prefetch, std::stop_token stop) {
    double backoff = 0.5;
    std::uint64_t generation = 0;
    while (true) {
      std::unique_ptr<Connection> conn;
      try {
        conn = std::make_unique<Connection>(url_, options_.queue);
        amqp_basic_qos(conn->get(), 1, 0, static_cast<std::uint16_t>(prefetch), 0);
        conn->check(amqp_get_rpc_reply(conn->get()), "qos");
        amqp_basic_consume(conn->get(), 1, amqp_cstring_bytes(options_.queue.c_str()),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        conn->check(amqp_get_rpc_reply(conn->get()), "consume");
        ++generation;
        backoff = 0.5;
        spdlog::info("celery: consuming '{}' from RabbitMQ at {}", options_.queue, url_.text);
        if (serve(*conn, generation, stop)) return;  // stopped cleanly
      } catch (const std::exception& e) {
        spdlog::warn("celery worker: {}; reconnecting in {:.1f} s", e.what(), backoff);
      }
      // Deliveries of the lost connection will come again from the broker: unstarted ones are
      // dropped here, and acks of running ones are ignored (their generation is over).
      {
        std::lock_guard lock(mutex_);
        running_ -= static_cast<int>(jobs_.size());
        jobs_.clear();
      }
      if (stop.stop_requested() && idle()) return;
      sleep_unless_stopped(stop, backoff);
      backoff = std::min(backoff * 2, 10.0);
      if (stop.stop_requested() && idle()) return;
    }
  }

  bool idle() {
    std::lock_guard lock(mutex_);
    return running_ == 0;
  }

  // Serves one connection; true once stopped with nothing in hand.
  bool serve(Connection& conn, std::uint64_t generation, std::stop_token stop) {
    bool cancelled = false;
    while (true) {
      std::deque<Done> done;
      {
        std::lock_guard lock(mutex_);
        done.swap(done_);
      }
      for (auto& d : done) {
        if (d.generation != generation) continue;
        if (d.outcome == Outcome::requeue) {
          // Published with a confirm awaited (on the publishing connection) before the original
          // is acknowledged: a retry the broker did not take is never acknowledged away.
          CeleryTask again = d.task;
          ++again.retries;
          publish(again);
        }
        int rc = d.outcome == Outcome::release ? amqp_basic_reject(conn.get(), 1, d.tag, 1)
                                               : amqp_basic_ack(conn.get(), 1, d.tag, 0);
        if (rc != AMQP_STATUS_OK) throw unavailable("RabbitMQ: acknowledgement failed");
      }
      if (stop.stop_requested()) {
        if (!cancelled) {
          cancelled = true;  // no new deliveries; unstarted ones go back to the queue on close
          std::lock_guard lock(mutex_);
          running_ -= static_cast<int>(jobs_.size());
          jobs_.clear();
        }
        std::lock_guard lock(mutex_);
        if (running_ == 0 && done_.empty()) return true;
      }
      amqp_maybe_release_buffers(conn.get());
      amqp_envelope_t envelope;
      timeval timeout{0, 100000};
      amqp_rpc_reply_t r = amqp_consume_message(conn.get(), &envelope, &timeout, 0);
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        continue;
      if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
          // A frame that is not a delivery (e.g. a confirm of channel 2): read and ignore it.
          amqp_frame_t frame;
          if (amqp_simple_wait_frame(conn.get(), &frame) != AMQP_STATUS_OK)
            throw unavailable("RabbitMQ connection lost");
          if (frame.frame_type == AMQP_FRAME_METHOD &&
              (frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
               frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD)) {
            throw unavailable("RabbitMQ closed the connection");
          }
          continue;
        }
        conn.check(r, "consume");
      }
      std::uint64_t tag = envelope.delivery_tag;
      CeleryTask task;
      bool ok = true;
      try {
        json::object headers;
        if (envelope.message.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
          headers = table_to_json(envelope.message.properties.headers);
        }
        task = parse_celery_task(headers, bytes(envelope.message.body));
      } catch (const std::exception& e) {
        spdlog::error("celery: dropping a message that is not a Celery task: {}", e.what());
        ok = false;
      }
      amqp_destroy_envelope(&envelope);
      if (!ok || cancelled) {
        if (!ok)
          amqp_basic_ack(conn.get(), 1, tag, 0);
        else
          amqp_basic_reject(conn.get(), 1, tag, 1);
        continue;
      }
      std::lock_guard lock(mutex_);
      jobs_.push_back({generation, tag, task});
      ++running_;
      jobs_cv_.notify_one();
    }
  }

  AmqpBrokerOptions options_;
  AmqpUrl url_;
  std::mutex publish_mutex_;
  std::unique_ptr<Connection> publisher_;
  std::mutex mutex_;
  std::condition_variable_any jobs_cv_;
  std::deque<Job> jobs_;
  std::deque<Done> done_;
  int running_ = 0;
};

}  // namespace

std::unique_ptr<CeleryBroker> make_amqp_broker(const AmqpBrokerOptions& options) {
  return std::make_unique<AmqpBroker>(options);
}

}  // namespace sra::bus
