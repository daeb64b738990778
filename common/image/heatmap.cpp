// Heat-map pictures (see heatmap.h). No official counterpart; uses LibTorch tensor ops, and OpenCV's
// applyColorMap / addWeighted for the "opencv" backend when the build has OpenCV.
#include "common/image/heatmap.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

#ifdef MOH_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace moh {

namespace {

void check_backend(const std::string& backend) {
  const auto all = heatmap_backends();
  if (std::find(all.begin(), all.end(), backend) != all.end()) return;
  if (backend == "opencv") throw Unsupported("heat-map backend 'opencv': this build has no OpenCV (use 'own')");
  throw Error("unknown heat-map backend '" + backend + "' (use 'own' or 'opencv')");
}

void check_rgb(const torch::Tensor& t, const char* what) {
  MOH_CHECK(t.dim() == 3 && t.size(2) == 3 && t.scalar_type() == torch::kUInt8, what,
            ": expected an RGB picture [H, W, 3] uint8, got ", t.sizes(), " ", t.scalar_type());
}

// values [H, W] -> levels [H, W] uint8 = round(clamp(v / vmax, 0, 1) * 255); vmax <= 0 maps everything to 0.
torch::Tensor levels(const torch::Tensor& values, double vmax) {
  MOH_CHECK(values.dim() == 2, "heat map: expected values [H, W], got ", values.sizes());
  auto v = values.detach().to(torch::kCPU, torch::kFloat64);
  if (!(vmax > 0)) return torch::zeros(v.sizes(), torch::kUInt8);
  return (v / vmax).clamp(0.0, 1.0).mul(255.0).round().to(torch::kUInt8);
}

// The jet table [256, 3] uint8: channel c rises and falls linearly, 1.5 - |4x - k| clamped to [0, 1] with
// k = 3 (red), 2 (green), 1 (blue).
const torch::Tensor& jet_table() {
  static const torch::Tensor table = [] {
    auto x = torch::arange(256, torch::kFloat64) / 255.0;  // [256]
    std::vector<torch::Tensor> ch;
    for (double k : {3.0, 2.0, 1.0}) ch.push_back((1.5 - (4.0 * x - k).abs()).clamp(0.0, 1.0));
    return torch::stack(ch, 1).mul(255.0).round().to(torch::kUInt8);  // [256, 3]
  }();
  return table;
}

#ifdef MOH_WITH_OPENCV
cv::Mat as_mat(const torch::Tensor& t) {  // contiguous CPU uint8 [H, W] or [H, W, 3] -> a view
  return cv::Mat((int)t.size(0), (int)t.size(1), t.dim() == 3 ? CV_8UC3 : CV_8UC1, t.data_ptr());
}
torch::Tensor from_mat(const cv::Mat& m) {
  return torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kUInt8).clone();
}
torch::Tensor jet_opencv(const torch::Tensor& lv) {
  auto in = lv.contiguous();
  cv::Mat bgr, rgb;
  cv::applyColorMap(as_mat(in), bgr, cv::COLORMAP_JET);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return from_mat(rgb);
}
#endif

}  // namespace

std::vector<std::string> heatmap_backends() {
#ifdef MOH_WITH_OPENCV
  return {"own", "opencv"};
#else
  return {"own"};
#endif
}

torch::Tensor colormap_jet(const torch::Tensor& values, double vmax, const std::string& backend) {
  check_backend(backend);
  const auto lv = levels(values, vmax);  // [H, W] uint8
#ifdef MOH_WITH_OPENCV
  if (backend == "opencv") return jet_opencv(lv);
#endif
  const auto H = lv.size(0), W = lv.size(1);
  const auto flat = lv.reshape({H * W}).to(torch::kInt64);  // [H, W] -> [H*W] table rows
  return jet_table().index_select(0, flat).view({H, W, 3});  // [H*W, 3] -> [H, W, 3]
}

