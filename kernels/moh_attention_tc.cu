// Tensor-core MoH sparse-head attention (flash-attention-2 style forward, bf16/fp16 in, fp32 accumulation).
// Mirrors the math of MoH-DiT/models.py `MoHAttention.forward` (softmax((q*scale) k^T) v per head, x gate), but
// computes only the query rows whose gate is non-zero (spec/moh-attention.md §7).
//
// One block = (query tile of BM = 64*MT *selected* tokens, head, batch); 4 warps, each owns 16*MT query rows
// (MT = 2 m-tiles per warp would reuse every K/V fragment twice; measured slower, so MT = 1 is launched).
//  1. zero duty: the block writes zeros into the output slots of the unselected tokens among tokens
//     [BM*tile, BM*tile+BM) of its head (so every slot of [B, Nq, h*d] is written exactly once);
//  2. compaction: a ballot/popc scan over the head's gates finds the selected tokens (gate != 0) of rank
//     [BM*tile, BM*tile+BM) in ascending token order (blocks beyond the head's count leave after step 1);
//  3. gathers those q rows into shared memory (cp.async, zero-filled pad columns d..DP and pad rows), keeps
//     them in registers as mma A fragments, then streams K/V tiles of 64 keys (double-buffered cp.async) and runs
//     S = Q K^T (mma.sync m16n8k16), an online softmax in fp32 (exp2 with the scale folded in), O += P V;
//  4. epilogue: O * gate / l, staged in shared memory, written with 16-byte stores to the token's head slot.
// DP = head dim padded to a multiple of 16 (24 -> 32, 72 -> 80): zero q/k pad columns add nothing to scores, zero v
// pad columns give output columns that are never stored.
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "kernels/moh_attention.h"
#include "kernels/moh_kernel_common.cuh"

