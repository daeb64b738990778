// oneDNN matmul for the Linear layers on the CPU (see onednn_linear.h): a primitive per (rows, in, out, dtypes,
// epilogue), a packed copy per weight tensor, LibTorch's ops where oneDNN does not apply.
#include "common/cpu_gemm/onednn_linear.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/error.h"

#ifdef MOH_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace moh::cpu_gemm {
namespace {

std::atomic<int> g_enabled{-1};  // -1: not decided yet (read MOH_CPU_GEMM once)
std::atomic<uint64_t> g_flops{0};

// MOH_CPU_GEMM: unset, "" or "onednn" = oneDNN where it applies; "torch" = LibTorch's GEMMs. Anything else is a
// typo that must not silently leave the default on.
bool env_allows() {
  const char* v = std::getenv("MOH_CPU_GEMM");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "onednn") == 0) return true;
  if (std::strcmp(v, "torch") == 0) return false;
  throw Error(std::string("MOH_CPU_GEMM='") + v + "' is not a CPU GEMM choice: use 'onednn' (the default) or 'torch' "
              "(LibTorch's GEMMs), or unset it");
}

torch::Tensor apply_epilogue_torch(torch::Tensor y, Epilogue e) {
  switch (e) {
    case Epilogue::kGeluTanh: return torch::gelu(y, "tanh");
    case Epilogue::kGeluErf: return torch::gelu(y);
    case Epilogue::kNone: break;
  }
  return y;
}

#ifdef MOH_WITH_ONEDNN
using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

