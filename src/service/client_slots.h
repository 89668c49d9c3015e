// ClientSlots: a bounded number of places (connections, live sessions) shared by clients, with a
// smaller bound for each client, so that one client (an address, an API key) can never hold all
// of them.
//
// try_take() gives a Slot while the client holds fewer than `per_client` and everyone fewer than
// `total`; the Slot gives its place back when destroyed. `total` is always a bound (kUnbounded for
// none); a `per_client` of 0 means no bound per client. Safe for
// concurrent use from any thread; a Slot may be destroyed on any thread, but the ClientSlots must
// outlive every Slot it gave.
#pragma once

#include <climits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sra {

class ClientSlots {
 public:
  class Slot {
   public:
    Slot(ClientSlots& owner, std::string client) : owner_(owner), client_(std::move(client)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { owner_.give_back(client_); }
    const std::string& client() const { return client_; }

   private:
    ClientSlots& owner_;
    std::string client_;
  };

  static constexpr int kUnbounded = INT_MAX;

  ClientSlots(int total, int per_client) : total_(total), per_client_(per_client) {}

  // A place for `client`, or nullptr when it or everyone is at the bound.
  std::unique_ptr<Slot> try_take(const std::string& client) {
    std::lock_guard lock(mutex_);
    if (held_ >= total_) return nullptr;
    int& mine = by_client_[client];
    if (per_client_ > 0 && mine >= per_client_) return nullptr;
    ++mine;
    ++held_;
    return std::make_unique<Slot>(*this, client);
  }

  int held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }
  int held_by(const std::string& client) const {
    std::lock_guard lock(mutex_);
    auto it = by_client_.find(client);
    return it == by_client_.end() ? 0 : it->second;
  }
  int total() const { return total_; }
  int per_client() const { return per_client_; }

 private:
  void give_back(const std::string& client) {
    std::lock_guard lock(mutex_);
    --held_;
    auto it = by_client_.find(client);
    if (it != by_client_.end() && --it->second <= 0) by_client_.erase(it);
  }

  const int total_;
  const int per_client_;
  mutable std::mutex mutex_;
  int held_ = 0;
  std::unordered_map<std::string, int> by_client_;  // clients holding at least one place
};

}  // namespace sra
