#include "http/operations_routes.h"

#include <boost/json.hpp>

#include "core/errors.h"
#include "http/form.h"
#include "service/metrics.h"

namespace sra::http {

namespace asio = boost::asio;
namespace json = boost::json;

asio::awaitable<Response> health_route(ApiContext&, const RequestParser::value_type&, Exchange&,
                                       std::string_view) {
  co_return json_response(beast_http::status::ok, json::object{{"status", "ok"}});
}

// Ready when the storage and the bus can serve: builds them if needed and asks each.
asio::awaitable<Response> ready_route(ApiContext& ctx, const RequestParser::value_type&, Exchange&,
                                      std::string_view) {
  std::string problem = co_await run_on(ctx.blocking.get_executor(), [&ctx] {
    return ctx.readiness.get([&ctx]() -> std::string {
      try {
        ctx.service.parts().storage().check_ready();
        ctx.service.parts().bus().check_ready();
        // Past the backlog's bound, a load balancer should send async work elsewhere.
        return ctx.service.backlog().over_bound().value_or("");
      } catch (const Error& e) {
        return e.what();
      }
    });
  });
  if (problem.empty()) {
    co_return json_response(beast_http::status::ok, json::object{{"status", "ready"}});
  }
  Response res = detail_response(beast_http::status::service_unavailable, problem);
  res.set(beast_http::field::retry_after, "5");
  co_return res;
}

asio::awaitable<Response> metrics_route(ApiContext& ctx, const RequestParser::value_type&,
                                        Exchange&, std::string_view) {
  // Rendered on the blocking pool: the backlog gauges may ask the broker.
  std::string text =
      co_await run_on(ctx.blocking.get_executor(), [] { return metrics().render(); });
  Response res{beast_http::status::ok, 11};
  res.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = std::move(text);
  res.prepare_payload();
  co_return res;
}

}  // namespace sra::http