bool pack_weights() {
  static const bool on = [] {
    const char* v = std::getenv("MOH_CPU_GEMM_PACK");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

Dt dnnl_type(torch::ScalarType s) { return s == torch::kBFloat16 ? Dt::bf16 : Dt::f32; }

// One matmul primitive: src [M, K] x weights [K, N] (packed) + bias [1, N] -> dst [M, N], then the epilogue.
struct PrimitiveKey {
  int64_t m, k, n;
  int weight_type, bias_type;  // bias_type -1: no bias
  int epilogue;
  bool operator==(const PrimitiveKey& o) const {
    return std::tie(m, k, n, weight_type, bias_type, epilogue) ==
           std::tie(o.m, o.k, o.n, o.weight_type, o.bias_type, o.epilogue);
  }
};
struct PrimitiveKeyHash {
  size_t operator()(const PrimitiveKey& k) const {
    size_t h = std::hash<int64_t>()(k.m);
    for (int64_t v : {k.k, k.n, int64_t(k.weight_type), int64_t(k.bias_type), int64_t(k.epilogue)})
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h;
  }
};
struct Primitive {
  bool supported = false;  // false: oneDNN has no implementation here (e.g. bf16 on a CPU without AVX-512)
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul matmul;
};

// The packed copy of one weight tensor in the layout one primitive asked for.
struct PackedWeight {
  explicit PackedWeight(c10::weak_intrusive_ptr<c10::StorageImpl> s) : storage(std::move(s)) {}
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;  // weak: keeps only the StorageImpl's address unique
  int64_t offset = 0, out = 0, in = 0, version = 0;
  int type = 0;
  memory::desc layout;
  torch::Tensor bytes;  // holds the packed data
};

class Cache {
 public:
  std::mutex mutex;
  std::unordered_map<PrimitiveKey, Primitive, PrimitiveKeyHash> primitives;
  std::unordered_map<const c10::StorageImpl*, std::vector<PackedWeight>> packs;

  const Primitive& primitive(const PrimitiveKey& key) {
    auto it = primitives.find(key);
    if (it != primitives.end()) return it->second;
    Primitive p;
    try {
      const auto wt = static_cast<Dt>(key.weight_type);
      memory::desc src({key.m, key.k}, wt, Tag::ab);
      // packed: the kernel picks its layout; plain: the weight's own [out, in] memory (oneDNN's "ba")
      memory::desc wei({key.k, key.n}, wt, pack_weights() ? Tag::any : Tag::ba);
      memory::desc dst({key.m, key.n}, wt, Tag::ab);
      dnnl::post_ops ops;
      if (key.epilogue != int(Epilogue::kNone))
        ops.append_eltwise(1.f,
                           key.epilogue == int(Epilogue::kGeluTanh) ? dnnl::algorithm::eltwise_gelu_tanh
                                                                     : dnnl::algorithm::eltwise_gelu_erf,
                           0.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(ops);
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per call: concurrent calls share no buffer
      const auto desc = key.bias_type < 0
                            ? dnnl::matmul::desc(src, wei, dst)
                            : dnnl::matmul::desc(src, wei, memory::desc({1, key.n}, Dt(key.bias_type), Tag::ab), dst);
      p.pd = dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
      p.matmul = dnnl::matmul(p.pd);
      p.supported = true;
    } catch (const dnnl::error&) {  // e.g. bf16 where the CPU (or DNNL_MAX_CPU_ISA) has no AVX-512
      p.supported = false;
    }
    return primitives.emplace(key, std::move(p)).first->second;
  }

  // The weight [out, in] (row-major = [in, out] in oneDNN's "ba" tag) in `layout`, packed once per version.
  memory packed(const torch::Tensor& w, const memory::desc& layout) {
    const auto* impl = w.storage().unsafeGetStorageImpl();
    const int64_t version = w.is_inference() ? 0 : w._version();
    drop_freed();
    auto& list = packs[impl];
    for (auto& p : list) {
      if (p.offset == w.storage_offset() && p.out == w.size(0) && p.in == w.size(1) &&
          p.type == int(dnnl_type(w.scalar_type())) && p.layout == layout) {
        if (p.version != version) {
          reorder_into(w, p);
          p.version = version;
        }
        return memory(p.layout, cpu_engine(), p.bytes.data_ptr());
      }
    }
    PackedWeight p(w.storage().getWeakStorageImpl());
    p.offset = w.storage_offset();
    p.out = w.size(0);
    p.in = w.size(1);
    p.version = version;
    p.type = int(dnnl_type(w.scalar_type()));
    p.layout = layout;
    p.bytes = torch::empty({int64_t(layout.get_size())}, torch::kUInt8);
    reorder_into(w, p);
    list.push_back(p);
    return memory(p.layout, cpu_engine(), p.bytes.data_ptr());
  }

  size_t pack_count() {
    drop_freed();
    size_t n = 0;
    for (auto& kv : packs) n += kv.second.size();
    return n;
  }

 private:
  static void reorder_into(const torch::Tensor& w, PackedWeight& p) {
    auto wc = w.contiguous();  // [out, in]
    memory plain(memory::desc({p.in, p.out}, Dt(p.type), Tag::ba), cpu_engine(), wc.data_ptr());
    memory dst(p.layout, cpu_engine(), p.bytes.data_ptr());
    dnnl::stream s(cpu_engine());
    dnnl::reorder(plain, dst).execute(s, plain, dst);
    s.wait();
  }
  void drop_freed() {
    for (auto it = packs.begin(); it != packs.end();) {
      auto& list = it->second;
      for (size_t i = 0; i < list.size();)
        if (list[i].storage.expired()) list.erase(list.begin() + i);
        else ++i;
      it = list.empty() ? packs.erase(it) : std::next(it);
    }
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

// The oneDNN path; returns an undefined tensor when oneDNN has no kernel for this case.
torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Epilogue e) {
  const int64_t K = w.size(1), N = w.size(0);
  auto xs = (x.scalar_type() == w.scalar_type() ? x : x.to(w.scalar_type())).contiguous();
  const int64_t M = xs.numel() / K;
  torch::Tensor bias = b.defined() ? b.contiguous() : b;
  const PrimitiveKey key{M, K, N, int(dnnl_type(w.scalar_type())),
                         bias.defined() ? int(dnnl_type(bias.scalar_type())) : -1, int(e)};
  dnnl::matmul matmul;
  memory weights;
  memory::desc scratch_md;
  {
    std::lock_guard<std::mutex> lock(cache().mutex);
    const auto& p = cache().primitive(key);
    if (!p.supported) return {};
    matmul = p.matmul;
    scratch_md = p.pd.scratchpad_desc();
    if (pack_weights()) weights = cache().packed(w, p.pd.weights_desc());
  }
  torch::Tensor w_plain;
  if (!pack_weights()) {
    w_plain = w.contiguous();
    weights = memory(memory::desc({K, N}, Dt(key.weight_type), Tag::ba), cpu_engine(), w_plain.data_ptr());
  }
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  auto y = torch::empty(out_sizes, w.options());  // [..., in] -> [..., out]
  const auto dt = Dt(key.weight_type);
  auto& eng = cpu_engine();
  memory src(memory::desc({M, K}, dt, Tag::ab), eng, xs.data_ptr());
  memory dst(memory::desc({M, N}, dt, Tag::ab), eng, y.data_ptr());
  auto scratch_bytes = torch::empty({int64_t(scratch_md.get_size())}, torch::kUInt8);
  memory scratch(scratch_md, eng, scratch_bytes.data_ptr());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}};
  if (bias.defined())
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({1, N}, Dt(key.bias_type), Tag::ab), eng, bias.data_ptr()));
  try {
    dnnl::stream s(eng);
    matmul.execute(s, args);
    s.wait();
  } catch (const dnnl::error&) {
    // Seen with oneDNN 2.6's "gemm:jit" matmul (its choice under DNNL_MAX_CPU_ISA=AVX2) inside a process with
    // PyPI torch 2.11's OpenMP runtime: "could not execute a primitive". y is discarded; this shape goes to LibTorch
    // from now on.
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().primitives[key].supported = false;
    return {};
  }
  return y;
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}
#endif  // MOH_WITH_ONEDNN

