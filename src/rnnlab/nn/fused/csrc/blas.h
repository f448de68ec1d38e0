// Matrix products: BLAS called directly, and the recurrent weight packed once for every step's product.
// Part of rnnlab's fused kernels (fused_rnn.cpp includes it; one translation unit).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <type_traits>

// BLAS: torch's CPU builds link MKL (or OpenBLAS) into libtorch_cpu and export the Fortran symbols.
// Calling them directly skips the dispatcher (~1-2 us a call, which matters at batch 1). They are
// declared weak so that a torch without them still loads this library; we then use at::addmm_.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*) __attribute__((weak));
// MKL's packed GEMM: a matrix reused by many products is reordered once into MKL's internal layout.
size_t sgemm_pack_get_size_(const char*, const int*, const int*, const int*) __attribute__((weak));
void sgemm_pack_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
                 float*) __attribute__((weak));
void sgemm_compute_(const char*, const char*, const int*, const int*, const int*, const float*, const int*,
                    const float*, const int*, const float*, float*, const int*) __attribute__((weak));
}


namespace rnnlab {
namespace {

using at::Tensor;

// ---------------------------------------------------------------------------------------------------
// Row-major GEMM: C (M, N) = alpha * op(A) @ op(B) + beta * C, with op(X) = X or X^T.
// ---------------------------------------------------------------------------------------------------

bool have_blas(float*) { return sgemm_ != nullptr; }
bool have_blas(double*) { return dgemm_ != nullptr; }

void blas_call(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
               const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
               const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blas_call(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
               const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
               const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // an empty product: C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  const bool blas_ok = have_blas(static_cast<T*>(nullptr)) && M < INT32_MAX && N < INT32_MAX && K < INT32_MAX &&
                       lda < INT32_MAX && ldb < INT32_MAX && ldc < INT32_MAX;
  if (blas_ok) {
    // A row-major (r, c) matrix is a column-major (c, r) one, so C^T = op(B)^T op(A)^T in BLAS terms.
    const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    blas_call(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = at::from_blob(const_cast<T*>(A), {trans_a ? K : M, trans_a ? M : K}, {lda, 1}, opts);
  Tensor b = at::from_blob(const_cast<T*>(B), {trans_b ? N : K, trans_b ? K : N}, {ldb, 1}, opts);
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  c.addmm_(trans_a ? a.t() : a, trans_b ? b.t() : b, beta, alpha);
}

// The recurrent weight of every step's product, C (rows, M) = beta * C + X (rows, K) @ op(W), with
// op(W) = W^T for W (M, K) (trans) or W for W (K, M). The same W is used T times per call, so with MKL
// (float) it is packed once: MKL then skips re-packing it at every step, which is most of the cost of a
// product with few rows (1.5x on (256, 512) @ (512, 2048) on one AVX2 core, measured).
template <typename T>
struct StepWeight {
  const T* w;
  int64_t ldw, M, K;
  bool trans;
  Tensor packed;  // MKL's layout, or undefined (then plain GEMMs)

  StepWeight(const T* w_, int64_t ldw_, bool trans_, int64_t M_, int64_t K_, int64_t max_rows,
             const at::TensorOptions& opts)
      : w(w_), ldw(ldw_), M(M_), K(K_), trans(trans_) {
    if constexpr (std::is_same_v<T, float>) {
      const bool mkl = sgemm_pack_get_size_ && sgemm_pack_ && sgemm_compute_;
      if (mkl && M < INT32_MAX && K < INT32_MAX && max_rows < INT32_MAX && ldw < INT32_MAX && max_rows > 0) {
        // In BLAS's column-major terms W is the A operand: C^T (M, rows) = op(W) X^T.
        const int m = static_cast<int>(M), n = static_cast<int>(max_rows), k = static_cast<int>(K);
        const int ld = static_cast<int>(ldw);
        const float one = 1.0f;
        const size_t bytes = sgemm_pack_get_size_("A", &m, &n, &k);
        packed = at::empty({static_cast<int64_t>(bytes / sizeof(float)) + 16}, opts);  // 64-byte aligned
        sgemm_pack_("A", trans ? "T" : "N", &m, &n, &k, &one, w, &ld, packed.data_ptr<float>());
      }
    }
  }

  void apply(int64_t rows, const T* X, int64_t ldx, T beta, T* C, int64_t ldc) const {
    if (rows <= 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (packed.defined()) {
        const int m = static_cast<int>(M), n = static_cast<int>(rows), k = static_cast<int>(K);
        const int lda = static_cast<int>(ldw), ldb = static_cast<int>(ldx), lc = static_cast<int>(ldc);
        sgemm_compute_("P", "N", &m, &n, &k, packed.data_ptr<float>(), &lda, X, &ldb, &beta, C, &lc);
        return;
      }
    }
    gemm<T>(false, trans, rows, M, K, T(1), X, ldx, w, ldw, beta, C, ldc);
  }
};

// Column sums of a (rows, cols) row-major block with leading dimension ld, into out (cols).
template <typename T>
void column_sums(const T* A, int64_t rows, int64_t cols, int64_t ld, T* out, bool accumulate) {
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = at::from_blob(const_cast<T*>(A), {rows, cols}, {ld, 1}, opts);
  Tensor o = at::from_blob(out, {cols}, opts);
  if (accumulate) {
    o.add_(a.sum(0));
  } else {
    at::sum_out(o, a, {0});
  }
}

// Rows [off[lo], off[hi]) of an (N, W) or padded (T, B, W) tensor as a contiguous (rows, W) matrix: a view

}  // namespace
}  // namespace rnnlab
