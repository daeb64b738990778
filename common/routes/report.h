// moh-routes' pictures and output folder, shared by MoH-ViT and MoH-DiT: one heat-map overlay per routed head of
// every routed layer (the mean gate over the token grid on the input/generated picture), the contact sheet of them
// all, and a staged output folder that appears only when complete.
// No official counterpart; uses common/image/heatmap.h, common/routes/stats.h and the PNG writer of common/image/image_io.h.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/routes/stats.h"

namespace moh {

struct RouteMapImage {
  std::string file;   // "<prefix><layer>_head<k>.png"
  std::string row;    // contact-sheet row: prefix + layer name
  std::string layer;
  int64_t head = 0;   // head index within the layer (hs <= head < h)
  double scale = 0;   // the gate value painted dark red (the largest mean gate of the layer's routed heads)
  torch::Tensor image;  // [H, W, 3] uint8
};

struct RouteMapOptions {
  std::string prefix;          // file/row prefix, e.g. "early_" for a DiT timestep band
  double alpha = 0.55;         // weight of the colours over the picture
  std::string backend = "own"; // common/image/heatmap.h backend
};

// One overlay per routed head of every routed layer in `layers` (which must have kept their maps) on `base`
// [H, W, 3] uint8; colour scale per layer from 0 to its largest mean routed gate.
std::vector<RouteMapImage> render_route_maps(const std::vector<RouteLayerStats>& layers, const torch::Tensor& base,
                                             const RouteMapOptions& o);

// One row per distinct RouteMapImage::row (in order of appearance): `base` first, then that row's maps.
torch::Tensor route_contact_sheet(const torch::Tensor& base, const std::vector<RouteMapImage>& maps);

// The contact sheet's layout for routes.json: [{"row", "tiles": ["input", "<file>", ...]}].
nlohmann::json contact_sheet_layout(const std::vector<RouteMapImage>& maps);

// Each layer's to_json() plus "maps": [{"head", "file"}] and "map_scale" for the maps rendered from it.
nlohmann::json route_layers_json(const std::vector<RouteLayerStats>& layers, const std::vector<RouteMapImage>& maps);

// What the numbers of routes.json mean (written into it, so the file explains itself).
nlohmann::json route_definitions();

// An output folder written into a staging folder beside it and moved into place by commit(); destroyed without
// commit (an error, Ctrl-C) it removes the staging folder and leaves `out_dir` untouched. `out_dir` must be new or
// empty unless `overwrite` (then same-named files are replaced). Throws moh::Error naming the folder on failure.
class StagedDir {
 public:
  StagedDir(const std::string& out_dir, bool overwrite);
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;
  void write_png(const std::string& file, const torch::Tensor& hwc_u8);
  void write_text(const std::string& file, const std::string& text);
  void commit();
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::string out_, staging_, given_;
  std::vector<std::string> files_;
  bool committed_ = false;
};

}  // namespace moh
