// The parity contract between a model family and the reference files in shared/golden format: a family runner
// rebuilds what the file's metadata describes, runs it and returns (our tensor, reference tensor, tolerance)
// triples. apps/moh-parity and the tests both use these runners.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "parity/golden.h"

namespace moh {

struct ParityCheck {
  std::string name;  // e.g. "out.y" or "mid.gates"
  torch::Tensor ours;
  torch::Tensor ref;
  Tolerance tol;
};

using ParityRunner = std::function<std::vector<ParityCheck>(const GoldenFile&)>;

// Adds a check for every reference tensor `name` present in the file, with the file's recommended tolerance.
void add_check(std::vector<ParityCheck>& checks, const GoldenFile& g, const std::string& name,
               const torch::Tensor& ours);

// The runner for family "preproc" (MoH-ViT evaluation transform); lives in common because the transform does.
std::vector<ParityCheck> run_preproc_parity(const GoldenFile& g);

}  // namespace moh
