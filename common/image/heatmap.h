// Heat-map pictures of per-token values (moh-routes' gate maps): a jet colour map, nearest-neighbour upsampling of a
// token grid to an image, alpha overlay on a picture, a display picture of a model input, and a contact sheet.
// No official counterpart (the paper's routing figures are drawn in Python). Two backends paint the colours and the
// blend: our own tensor code ("own", always built) and OpenCV's applyColorMap(COLORMAP_JET) + addWeighted
// ("opencv", with MOH_WITH_OPENCV); they agree within a few levels of 255 (tested); moh-routes paints with OpenCV
// when the build has it. All images are [H, W, 3] uint8 RGB CPU tensors.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace moh {

// "own" and, when built with OpenCV, "opencv".
std::vector<std::string> heatmap_backends();

// values [H, W] float, mapped by v / vmax (clamped to [0, 1], quantised to 256 levels) through jet: dark blue (0) ->
// cyan -> yellow -> dark red (1). -> [H, W, 3] uint8. Throws moh::Unsupported for a backend this build lacks.
torch::Tensor colormap_jet(const torch::Tensor& values, double vmax, const std::string& backend = "own");

// [h, w] -> [H, W]: pixel (y, x) takes cell (y * h / H, x * w / W) (integer division), so each token becomes a block.
torch::Tensor upsample_nearest(const torch::Tensor& grid, int64_t H, int64_t W);

// round((1 - alpha) * base + alpha * jet(values / vmax)) with `values` [h, w] upsampled to base's [H, W].
torch::Tensor heatmap_overlay(const torch::Tensor& base, const torch::Tensor& values, double vmax, double alpha,
                              const std::string& backend = "own");

// A model input [C, S, S] (any normalisation; C = 1 or 3) as a picture: min-max scaled to [0, 255] over the whole
// tensor, gray replicated to RGB, each pixel enlarged to scale x scale -> [S*scale, S*scale, 3] uint8.
torch::Tensor display_image(const torch::Tensor& chw, int64_t scale);

// An RGB picture [H, W, 3] uint8 enlarged to [H*scale, W*scale, 3] by pixel repetition.
torch::Tensor enlarge(const torch::Tensor& hwc, int64_t scale);

// Tiles laid out row by row (rows may have different lengths; every tile the same size), `pad` pixels of white
// around and between them -> [rows*(H+pad)+pad, max_cols*(W+pad)+pad, 3].
torch::Tensor contact_sheet(const std::vector<std::vector<torch::Tensor>>& rows, int64_t pad = 4);

}  // namespace moh