bool dtype_ok(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16;
}

}  // namespace

bool enabled() {
#ifdef MOH_WITH_ONEDNN
  int v = g_enabled.load();
  if (v < 0) {
    v = env_allows() ? 1 : 0;
    g_enabled.store(v);
  }
  return v == 1;
#else
  return false;
#endif
}

void set_enabled(bool on) { g_enabled.store(on ? 1 : 0); }

bool uses_onednn(const torch::Tensor& x, const torch::Tensor& w) {
  if (!enabled() || !x.defined() || !w.defined()) return false;
  if (!x.device().is_cpu() || !w.device().is_cpu() || w.dim() != 2 || !dtype_ok(w) || !dtype_ok(x)) return false;
  if (x.dim() < 1 || x.size(-1) != w.size(1) || w.size(1) == 0 || w.size(0) == 0 || x.numel() == 0) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  return true;
}

torch::Tensor torch_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Epilogue e) {
  return apply_epilogue_torch(torch::linear(x.scalar_type() == w.scalar_type() ? x : x.to(w.scalar_type()), w, b), e);
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Epilogue e) {
  if (w.dim() == 2 && w.size(1) > 0) g_flops.fetch_add(uint64_t(2 * x.numel() * w.size(0)), std::memory_order_relaxed);
#ifdef MOH_WITH_ONEDNN
  const bool bias_ok = !b.defined() || (b.device().is_cpu() && dtype_ok(b) && b.dim() == 1 && b.size(0) == w.size(0) &&
                                        !(torch::GradMode::is_enabled() && b.requires_grad()));
  if (bias_ok && uses_onednn(x, w)) {
    auto y = onednn_linear(x, w, b, e);
    if (y.defined()) return y;
  }
#endif
  return torch_linear(x, w, b, e);
}

std::string describe() {
#ifdef MOH_WITH_ONEDNN
  const auto* v = dnnl::version();
  std::ostringstream s;
  s << "oneDNN " << v->major << "." << v->minor << "." << v->patch << " (" << isa_name(dnnl::get_effective_cpu_isa())
    << ")" << (enabled() ? "" : ", off (MOH_CPU_GEMM=torch)");
  return s.str();
#else
  return "LibTorch (built without oneDNN)";
#endif
}

uint64_t linear_flops() { return g_flops.load(); }

bool packs_weights() {
#ifdef MOH_WITH_ONEDNN
  return pack_weights();
#else
  return false;
#endif
}

size_t cached_weight_count() {
#ifdef MOH_WITH_ONEDNN
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().pack_count();
#else
  return 0;
#endif
}

}  // namespace moh::cpu_gemm
