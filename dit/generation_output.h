// The output side of generation: one PNG per image, a torchvision make_grid-style grid, the ADM-evaluation .npz
// (streamed, ZIP64 when large) and a JSON sidecar, collected in a staging folder and moved into place only when
// complete. Mirrors MoH-DiT/sample.py (save_image grid) and sample_ddp.py (create_npz_from_sample_folder).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dit/generate.h"

namespace moh::dit {

struct OutputOptions {
  std::string out_dir;
  bool pngs = true;
  bool grid = false;
  int64_t grid_nrow = 8;  // torchvision make_grid default; sample.py uses 4
  bool npz = false;       // samples.npz with uint8 arr_0 [N, H, W, 3] (ADM evaluation layout)
  bool overwrite = false; // allow replacing files of the same names in an existing, non-empty out_dir
};

struct NpzStream;  // streaming .npz writer (generate.cpp)

// Collects a run's outputs in a staging folder next to out_dir and moves them into place only in commit(): a
// failure or interruption leaves out_dir untouched (the staging folder is removed by the destructor).
// Created before sampling, so an unwritable --out fails in seconds, not after hours.
class GenerationWriter {
 public:
  GenerationWriter(OutputOptions options, int64_t total_images);
  ~GenerationWriter();
  GenerationWriter(const GenerationWriter&) = delete;
  GenerationWriter& operator=(const GenerationWriter&) = delete;

  // `name_of(label)` gives the class part of the file name ("207_golden_retriever").
  void add(const GeneratedBatch& batch, const std::function<std::string(int64_t)>& name_of);
  // Writes grid / npz trailer / sidecar (with "files" added) and moves everything into out_dir.
  void commit(nlohmann::json sidecar);
  const std::vector<std::string>& files() const { return files_; }  // names relative to out_dir

 private:
  OutputOptions o_;
  int64_t total_;
  std::string out_path_;  // absolute, normalised out_dir
  std::string staging_;
  std::vector<std::string> files_;
  std::vector<torch::Tensor> grid_images_;
  std::map<int64_t, int64_t> per_class_count_;
  std::unique_ptr<NpzStream> npz_;
  bool committed_ = false;
};

// torchvision.utils.make_grid layout on uint8 images [N, H, W, 3]: nrow images per row, 2-pixel padding of 0
// around and between tiles -> [rows*(H+2)+2, min(nrow,N)*(W+2)+2, 3].
torch::Tensor make_grid_u8(const torch::Tensor& images, int64_t nrow, int64_t padding = 2);

// Writes `array` (uint8, any shape, CPU) as `name`.npy inside an uncompressed .npz (zip, ZIP64 when large) in one
// pass; what numpy.load(path)[name] returns.
// force_zip64 writes the ZIP64 records even for small arrays (tests of the >4 GiB layout).
void write_npz_u8(const std::string& path, const std::string& name, const torch::Tensor& array,
                  bool force_zip64 = false);

// The same .npz built from `count` items [H, W, C] uint8 (item(i) called in order), for arrays too large for
// memory: shape = {count, H, W, C}. Written beside `path` and renamed into place when complete.
void write_npz_u8_streamed(const std::string& path, const std::string& name, const std::vector<int64_t>& shape,
                           const std::function<torch::Tensor(int64_t)>& item);

// "golden retriever" -> "golden_retriever": file-name-safe lowercase slug.
std::string slugify(const std::string& s);

}  // namespace moh::dit
