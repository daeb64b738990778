// CPU fp32 inference kernel of the middle of TransNeXt's ConvolutionalGLU (SkyworkAI/MoH MoH-ViT/transnext.py
// `ConvolutionalGLU.forward` and `DWConv`): x, v = fc1(tokens).chunk(2); out = GELU(dwconv3x3(x)) * v. The official
// code transposes x to NCHW, runs a depthwise Conv2d (3x3, padding 1, bias), transposes back, then GELU and the
// product as separate ops; this kernel reads the token-major fc1 output once and writes the gated result once
// (channels innermost, so every tap is a vector multiply-add over the channels). Our own code.
#pragma once
#include <torch/torch.h>

namespace moh::vit {

// True when conv_glu_middle_cpu applies: CPU float32, h2 [B, H*W, 2*hid] contiguous, weight [hid, 1, 3, 3], bias
// [hid], and no tensor that needs a gradient while autograd is on (training keeps the LibTorch ops).
bool conv_glu_middle_supported(const torch::Tensor& h2, const torch::Tensor& weight, const torch::Tensor& bias);

// h2: fc1's output [B, H*W, 2*hid] (first half: the dwconv input, second half: the value v). Returns [B, H*W, hid].
torch::Tensor conv_glu_middle_cpu(const torch::Tensor& h2, const torch::Tensor& weight, const torch::Tensor& bias,
                                  int64_t H, int64_t W);

}  // namespace moh::vit