torch::Tensor upsample_nearest(const torch::Tensor& grid, int64_t H, int64_t W) {
  MOH_CHECK(grid.dim() == 2 && grid.size(0) > 0 && grid.size(1) > 0 && H > 0 && W > 0,
            "upsample: expected a non-empty grid [h, w] and a positive size, got ", grid.sizes(), " -> ", H, "x", W);
  auto rows = (torch::arange(H, torch::kInt64) * grid.size(0)).div(H, "floor");  // [H] cell row of each pixel row
  auto cols = (torch::arange(W, torch::kInt64) * grid.size(1)).div(W, "floor");  // [W]
  return grid.index_select(0, rows.to(grid.device())).index_select(1, cols.to(grid.device()));  // [H, W]
}

torch::Tensor heatmap_overlay(const torch::Tensor& base, const torch::Tensor& values, double vmax, double alpha,
                              const std::string& backend) {
  check_rgb(base, "heat-map overlay base");
  MOH_CHECK(alpha >= 0 && alpha <= 1, "heat-map overlay: alpha must be in [0, 1], got ", alpha);
  const auto H = base.size(0), W = base.size(1);
  const auto color = colormap_jet(upsample_nearest(values.detach().cpu(), H, W), vmax, backend);  // [H, W, 3]
#ifdef MOH_WITH_OPENCV
  if (backend == "opencv") {
    auto b = base.cpu().contiguous();
    cv::Mat out;
    cv::addWeighted(as_mat(b), 1.0 - alpha, as_mat(color), alpha, 0.0, out);
    return from_mat(out);
  }
#endif
  auto mix = base.cpu().to(torch::kFloat64) * (1.0 - alpha) + color.to(torch::kFloat64) * alpha;
  return mix.round().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor display_image(const torch::Tensor& chw, int64_t scale) {
  MOH_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3), "display image: expected a model input "
            "[1 or 3, S, S], got ", chw.sizes());
  auto x = chw.detach().to(torch::kCPU, torch::kFloat64);
  const double lo = x.min().item<double>(), hi = x.max().item<double>();
  auto u8 = (hi > lo ? (x - lo) / (hi - lo) : torch::zeros_like(x)).mul(255.0).round().to(torch::kUInt8);
  auto hwc = u8.expand({3, x.size(1), x.size(2)}).permute({1, 2, 0}).contiguous();  // [C, S, S] -> [S, S, 3]
  return enlarge(hwc, scale);
}

torch::Tensor enlarge(const torch::Tensor& hwc, int64_t scale) {
  check_rgb(hwc, "enlarge");
  MOH_CHECK(scale >= 1, "enlarge: scale must be at least 1, got ", scale);
  if (scale == 1) return hwc.contiguous();
  const auto H = hwc.size(0), W = hwc.size(1);
  // [H, W, 3] -> [H*scale, W, 3] -> [H*scale, W*scale, 3]: each pixel repeated along rows, then columns.
  return hwc.repeat_interleave(scale, 0).repeat_interleave(scale, 1).contiguous().view({H * scale, W * scale, 3});
}

torch::Tensor contact_sheet(const std::vector<std::vector<torch::Tensor>>& rows, int64_t pad) {
  MOH_CHECK(!rows.empty() && !rows.front().empty(), "contact sheet: no tiles");
  MOH_CHECK(pad >= 0, "contact sheet: padding must be >= 0, got ", pad);
  const auto& first = rows.front().front();
  check_rgb(first, "contact sheet tile");
  const auto th = first.size(0), tw = first.size(1);
  size_t cols = 0;
  for (const auto& r : rows) cols = std::max(cols, r.size());
  auto sheet = torch::full({(int64_t)rows.size() * (th + pad) + pad, (int64_t)cols * (tw + pad) + pad, 3}, 255,
                           torch::kUInt8);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) {
      const auto& t = rows[i][j];
      check_rgb(t, "contact sheet tile");
      MOH_CHECK(t.size(0) == th && t.size(1) == tw, "contact sheet: tile ", i, ",", j, " is ", t.size(0), "x",
                t.size(1), ", expected ", th, "x", tw);
      sheet.narrow(0, pad + (int64_t)i * (th + pad), th).narrow(1, pad + (int64_t)j * (tw + pad), tw).copy_(t);
    }
  return sheet;
}

}  // namespace moh
