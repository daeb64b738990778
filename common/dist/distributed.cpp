// c10d process group, rendezvous and shared counters (see distributed.h). The only file that includes c10d's
// ProcessGroupGloo.hpp (and so Gloo's headers): built with USE_C10D_GLOO (and MOH_WITH_GLOO) when CMake found
// Gloo, with USE_C10D_NCCL (and MOH_WITH_NCCL) in CUDA builds whose LibTorch ships ProcessGroupNCCL.
// Kept to c10d calls that LibTorch 1.13 and 2.x share; the process-group base class differs (ProcessGroup in 1.x,
// Backend in 2.x), hence PgBase.
#include "common/dist/distributed.h"

#include <torch/version.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <map>
#include <thread>

#include "common/runtime/device.h"
#include "common/error.h"
#include "common/runtime/interrupt.h"
#include "common/runtime/threads.h"

#if defined(MOH_WITH_GLOO)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(MOH_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace moh::dist {

bool multi_process_supported() {
#if defined(MOH_WITH_GLOO)
  return true;
#else
  return false;
#endif
}

bool nccl_supported() {
#if defined(MOH_WITH_GLOO) && defined(MOH_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

std::vector<int64_t> strided_shard(int64_t n, int rank, int world_size) {
  std::vector<int64_t> out;
  for (int64_t i = rank; i < n; i += world_size) out.push_back(i);
  return out;
}

#if defined(MOH_WITH_GLOO)
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;  // TCPStore (own or the torchrun agent's)
  c10::intrusive_ptr<c10d::Store> keys;   // our keys, under a per-attempt prefix
  c10::intrusive_ptr<PgBase> pg;
  // "rank N stopped with an error" when a rank flagged its failure in the store, else "" (best effort).
  std::string peer_failure() const {
    try {
      if (!keys || keys->add("failed", 0) == 0) return "";
      std::string who = "another rank";
      try {
        const auto b = keys->get("failed_rank");
        who = "rank " + std::string(b.begin(), b.end());
      } catch (...) {
      }
      return who + " stopped with an error (see its output)";
    } catch (...) {
      return "";
    }
  }
  torch::Device device{torch::kCPU};  // where collectives run (CUDA for NCCL)
  int64_t seq = 0;                    // makes gather / check keys unique per call (same order on every rank)
};

