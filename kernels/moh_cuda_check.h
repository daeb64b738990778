// Error checking and runtime->template dispatch helpers for the torch-free MoH CUDA kernels.
// Launch functions return cudaError_t (never throw: this library links no torch and no moh_common);
// the torch glue (common/moh/attention_cuda.cpp) turns a non-success code into moh::Error.
#pragma once
#include <cuda_runtime_api.h>

// Returns the error from the enclosing launch function when a CUDA call fails.
#define MOH_CUDA_RETURN_IF_ERROR(expr)          \
  do {                                          \
    cudaError_t moh_err_ = (expr);              \
    if (moh_err_ != cudaSuccess) return moh_err_; \
  } while (0)

// After a <<<...>>> launch: configuration errors (bad grid, too much shared memory) show up here.
#define MOH_CUDA_RETURN_LAUNCH_ERROR() MOH_CUDA_RETURN_IF_ERROR(cudaGetLastError())

namespace moh::kernels {

// Element types the kernels take. Kept as a plain enum so callers need no CUDA half/bf16 headers.
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

}  // namespace moh::kernels

// Runtime dtype -> `scalar_t` inside the body (only usable in .cu files that include cuda_fp16/cuda_bf16).
#define MOH_DISPATCH_DTYPE(dtype, ...)                                        \
  [&]() -> cudaError_t {                                                      \
    switch (dtype) {                                                          \
      case ::moh::kernels::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::moh::kernels::DType::F16: { using scalar_t = __half; return __VA_ARGS__(); }         \
      case ::moh::kernels::DType::BF16: { using scalar_t = __nv_bfloat16; return __VA_ARGS__(); } \
    }                                                                         \
    return cudaErrorInvalidValue;                                             \
  }()
