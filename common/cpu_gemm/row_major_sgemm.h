// Single-threaded fp32 GEMM on raw row-major buffers, for the hand-written CPU kernels that multiply small blocks
// (common/moh/attention_cpu.cpp: the per-(image, head) q k^T and P v of the head-skipping attention). Our own code,
// no official counterpart: the official code calls torch.matmul.
//
// oneDNN's dnnl_sgemm (code generated for the CPU at hand, so its speed does not depend on which OpenBLAS kernel an
// environment picks) when the build has oneDNN and MOH_CPU_GEMM is not "torch"; LibTorch's mm otherwise or when
// oneDNN refuses the call. It runs on the calling thread: callers parallelise over blocks themselves.
#pragma once
#include <cstdint>

namespace moh::cpu_gemm {

// C[M, N] = A[M, K] op(B). op(B) is B [K, N] or, with trans_b, the transpose of B [N, K]. lda, ldb, ldc are
// the row strides (in floats) of A, B and C as stored; the last dimension of each is contiguous.
void sgemm_row_major(bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, float* C, int64_t ldc);

}  // namespace moh::cpu_gemm
