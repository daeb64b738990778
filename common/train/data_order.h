// Seeded, stateless data order and per-step random generators shared by vit/train and dit/train: batch b of step s
// depends only on (seed, s), so a resumed run draws exactly what an uninterrupted run would. Our own scheme (the
// official train.py uses a DistributedSampler + torch.manual_seed); mixer: common/runtime/seed_mix.h.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace moh {

// ---------------------------------------------------------------- randomness and data order
uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t step);  // splitmix64-based, well spread
// A CPU generator for draw `stream` of step `step` (random tensors are drawn on CPU and moved, so runs are
// reproducible across devices and a resumed run draws the same numbers).
torch::Generator step_generator(uint64_t seed, uint64_t stream, int64_t step);
// Fisher-Yates permutation of 0..n-1 from a 64-bit seed (portable across standard libraries).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// Shuffled mini-batches without replacement, reshuffled every epoch, dropping the last partial batch.
// Stateless: indices(step) depends only on (n, batch, seed, step).
class EpochSampler {
 public:
  EpochSampler(int64_t n, int64_t batch_size, uint64_t seed);
  int64_t steps_per_epoch() const { return n_ / batch_; }
  torch::Tensor indices(int64_t step);  // [batch] int64

 private:
  int64_t n_, batch_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace moh