namespace {

std::string what_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string string_of(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

std::shared_ptr<::gloo::transport::Device> gloo_device(const LaunchInfo& li) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    std::string first(ifname);
    first = first.substr(0, first.find(','));
    return c10d::ProcessGroupGloo::createDeviceForInterface(first);
  }
  const auto& a = li.master_addr;
  if (a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

// Runs a c10d call and turns its failures into one clear moh::Error.
template <typename F>
static auto guarded(const Group& g, const Group::Impl* impl, const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const auto peer = impl ? impl->peer_failure() : std::string();
    if (!peer.empty())
      throw Error("distributed: " + peer + "; stopping " + g.describe() + " (" + what + ": " + what_of(e) + ")");
    throw Error("distributed: " + what + " failed on " + g.describe() + ": " + what_of(e) +
                " -- another rank has probably stopped or is stuck (see its output); waits end after "
                "--dist-timeout " +
                std::to_string((long long)g.timeout_seconds()) + " s");
  }
}
#else
struct Group::Impl {};
#endif

Group::Group(SingleTag) : uncaught_at_start_(std::uncaught_exceptions()) {}

std::unique_ptr<Group> Group::single() { return std::unique_ptr<Group>(new Group(SingleTag{})); }

Group::Group(const Options& o) : uncaught_at_start_(std::uncaught_exceptions()) {
  MOH_CHECK(o.timeout_s > 0, "--dist-timeout must be positive (seconds), got ", o.timeout_s);
  MOH_CHECK(o.backend == "auto" || o.backend == "gloo" || o.backend == "nccl", "--dist-backend '", o.backend,
            "' is not valid; use auto, gloo or nccl");
  timeout_s_ = o.timeout_s;
  info_ = detect_launch_from_process_env(o.launch);
  if (info_.world_size <= 1) return;
#if !defined(MOH_WITH_GLOO)
  throw Unsupported("the " + info_.launcher + " launcher started " + std::to_string(info_.world_size) +
                    " ranks, but this build runs a single process only (built without Gloo: install libgloo-dev, "
                    "reconfigure with -DMOH_DIST=ON and rebuild)");
#else
  if (o.backend == "nccl" && !nccl_supported())
    throw Unsupported(
        "--dist-backend nccl: this build has no NCCL process group (CUDA LibTorch with NCCL "
        "needed); use gloo");
  backend_ = o.backend == "nccl" ? "nccl" : "gloo";
  impl_ = std::make_unique<Impl>();
  const auto timeout = std::chrono::milliseconds((int64_t)(o.timeout_s * 1000));
  guarded(*this, impl_.get(),
          "the rendezvous at " + info_.master_addr + ":" + std::to_string(info_.master_port) + " (are all " +
              std::to_string(info_.world_size) +
              " ranks started, with the same master "
              "address and port?)",
          [&] {
            c10d::TCPStoreOptions so;
            so.port = static_cast<std::uint16_t>(info_.master_port);
            so.isServer = !info_.agent_store && info_.rank == 0;
            so.numWorkers = static_cast<size_t>(info_.world_size);
            so.waitWorkers = true;  // the server waits for every rank; clients just check in
            so.timeout = timeout;
            impl_->store = c10::make_intrusive<c10d::TCPStore>(info_.master_addr, so);
            return 0;
          });
  const std::string prefix = "moh/attempt_" + std::to_string(info_.restart_count) + "/";
  impl_->keys = c10::make_intrusive<c10d::PrefixStore>(prefix + "keys", impl_->store);
  auto pg_store = c10::make_intrusive<c10d::PrefixStore>(prefix + backend_, impl_->store);
  guarded(*this, impl_.get(),
          "the rendezvous of the " + backend_ + " process group (are all " + std::to_string(info_.world_size) +
              " ranks started?)",
          [&] {
#if defined(MOH_WITH_NCCL)
            if (backend_ == "nccl") {
              MOH_CHECK(torch::cuda::is_available(), "--dist-backend nccl needs CUDA devices");
              impl_->device = torch::Device(torch::kCUDA, info_.local_rank % (int)torch::cuda::device_count());
              auto opts = c10d::ProcessGroupNCCL::Options::create();
              opts->timeout = timeout;
              impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, info_.rank, info_.world_size, opts);
              return 0;
            }
#endif
            auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
            opts->devices.push_back(gloo_device(info_));
            impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, info_.rank, info_.world_size, opts);
            return 0;
          });
#endif
}

Group::~Group() {
#if defined(MOH_WITH_GLOO)
  if (impl_ && std::uncaught_exceptions() > uncaught_at_start_) {
    // Leaving by an exception: tell the other ranks, so their waits end now rather than after the timeout.
    try {
      impl_->keys->set("failed_rank", bytes_of(std::to_string(info_.rank)));
      impl_->keys->add("failed", 1);
    } catch (...) {
    }
  }
  if (impl_) {
    impl_->pg.reset();
    impl_->keys.reset();
    impl_->store.reset();
  }
#endif
}

std::string Group::describe() const {
  if (!multi()) return "a single process";
  return "rank " + std::to_string(info_.rank) + " of " + std::to_string(info_.world_size) + " (" + info_.launcher +
         ", " + backend_ + ")";
}

void Group::check_peers() {
#if defined(MOH_WITH_GLOO)
  if (!impl_) return;
  const int64_t failed =
      guarded(*this, impl_.get(), "checking the other ranks", [&] { return impl_->keys->add("failed", 0); });
  if (failed > 0) {
    const auto peer = impl_->peer_failure();
    throw Error("distributed: " + (peer.empty() ? std::string("another rank stopped with an error") : peer) +
                "; stopping " + describe());
  }
#endif
}

void Group::barrier(const std::string& what) {
#if defined(MOH_WITH_GLOO)
  if (!impl_) return;
  check_peers();
  if (backend_ == "nccl") {  // a one-element all-reduce: no device guessing of ProcessGroupNCCL::barrier
    auto t = torch::zeros({1}, torch::kInt64);
    all_reduce_sum(t, what);
    return;
  }
  guarded(*this, impl_.get(), what, [&] {
    impl_->pg->barrier(c10d::BarrierOptions())->wait();
    return 0;
  });
#endif
}

