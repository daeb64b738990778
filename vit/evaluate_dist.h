// Multi-process evaluation: every rank evaluates a deterministic part of the dataset (every image exactly once:
// global index rank, rank + world, ...; WebDataset samples by shard, then by sample: rank_samples), then the counts, per-class tallies and predictions are
// summed over the ranks with c10d and the unreadable-file list is gathered on rank 0, so the result equals one
// process's evaluate() on the whole dataset. The distributed form of MoH-ViT/main.py --eval --dist-eval
// (DistributedSampler without padding, so no image counts twice).
#pragma once
#include "common/dist/distributed.h"
#include "vit/evaluator.h"

namespace moh::vit {

// One process: evaluate(). Several: this rank's shard, then the reduction (one aggregated progress bar on rank 0).
// Counts and predictions are complete on every rank; `failures` only on rank 0; `seconds` is this rank's wall
// time including the wait for the others; `model_seconds` is summed over the ranks. Throws moh::Error on every
// rank when no image at all could be read, as evaluate() does.
EvalResult evaluate_sharded(Classifier& clf, const EvalDataset& ds, const EvalOptions& o, dist::Group& group);

// The dataset indices rank `rank` of `world` evaluates, ascending. Plain datasets: every world-th index from rank.
// WebDataset (ds.num_shards > 0): with at least as many shards as ranks, shard s belongs to rank s % world (a rank
// reads only its own shards); with fewer, the ranks r with r % S == s share shard s, taking its samples in turn.
std::vector<int64_t> rank_samples(const EvalDataset& ds, int rank, int world);

// The samples with the given dataset indices (in that order), with their in-memory pictures for IDX datasets.
EvalDataset select_samples(const EvalDataset& ds, const std::vector<int64_t>& indices);

}  // namespace moh::vit
