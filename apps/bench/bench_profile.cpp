// moh-bench --profile: per-operator time table (see bench_profile.h).
#include "apps/bench/bench_profile.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace moh::bench {
namespace {

struct Totals {
  int64_t calls = 0;
  double self_ms = 0, incl_ms = 0;
};

std::mutex g_mu;
std::map<std::string, Totals> g_totals;

struct Frame : at::ObserverContext {
  std::chrono::steady_clock::time_point t0;
  double child_ms = 0;
  Frame* parent = nullptr;
};
thread_local Frame* t_top = nullptr;

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction&) {
  auto f = std::make_unique<Frame>();
  f->parent = t_top;
  t_top = f.get();
  f->t0 = std::chrono::steady_clock::now();
  return f;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext* ctx) {
  auto* f = static_cast<Frame*>(ctx);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f->t0).count();
  t_top = f->parent;
  if (f->parent) f->parent->child_ms += ms;
  std::lock_guard<std::mutex> lock(g_mu);
  auto& t = g_totals[fn.name()];
  t.calls += 1;
  t.incl_ms += ms;
  t.self_ms += ms - f->child_ms;
}

}  // namespace

OpProfiler::OpProfiler() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_totals.clear();
  }
  handle_ = at::addGlobalCallback(
      at::RecordFunctionCallback(on_enter, on_exit).scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
  active_ = true;
}

OpProfiler::~OpProfiler() { stop(); }

void OpProfiler::stop() {
  if (active_) at::removeCallback(handle_);
  active_ = false;
}

void OpProfiler::print(int top, int runs, const std::string& title) {
  stop();
  std::vector<std::pair<std::string, Totals>> rows;
  double total = 0;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    rows.assign(g_totals.begin(), g_totals.end());
  }
  for (auto& r : rows) total += r.second.self_ms;
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.self_ms > b.second.self_ms; });
  const double n = std::max(1, runs);
  std::printf("profile %s (per forward; %d runs; sum of self times %.1f ms)\n", title.c_str(), runs, total / n);
  std::printf("  %-44s %8s %10s %10s %7s\n", "op", "calls", "self ms", "incl ms", "self %");
  for (int i = 0; i < top && i < static_cast<int>(rows.size()); ++i) {
    const auto& t = rows[i].second;
    std::printf("  %-44s %8.0f %10.2f %10.2f %6.1f%%\n", rows[i].first.c_str(), t.calls / n, t.self_ms / n,
                t.incl_ms / n, 100.0 * t.self_ms / std::max(total, 1e-9));
  }
  std::fflush(stdout);
}

}  // namespace moh::bench