namespace moh::kernels {
namespace {

constexpr int kBN = 64;        // keys per K/V tile
constexpr int kThreads = 128;  // 4 warps
constexpr float kLog2e = 1.4426950408889634f;

template <int DP, int MT>
struct TcShape {
  static constexpr int BM = 64 * MT;  // query rows per block: 4 warps x 16*MT
  static_assert(DP % 16 == 0 && DP <= 128, "padded head dim must be a multiple of 16, at most 128");
  static constexpr int LDS = DP + 8;   // smem row stride in elements: +16 B keeps ldmatrix rows on distinct banks
  static constexpr int CPR = DP / 8;   // 16-byte chunks per padded row
  template <typename T>
  static constexpr size_t smem_bytes() {
    return static_cast<size_t>(BM + 4 * kBN) * LDS * sizeof(T) + BM * sizeof(int);  // Q + 2x(K,V) + token list
  }
};

// ---------------------------------------------------------------- PTX wrappers (sm_80+)
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// 16-byte async copy global -> shared; when !valid, writes 16 zero bytes and reads nothing (src-size 0).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// D += A(16x16, row) * B(16x8, col), fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> one register of two 16-bit values (lo = first, i.e. the lower column / k index).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// ---------------------------------------------------------------- the kernel
// Register cap for 4 resident blocks (16 warps/SM) at 32 < d <= 80 (without it the compiler took 142 registers,
// 3 blocks/SM); at d <= 32 capping for 5-6 blocks spilled, so no cap; at d = 128 shared memory allows 2 blocks.
template <typename T, int DP, int MT>
__global__ void __launch_bounds__(kThreads, DP <= 32 ? 1 : DP <= 80 ? 4 : 2) sparse_attention_tc_kernel(const SparseAttentionParams p) {
  using S = TcShape<DP, MT>;
  constexpr int LDS = S::LDS, CPR = S::CPR, kBM = S::BM;
  constexpr int KSTEPS = DP / 16;  // k-steps of Q K^T over the head dim
  constexpr int DTILES = DP / 8;   // n-tiles of the output over the head dim
  constexpr int STILES = kBN / 8;  // n-tiles of S over the keys of one K tile
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // [kBM][LDS]; reused as the output staging area
  T* sK = sQ + kBM * LDS;                  // [2][kBN][LDS]
  T* sV = sK + 2 * kBN * LDS;              // [2][kBN][LDS]
  int* sTok = reinterpret_cast<int*>(sV + 2 * kBN * LDS);  // [kBM] token index of each Q tile row
  __shared__ int sWarpCount[kThreads / 32];

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t tile = blockIdx.x, hd = blockIdx.y, b = blockIdx.z;
  const int64_t Nq = p.Nq, Nk = p.Nk, d = p.d, HD = p.h * p.d;
  const int chunks = static_cast<int>(d / 8);  // real 16-byte chunks per row (d % 8 == 0 checked on the host)
  const T* gates = static_cast<const T*>(p.gates);
  const int64_t gs0 = p.g_stride[0], gs1 = p.g_stride[1], gs2 = p.g_stride[2];
  T* out = static_cast<T*>(p.out);
  const int64_t first = tile * kBM;

  // 1. zero duty for tokens [first, first + kBM) of this head.
  for (int i = tid; i < kBM * chunks; i += kThreads) {
    const int r = i / chunks, c = i % chunks;
    const int64_t t = first + r;
    if (t < Nq && dev::load_gate(gates, gs0, gs1, gs2, b, t, hd) == 0.f)
      *reinterpret_cast<uint4*>(out + (b * Nq + t) * HD + hd * d + c * 8) = make_uint4(0u, 0u, 0u, 0u);
  }

  // 2. compaction: selected tokens of rank [first, first + kBM), ascending token order.
  int64_t running = 0;  // selected tokens before the current chunk; block-uniform
  for (int64_t c0 = 0; c0 < Nq && running < first + kBM; c0 += kThreads) {
    const int64_t t = c0 + tid;
    const bool sel = t < Nq && dev::load_gate(gates, gs0, gs1, gs2, b, t, hd) != 0.f;
    const unsigned bal = __ballot_sync(0xffffffffu, sel);
    if (lane == 0) sWarpCount[warp] = __popc(bal);
    __syncthreads();
    int before = 0, total = 0;
#pragma unroll
    for (int w = 0; w < kThreads / 32; ++w) {
      const int n = sWarpCount[w];
      before += w < warp ? n : 0;
      total += n;
    }
    const int64_t rank = running + before + __popc(bal & ((1u << lane) - 1u));
    if (sel && rank >= first && rank < first + kBM) sTok[rank - first] = static_cast<int>(t);
    running += total;
    __syncthreads();  // sWarpCount is rewritten by the next chunk; sTok complete after the last one
  }
  const int rows = static_cast<int>(running - first >= kBM ? kBM : (running - first > 0 ? running - first : 0));
  if (rows == 0) return;  // block-uniform: this head has fewer selected tokens than first + 1

  // 3a. gather the selected q rows (pad rows and pad columns zero-filled).
  const T* qb = static_cast<const T*>(p.q) + b * p.q_stride[0] + hd * p.q_stride[1];
  const T* kb = static_cast<const T*>(p.k) + b * p.k_stride[0] + hd * p.k_stride[1];
  const T* vb = static_cast<const T*>(p.v) + b * p.v_stride[0] + hd * p.v_stride[1];
  for (int i = tid; i < kBM * CPR; i += kThreads) {
    const int r = i / CPR, c = i % CPR;
    const bool valid = r < rows && c < chunks;
    const T* src = valid ? qb + static_cast<int64_t>(sTok[r]) * p.q_stride[2] + c * 8 : qb;
    cp_async_16(sQ + r * LDS + c * 8, src, valid);
  }
  cp_async_commit();
  // Row strides in 32 bits (the host checks kBN * stride < 2^31): cheap per-chunk offsets inside a tile.
  const int ks2 = static_cast<int>(p.k_stride[2]), vs2 = static_cast<int>(p.v_stride[2]);
  auto load_kv = [&](int64_t j0, int buf) {
    T* dk = sK + buf * kBN * LDS;
    T* dv = sV + buf * kBN * LDS;
    const T* kt = kb + j0 * p.k_stride[2];
    const T* vt = vb + j0 * p.v_stride[2];
    const int64_t left = Nk - j0;
    const int keys = left < kBN ? static_cast<int>(left) : kBN;
    for (int i = tid; i < kBN * CPR; i += kThreads) {
      const int r = i / CPR, c = i % CPR;
      const bool valid = r < keys && c < chunks;
      cp_async_16(dk + r * LDS + c * 8, valid ? kt + (r * ks2 + c * 8) : kb, valid);
      cp_async_16(dv + r * LDS + c * 8, valid ? vt + (r * vs2 + c * 8) : vb, valid);
    }
  };
  load_kv(0, 0);
  cp_async_commit();
  cp_async_wait<1>();  // Q landed (K/V tile 0 may still be in flight)
  __syncthreads();

  // 3b. Q fragments (A operand; m-tile m = rows warp*16*MT + 16*m ..+15) stay in registers for the key loop.
  const int wrow = warp * 16 * MT;
  uint32_t qf[MT][KSTEPS][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk)
      ldmatrix_x4(qf[m][kk], sQ + (wrow + 16 * m + (lane % 16)) * LDS + kk * 16 + (lane / 16) * 8);

  float o[MT][DTILES][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int i = 0; i < DTILES; ++i) o[m][i][0] = o[m][i][1] = o[m][i][2] = o[m][i][3] = 0.f;
  // This thread's rows in m-tile m: wrow + 16m + lane/4 (accumulator elements 0,1) and +8 (elements 2,3).
  float m_run[MT][2], l_run[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) m_run[m][0] = m_run[m][1] = -INFINITY, l_run[m][0] = l_run[m][1] = 0.f;
  const float sl2 = p.scale * kLog2e;  // exp(x*scale) = exp2(x*scale*log2 e)
  const int64_t ntiles = (Nk + kBN - 1) / kBN;

  // 3c. key loop.
  for (int64_t jt = 0; jt < ntiles; ++jt) {
    const int buf = static_cast<int>(jt & 1);
    if (jt + 1 < ntiles) load_kv((jt + 1) * kBN, buf ^ 1);  // that buffer was released by the last barrier
    cp_async_commit();   // possibly empty group: keeps wait_group counting uniform
    cp_async_wait<1>();  // tile jt landed
    __syncthreads();
    const T* cK = sK + buf * kBN * LDS;
    const T* cV = sV + buf * kBN * LDS;

    float s[MT][STILES][4];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int i = 0; i < STILES; ++i) s[m][i][0] = s[m][i][1] = s[m][i][2] = s[m][i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk) {
#pragma unroll
      for (int np = 0; np < STILES / 2; ++np) {  // 16 keys per ldmatrix.x4: two n-tiles of S, reused by each m-tile
        uint32_t kf[4];
        ldmatrix_x4(kf, cK + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma_16816<T>(s[m][2 * np], qf[m][kk], kf[0], kf[1]);
          mma_16816<T>(s[m][2 * np + 1], qf[m][kk], kf[2], kf[3]);
        }
      }
    }
    if ((jt + 1) * kBN > Nk) {  // last tile: keys past Nk do not exist
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int nt = 0; nt < STILES; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (jt * kBN + nt * 8 + (lane % 4) * 2 + (e & 1) >= Nk) s[m][nt][e] = -INFINITY;
    }
    uint32_t pa[MT][kBN / 16][4];  // P as A fragments (this dtype), one set per m-tile
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      // Online softmax (fp32). Row max over this thread's 16 columns, then over the 4 threads of the quad.
      float mx[2] = {m_run[m][0], m_run[m][1]};
#pragma unroll
      for (int nt = 0; nt < STILES; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[m][nt][e] * sl2);
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      }
      // mx is finite: key jt*kBN exists and q/k are finite. corr = 0 on the first tile (m_run = -inf).
      const float corr[2] = {exp2f(m_run[m][0] - mx[0]), exp2f(m_run[m][1] - mx[1])};
      float rs[2] = {0.f, 0.f};
#pragma unroll
      for (int nt = 0; nt < STILES; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[m][nt][e] = exp2f(s[m][nt][e] * sl2 - mx[e >> 1]);  // masked keys: exp2(-inf) = 0
          rs[e >> 1] += s[m][nt][e];
        }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        l_run[m][r] = l_run[m][r] * corr[r] + rs[r];  // per-thread partial sum; the quad is reduced at the end
        m_run[m][r] = mx[r];
      }
#pragma unroll
      for (int i = 0; i < DTILES; ++i) {
        o[m][i][0] *= corr[0];
        o[m][i][1] *= corr[0];
        o[m][i][2] *= corr[1];
        o[m][i][3] *= corr[1];
      }
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        pa[m][kk][0] = pack2<T>(s[m][2 * kk][0], s[m][2 * kk][1]);
        pa[m][kk][1] = pack2<T>(s[m][2 * kk][2], s[m][2 * kk][3]);
        pa[m][kk][2] = pack2<T>(s[m][2 * kk + 1][0], s[m][2 * kk + 1][1]);
        pa[m][kk][3] = pack2<T>(s[m][2 * kk + 1][2], s[m][2 * kk + 1][3]);
      }
    }
    // O += P V: V via ldmatrix.trans, each V fragment reused by every m-tile.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
