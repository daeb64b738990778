// FID-scale sampling, the job of MoH-DiT/sample_ddp.py: --num-samples N images with labels drawn uniformly (from
// all classes, or a --class list), spread over the ranks of a torchrun / srun job, one PNG per image
// (NNNNNN.png, sample_ddp.py's naming) written atomically straight into the output folder, then, after a barrier,
// rank 0 packs them into the ADM-evaluation samples.npz (uint8 arr_0 [N, H, W, 3]) and writes generation.json.
// Unlike sample_ddp.py (one seed per rank), each image's label and noise depend only on (seed, global index), and
// images are computed in fixed chunks of global indices (chunk c = [c*chunk_size, (c+1)*chunk_size), one model
// batch each; chunk_size = the first run's --batch-size, recorded in generation.json). Ranks take whole chunks, so
// every image goes through the same GEMM shapes for any world size and on resume: the same bytes (same build,
// machine and threads per process). An interrupted run resumes: chunks with a missing image are computed again
// whole and their missing PNGs written; a resume re-uses the recorded chunk size whatever --batch-size says.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/dist/distributed.h"
#include "dit/generate.h"

namespace moh::dit {

struct FidOptions {
  std::string out_dir;
  int64_t num_samples = 0;
  std::vector<int64_t> classes;  // labels are drawn uniformly from these (all of the model's classes normally)
  nlohmann::json run;            // every setting that decides the pixels: a resume must match it exactly
  nlohmann::json sidecar;        // more facts for generation.json (model, weights, device, ...)
  bool progress = true;
};

struct FidResult {
  int64_t total = 0;      // num_samples
  int64_t on_disk = 0;    // complete before this run (resumed)
  int64_t generated = 0;  // by all ranks in this run
  double seconds = 0;     // this rank's wall time
  int64_t chunk_size = 0; // images per chunk (= per model batch) of this folder
};

// Label of every global index: classes[h(seed, i) % classes.size()] (h: splitmix64), independent of the noise.
std::vector<int64_t> fid_labels(uint64_t seed, int64_t num_samples, const std::vector<int64_t>& classes);
// "000042.png" (at least 6 digits).
std::string fid_png_name(int64_t index);
// The chunks [first, end) of size chunk_size (the last one shorter) that hold an index of `missing` (sorted
// ascending), in ascending order.
std::vector<std::pair<int64_t, int64_t>> fid_chunks_to_generate(const std::vector<int64_t>& missing, int64_t n,
                                                                int64_t chunk_size);
// The indices in [0, n) whose PNG is not in `dir` (a canonical name, a non-empty regular file).
std::vector<int64_t> missing_fid_samples(const std::string& dir, int64_t n);

// The whole FID run on this rank (see the file comment). p: sampler settings (labels / rng / indices are set
// here). Throws moh::Error when out_dir holds another run or other files.
FidResult generate_fid_samples(DiT& model, Vae* vae, GenerateParams p, const torch::Device& device, const FidOptions& o,
                               dist::Group& group);

}  // namespace moh::dit
