// Plain C++ (no torch) CPU kernels behind vit/aggregated_attention_cpu.h: the per-pixel fused aggregated attention
// of SkyworkAI/MoH MoH-ViT/attention_native.py (spec/moh-vit.md §3.5) and its two small preparation passes. They
// take a params struct of raw fp32 pointers and work on a range of rows, so the caller decides the threading.
// Inner loops are written to vectorise (independent lanes, no reductions that need reassociation); on x86-64 GCC
// each kernel is compiled for AVX-512, AVX2 and baseline and picked at load time (target_clones).
#pragma once
#include <cstdint>

namespace moh::vit::cpu {

constexpr int64_t kMaxWindowSize = 15;  // window slots live on the stack; the kernel's caller checks ws against it
constexpr int64_t kMaxWindowSlots = kMaxWindowSize * kMaxWindowSize;

struct AggParams {
  const float* q = nullptr;      // [B, N, C] raw queries
  const float* khat = nullptr;   // [B, N, C] L2-normalised local keys
  const float* v = nullptr;      // row n of image b at v + (b*N + n) * v_row: the d values of head `hd` at + hd*d
  int64_t v_row = 0;             //   (points into kv's v half, row stride 2C)
  const float* kp_t = nullptr;   // [B, h, d, Pp] L2-normalised pooled keys, transposed, zero-padded to Pp = pad16(P)
  const float* vp = nullptr;     // pooled values: row p of image b at vp + (b*P + p) * v_row (+ hd*d)
  const float* bias = nullptr;   // [h, N, P]
  const float* qe = nullptr;     // [h, d] query_embedding
  const float* sp = nullptr;     // [h] softplus(temperature)
  const float* scale = nullptr;  // [N] seq_length_scale
  const float* rpb = nullptr;    // [h, L] relative_pos_bias_local
  const float* lt = nullptr;     // [h, d, Lp] learnable_tokens, zero-padded to Lp = pad16(L)
  const float* lb = nullptr;     // [h, L] learnable_bias
  const float* gates = nullptr;  // [B, N, h]
  float* out = nullptr;          // [B, N, C] gated head outputs
  int64_t N = 0, H = 0, W = 0, ws = 3, h = 1, d = 1, P = 1;
  int64_t C() const { return h * d; }
  int64_t L() const { return ws * ws; }
  int64_t Lp() const { return pad16(L()); }
  int64_t Pp() const { return pad16(P); }
  // Floats of per-thread scratch agg_rows needs.
  int64_t scratch_floats() const { return 4 * d + 2 * Lp() + Pp() + 16; }
  static int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }
};

// Fused attention for rows [begin, end) of the flattened [B*N] pixel index.
void agg_rows(const AggParams& p, int64_t begin, int64_t end, float* scratch);

// out[r, c] = in[r * in_row + c] / max(||in[r, head c/d]||, 1e-12) for c < h*d, rows [begin, end); out is [rows, h*d].
void l2_normalize_heads(const float* in, int64_t in_row, float* out, int64_t h, int64_t d, int64_t begin,
                        int64_t end);

// Pooled keys for image b: kp_t[b, hd, i, p] = normalised kv_pool[b, p, hd*d + i] (kv_pool rows of `row` floats);
// kp_t rows hold Pp floats, the padding must already be zero.
void pack_pooled_keys(const float* kv_pool, int64_t row, float* kp_t, int64_t h, int64_t d, int64_t P, int64_t Pp,
                      int64_t b);

}  // namespace moh::vit::cpu
