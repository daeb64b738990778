// moh-routes' pictures and staged output folder (see report.h). No official counterpart.
#include "common/routes/report.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/io/atomic_file.h"
#include "common/error.h"
#include "common/image/heatmap.h"
#include "common/image/image_io.h"

namespace moh {
namespace fs = std::filesystem;

std::vector<RouteMapImage> render_route_maps(const std::vector<RouteLayerStats>& layers, const torch::Tensor& base,
                                             const RouteMapOptions& o) {
  std::vector<RouteMapImage> out;
  for (const auto& st : layers) {
    const auto& l = st.layer();
    if (!l.routed() || st.images() == 0) continue;
    std::vector<torch::Tensor> maps;  // [grid_h, grid_w] per routed head
    double scale = 0;
    for (int64_t head = l.gates.shared_head; head < l.gates.num_heads; ++head) {
      maps.push_back(st.mean_map(head));
      scale = std::max(scale, maps.back().max().item<double>());
    }
    for (size_t k = 0; k < maps.size(); ++k) {
      RouteMapImage m;
      m.layer = l.name;
      m.row = o.prefix + l.name;
      m.head = l.gates.shared_head + (int64_t)k;
      m.file = o.prefix + l.name + "_head" + std::to_string(m.head) + ".png";
      m.scale = scale;
      m.image = heatmap_overlay(base, maps[k], scale, o.alpha, o.backend);
      out.push_back(std::move(m));
    }
  }
  return out;
}

namespace {
// Row keys in order of first appearance, each with the indices of its maps.
std::vector<std::pair<std::string, std::vector<size_t>>> rows_of(const std::vector<RouteMapImage>& maps) {
  std::vector<std::pair<std::string, std::vector<size_t>>> rows;
  for (size_t i = 0; i < maps.size(); ++i) {
    auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.first == maps[i].row; });
    if (it == rows.end()) {
      rows.push_back({maps[i].row, {}});
      it = rows.end() - 1;
    }
    it->second.push_back(i);
  }
  return rows;
}
}  // namespace

torch::Tensor route_contact_sheet(const torch::Tensor& base, const std::vector<RouteMapImage>& maps) {
  std::vector<std::vector<torch::Tensor>> tiles;
  for (const auto& [key, idx] : rows_of(maps)) {
    tiles.push_back({base});
    for (auto i : idx) tiles.back().push_back(maps[i].image);
  }
  if (tiles.empty()) tiles.push_back({base});  // no routed layer: the sheet is just the picture
  return contact_sheet(tiles);
}

nlohmann::json contact_sheet_layout(const std::vector<RouteMapImage>& maps) {
  auto rows = nlohmann::json::array();
  for (const auto& [key, idx] : rows_of(maps)) {
    auto t = nlohmann::json::array({"input"});
    for (auto i : idx) t.push_back(maps[i].file);
    rows.push_back({{"row", key}, {"tiles", t}});
  }
  return rows;
}

nlohmann::json route_layers_json(const std::vector<RouteLayerStats>& layers, const std::vector<RouteMapImage>& maps) {
  auto out = nlohmann::json::array();
  for (const auto& st : layers) {
    auto j = st.to_json();
    auto files = nlohmann::json::array();
    for (const auto& m : maps)
      if (m.layer == st.layer().name) {
        files.push_back({{"head", m.head}, {"file", m.file}});
        j["map_scale"] = m.scale;
      }
    if (!files.empty()) j["maps"] = files;
    out.push_back(j);
  }
  return out;
}

nlohmann::json route_definitions() {
  return {
      {"fractions", "every load, ratio and entropy is a fraction in [0, 1]"},
      {"heads", "all heads h of the layer; shared: always-on heads 0..shared-1; routed: candidate heads "
                "shared..h-1; top_k: routed heads each token activates"},
      {"load", "fraction of the tokens whose top-k selected this routed head (the loads of a layer sum to top_k)"},
      {"mean_gate", "mean gate value of the head over the tokens (unselected tokens count as 0)"},
      {"skipping_ratio", "(token, head) pairs with a non-zero gate, i.e. computed by the sparse kernels, divided by "
                         "tokens x heads (dense); skipping_ratio_expected = (shared + top_k) / heads, 1 for layers "
                         "without routed heads; skipping_ratio_matches: the counts agree exactly"},
      {"load_entropy", "Shannon entropy of the loads normalised to sum 1, divided by ln(routed): 1 = all routed "
                       "heads equally used, 0 = one head takes every token; 1 when there is one routed head"},
      {"maps", "PNG per routed head: its gate per token (mean over the images or sampler steps), upsampled "
               "nearest-neighbour to the picture, jet colours from 0 (dark blue) to map_scale (dark red), the layer's "
               "largest mean routed gate, blended over the picture"}};
}

// ------------------------------------------------------------------------------------------------ StagedDir
StagedDir::StagedDir(const std::string& out_dir, bool overwrite) : given_(out_dir) {
  MOH_CHECK(!out_dir.empty(), "no output folder given (the folder to write the pictures and routes.json into)");
  std::error_code ec;
  fs::path out = fs::absolute(out_dir, ec).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  out_ = out.string();
  if (fs::exists(out, ec)) {
    MOH_CHECK(fs::is_directory(out, ec), "output folder '", out_dir, "' exists and is not a folder; choose a folder path");
    MOH_CHECK(overwrite || fs::is_empty(out, ec), "output folder '", out_dir, "' already holds files; choose a new folder ",
              "or allow overwriting to replace same-named files in it");
  }
  fs::create_directories(out.parent_path(), ec);
  const auto staging = out.parent_path() / ("." + out.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  MOH_CHECK(fs::create_directory(staging, ec) && !ec, "cannot write into '", out.parent_path().string(),
            "' for output folder '", out_dir, "': ", ec ? ec.message() : "cannot create a folder", "; choose a writable folder");
  staging_ = staging.string();
}

StagedDir::~StagedDir() {
  if (committed_ || staging_.empty()) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagedDir::write_png(const std::string& file, const torch::Tensor& hwc_u8) {
  encode_png(staging_ + "/" + file, image_from_hwc_tensor(hwc_u8));
  files_.push_back(file);
}

void StagedDir::write_text(const std::string& file, const std::string& text) {
  write_file_atomic(staging_ + "/" + file, text);
  files_.push_back(file);
}

void StagedDir::commit() {
  MOH_CHECK(!committed_, "internal error: StagedDir::commit called twice");
  std::error_code ec;
  if (!fs::exists(out_, ec) || fs::is_empty(out_, ec)) {
    fs::remove(out_, ec);                // an empty folder is replaced by the finished one
    fs::rename(staging_, out_, ec);      // the whole folder appears at once
    MOH_CHECK(!ec, "cannot move the finished outputs into '", given_, "': ", ec.message());
  } else {
    for (const auto& f : files_) {
      fs::rename(fs::path(staging_) / f, fs::path(out_) / f, ec);
      MOH_CHECK(!ec, "cannot move '", f, "' into '", given_, "': ", ec.message());
    }
    fs::remove_all(staging_, ec);
  }
  fsync_parent_dir(out_ + "/x");
  committed_ = true;
}

}  // namespace moh