void Group::all_reduce_sum(torch::Tensor& t, const std::string& what) {
  MOH_CHECK(t.device().is_cpu() && (t.scalar_type() == torch::kInt64 || t.scalar_type() == torch::kFloat64),
            "internal error: all_reduce_sum takes CPU int64/float64 tensors");
#if defined(MOH_WITH_GLOO)
  if (!impl_) return;
  check_peers();
  guarded(*this, impl_.get(), what, [&] {
    std::vector<at::Tensor> v{t.contiguous().to(impl_->device)};
    impl_->pg->allreduce(v, c10d::AllreduceOptions())->wait();
    t.copy_(v[0].to(torch::kCPU).view(t.sizes()));
    return 0;
  });
#endif
}

std::vector<std::string> Group::gather_to_main(const std::string& mine, const std::string& tag) {
#if defined(MOH_WITH_GLOO)
  if (impl_) {
    const std::string base = "gather/" + tag + "#" + std::to_string(impl_->seq++) + "/";
    check_peers();
    guarded(*this, impl_.get(), "sharing '" + tag + "'", [&] {
      impl_->keys->set(base + std::to_string(info_.rank), bytes_of(mine));
      return 0;
    });
    if (!is_main()) return {};
    std::vector<std::string> all;
    for (int r = 0; r < info_.world_size; ++r)
      all.push_back(guarded(*this, impl_.get(), "collecting '" + tag + "' from rank " + std::to_string(r),
                            [&] { return string_of(impl_->keys->get(base + std::to_string(r))); }));
    return all;
  }
#endif
  return {mine};
}

void Group::check_same(const std::string& what, const std::string& value) {
#if defined(MOH_WITH_GLOO)
  if (!impl_) return;
  const std::string base = "same/" + what + "#" + std::to_string(impl_->seq++) + "/";
  if (is_main()) {
    guarded(*this, impl_.get(), "sharing " + what, [&] {
      impl_->keys->set(base + "0", bytes_of(value));
      return 0;
    });
    return;
  }
  const auto main_value =
      guarded(*this, impl_.get(), "reading rank 0's " + what, [&] { return string_of(impl_->keys->get(base + "0")); });
  MOH_CHECK(main_value == value, "distributed: ", describe(), " sees a different ", what, " than rank 0 ('", value,
            "' vs '", main_value, "'); start every rank with the same data and flags");
#endif
}

int64_t Group::counter_add(const std::string& key, int64_t delta) {
#if defined(MOH_WITH_GLOO)
  if (impl_)
    return guarded(*this, impl_.get(), "updating '" + key + "'",
                   [&] { return impl_->keys->add("counter/" + key, delta); });
#endif
  static thread_local std::map<std::string, int64_t> local;  // single process: a plain counter
  return local[key] += delta;
}

void Group::wait_counter(const std::string& key, int64_t target, const std::string& what,
                         const std::function<void(int64_t)>& on_value) {
  int64_t last = counter_add(key, 0);
  if (on_value) on_value(last);
  auto last_change = std::chrono::steady_clock::now();
  while (last < target) {
    throw_if_interrupted();
    check_peers();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int64_t v = counter_add(key, 0);
    const auto now = std::chrono::steady_clock::now();
    if (v != last) {
      last = v;
      last_change = now;
      if (on_value) on_value(v);
      continue;
    }
    const double stalled = std::chrono::duration<double>(now - last_change).count();
    MOH_CHECK(stalled < timeout_s_, "distributed: ", what, ": no progress from the other ranks for ",
              (long long)stalled, " s (", last, " of ", target, " done) on ", describe(),
              "; a rank has probably died or hangs (raise --dist-timeout for very slow steps)");
  }
}

#if defined(MOH_WITH_CUDA)
void set_current_cuda_device(int index);  // device_cuda.cpp
#endif

torch::Device rank_device(const std::string& spec, const Group& group) {
  auto device = parse_device(spec);
  if (group.multi() && (spec == "auto" || spec == "cuda") && device.is_cuda())
    device = torch::Device(torch::kCUDA, group.local_rank() % (int)torch::cuda::device_count());
#if defined(MOH_WITH_CUDA)
  if (device.is_cuda()) set_current_cuda_device(device.index());
#endif
  return device;
}

int default_threads(const Group& group) {
  const int per_node = std::max(1, group.launch().local_world_size);
  return std::max(1, available_cores() / per_node);
}

}  // namespace moh::dist
