// Sharded evaluation with a c10d reduction (see evaluate_dist.h).
#include "vit/evaluate_dist.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/dist/progress.h"
#include "common/error.h"

namespace moh::vit {

std::vector<int64_t> rank_samples(const EvalDataset& ds, int rank, int world) {
  const auto n = (int64_t)ds.samples.size();
  if (ds.num_shards <= 0) return dist::strided_shard(n, rank, world);
  const int64_t S = ds.num_shards, W = world;
  std::vector<int64_t> within(size_t(S), 0);  // position of the next sample inside its shard
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = ds.samples[size_t(i)].shard;
    MOH_CHECK(s >= 0 && s < S, "sample '", ds.samples[size_t(i)].path, "' has no shard (", s, " of ", S, ")");
    const int64_t j = within[size_t(s)]++;
    bool mine;
    if (S >= W) {
      mine = s % W == rank;
    } else {
      const int64_t sharing = (W - s + S - 1) / S;  // ranks s, s + S, s + 2S, ... below W
      mine = rank % S == s && rank / S == j % sharing;
    }
    if (mine) out.push_back(i);
  }
  return out;
}

EvalDataset select_samples(const EvalDataset& ds, const std::vector<int64_t>& indices) {
  EvalDataset out = ds;
  out.samples.clear();
  out.samples.reserve(indices.size());
  for (auto i : indices) out.samples.push_back(ds.samples.at(size_t(i)));
  if (ds.images_u8.defined())
    out.images_u8 = indices.empty() ? ds.images_u8.slice(0, 0, 0)
                                    : ds.images_u8.index_select(0, torch::tensor(indices, torch::kInt64));
  return out;
}

EvalResult evaluate_sharded(Classifier& clf, const EvalDataset& ds, const EvalOptions& o, dist::Group& g) {
  if (!g.multi()) return evaluate(clf, ds, o);
  const auto t0 = std::chrono::steady_clock::now();
  const auto n = (int64_t)ds.samples.size();
  // Every rank must list the same dataset, or the shards would not cover it exactly once.
  int64_t label_sum = 0;
  for (const auto& s : ds.samples) label_sum += s.label;
  g.check_same("dataset", std::to_string(n) + " images, labels summing to " + std::to_string(label_sum) +
                              (n ? ", first '" + ds.samples.front().path + "', last '" + ds.samples.back().path + "'"
                                 : std::string()));

  const auto mine = rank_samples(ds, g.rank(), g.world_size());
  const auto shard = select_samples(ds, mine);
  dist::JobProgress progress(g, "eval/images", "eval", n, "img", o.progress);
  EvalOptions so = o;
  so.progress = false;
  so.require_readable = false;
  so.on_progress = [&](int64_t k) { progress.advance(k); };
  EvalResult r = evaluate(clf, shard, so);
  progress.finish_and_wait("evaluation");

  // One int64 vector: 4 totals, then images/top1/topk per class, then (prediction + 1) per global index.
  const int64_t C = (int64_t)r.per_class.size();
  auto counts = torch::zeros({4 + 3 * C + n}, torch::kInt64);
  auto c = counts.accessor<int64_t, 1>();
  c[0] = r.images, c[1] = r.failed, c[2] = r.top1_correct, c[3] = r.topk_correct;
  for (int64_t k = 0; k < C; ++k) {
    c[4 + 3 * k] = r.per_class[k].images, c[5 + 3 * k] = r.per_class[k].top1, c[6 + 3 * k] = r.per_class[k].topk;
  }
  for (size_t j = 0; j < mine.size(); ++j) c[4 + 3 * C + mine[j]] = r.predictions[j] + 1;
  auto model_seconds = torch::tensor({r.model_seconds}, torch::kFloat64);
  g.all_reduce_sum(counts, "summing the evaluation counts");
  g.all_reduce_sum(model_seconds, "summing the model times");

  EvalResult out;
  out.topk = r.topk;
  c = counts.accessor<int64_t, 1>();
  out.images = c[0], out.failed = c[1], out.top1_correct = c[2], out.topk_correct = c[3];
  out.per_class.resize(size_t(C));
  for (int64_t k = 0; k < C; ++k) out.per_class[k] = {c[4 + 3 * k], c[5 + 3 * k], c[6 + 3 * k]};
  out.predictions.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) out.predictions[i] = c[4 + 3 * C + i] - 1;
  out.model_seconds = model_seconds.item<double>();

  nlohmann::json fails = nlohmann::json::array();
  for (const auto& f : r.failures) fails.push_back({f.path, f.error});
  for (const auto& part : g.gather_to_main(fails.dump(), "unreadable files"))
    for (const auto& f : nlohmann::json::parse(part))
      out.failures.push_back({f[0].get<std::string>(), f[1].get<std::string>()});
  std::sort(out.failures.begin(), out.failures.end(), [](auto& a, auto& b) { return a.path < b.path; });
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MOH_CHECK(!o.require_readable || n == 0 || out.images > 0, "none of the ", n, " images of '", ds.root,
            "' could be read (",
            g.is_main() && !out.failures.empty()
                ? "first error: " + out.failures.front().path + ": " + out.failures.front().error
                : std::string("see rank 0's list"),
            "); check the dataset folder and its format");
  return out;
}

}  // namespace moh::vit