#pragma unroll
      for (int dp = 0; dp < DTILES / 2; ++dp) {  // 16 head-dim columns per ldmatrix.x4.trans: two n-tiles of O
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, cV + (kk * 16 + (lane & 15)) * LDS + dp * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma_16816<T>(o[m][2 * dp], pa[m][kk], vf[0], vf[1]);
          mma_16816<T>(o[m][2 * dp + 1], pa[m][kk], vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // all warps are done with buffer `buf` before the next iteration refills it
  }

  // 4. epilogue: o * gate / l -> staging rows of this warp in sQ (only this warp read them) -> 16-byte stores.
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const int r0 = wrow + 16 * m + lane / 4;
    float f[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = l_run[m][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int row = r0 + 8 * r;
      const float g = row < rows ? dev::load_gate(gates, gs0, gs1, gs2, b, sTok[row], hd) : 0.f;
      f[r] = g / l;
    }
#pragma unroll
    for (int i = 0; i < DTILES; ++i) {
      const int col = i * 8 + (lane % 4) * 2;
      *reinterpret_cast<uint32_t*>(sQ + r0 * LDS + col) = pack2<T>(o[m][i][0] * f[0], o[m][i][1] * f[0]);
      *reinterpret_cast<uint32_t*>(sQ + (r0 + 8) * LDS + col) = pack2<T>(o[m][i][2] * f[1], o[m][i][3] * f[1]);
    }
  }
  __syncwarp();
  for (int i = lane; i < 16 * MT * chunks; i += 32) {
    const int row = wrow + i / chunks, c = i % chunks;
    if (row < rows)
      *reinterpret_cast<uint4*>(out + (b * Nq + sTok[row]) * HD + hd * d + c * 8) =
          *reinterpret_cast<const uint4*>(sQ + row * LDS + c * 8);
  }
}

