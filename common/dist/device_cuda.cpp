// The CUDA half of dist::rank_device (common/dist/distributed.cpp): makes the rank's GPU the current CUDA device, so that
// kernels and streams that follow the current device (our kernel glue, cuBLAS handles, NCCL) use it. Built only
// when Torch has CUDA (the *_cuda.cpp rule of common/CMakeLists.txt).
#include <c10/cuda/CUDAFunctions.h>

namespace moh::dist {

void set_current_cuda_device(int index) { c10::cuda::set_device(static_cast<c10::DeviceIndex>(index)); }

}  // namespace moh::dist
