// Seeded data order and per-step generators (see data_order.h).
#include "common/train/data_order.h"

#include <ATen/CPUGeneratorImpl.h>

#include <utility>

#include "common/error.h"
#include "common/runtime/seed_mix.h"

namespace moh {

// ---------------------------------------------------------------- randomness and data order

uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t step) {
  return splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ step);
}

torch::Generator step_generator(uint64_t seed, uint64_t stream, int64_t step) {
  return at::detail::createCPUGenerator(mix_seed(seed, stream, uint64_t(step)));
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    state = splitmix64(state);
    // Lemire's multiply-shift maps the 64-bit draw to [0, i] (bias < 2^-40 for any dataset size here).
    const auto j = int64_t((static_cast<unsigned __int128>(state) * uint64_t(i + 1)) >> 64);
    std::swap(p[size_t(i)], p[size_t(j)]);
  }
  return p;
}

EpochSampler::EpochSampler(int64_t n, int64_t batch_size, uint64_t seed) : n_(n), batch_(batch_size), seed_(seed) {
  MOH_CHECK(batch_size > 0, "batch size must be positive (got ", batch_size, ")");
  MOH_CHECK(n >= batch_size, "the dataset has ", n, " samples, fewer than one batch of ", batch_size,
            "; lower the batch size");
}

torch::Tensor EpochSampler::indices(int64_t step) {
  const int64_t epoch = step / steps_per_epoch(), pos = step % steps_per_epoch();
  if (epoch != cached_epoch_) {
    perm_ = seeded_permutation(n_, mix_seed(seed_, 0x5A3D1E, uint64_t(epoch)));
    cached_epoch_ = epoch;
  }
  return torch::tensor(std::vector<int64_t>(perm_.begin() + pos * batch_, perm_.begin() + (pos + 1) * batch_),
                       torch::kLong);
}

}  // namespace moh