template <typename T, int DP, int MT>
cudaError_t launch_tc(const SparseAttentionParams& p, cudaStream_t stream) {
  using S = TcShape<DP, MT>;
  constexpr size_t smem = S::template smem_bytes<T>();
  auto kernel = sparse_attention_tc_kernel<T, DP, MT>;
  // Above 48 KB a block needs the opt-in; setting it every launch is cheap and avoids a racy static flag.
  if (smem > 48 * 1024)
    MOH_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                  static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((p.Nq + S::BM - 1) / S::BM), static_cast<unsigned>(p.h),
                  static_cast<unsigned>(p.B));
  kernel<<<grid, kThreads, smem, stream>>>(p);
  MOH_CUDA_RETURN_LAUNCH_ERROR();
  return cudaSuccess;
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

}  // namespace

bool tensor_core_attention_supported(const SparseAttentionParams& p, int sm) {
  if (sm < 80) return false;  // cp.async and bf16 mma.sync need sm_80
  if (p.dtype != DType::BF16 && p.dtype != DType::F16) return false;
  if (p.d <= 0 || p.d % 8 != 0 || p.d > kTensorCoreMaxHeadDim) return false;
  if (p.B <= 0 || p.B > 65535 || p.h <= 0 || p.h > 65535 || p.Nq <= 0 || p.Nk <= 0) return false;
  if (p.Nq > 0x7fffffff || p.Nk > 0x7fffffff) return false;  // token indices are kept as int in shared memory
  // 16-byte cp.async / vector stores: every row start must be 16-byte aligned, d contiguous.
  for (const int64_t* st : {p.q_stride, p.k_stride, p.v_stride})
    if (st[3] != 1 || st[0] % 8 != 0 || st[1] % 8 != 0 || st[2] % 8 != 0 || st[2] < 0 || st[2] > 0x7fffffff / kBN)
      return false;
  return aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.out);
}

cudaError_t sparse_attention_tensor_core(const SparseAttentionParams& p, cudaStream_t stream) {
  int dev = 0, major = 0, minor = 0;
  MOH_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  MOH_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  MOH_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  if (!tensor_core_attention_supported(p, major * 10 + minor)) return cudaErrorInvalidValue;
  auto by_dp = [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    // MT = 1: on an H200, two m-tiles per warp (128-row tiles, 255 registers, 8 warps/SM) measured 7% slower
    // than one (128 registers, 16 warps/SM) at B=64 N=256 h=24 d=72; both passed the GPU tests.
    if (p.d <= 32) return launch_tc<T, 32, 1>(p, stream);
    if (p.d <= 64) return launch_tc<T, 64, 1>(p, stream);
    if (p.d <= 80) return launch_tc<T, 80, 1>(p, stream);
    return launch_tc<T, 128, 1>(p, stream);
  };
  struct Bf16Tag { using type = __nv_bfloat16; };
  struct F16Tag { using type = __half; };
  return p.dtype == DType::BF16 ? by_dp(Bf16Tag{}) : by_dp(F16Tag{});
}

}  // namespace moh::kernels
