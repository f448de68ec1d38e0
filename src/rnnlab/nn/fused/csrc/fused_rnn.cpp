// rnnlab's fast path: one recurrent direction (RNN tanh/ReLU, LSTM with optional projection, GRU),
// forward and a hand-written backward through time, with the time loop in C++.
//
// The math is the readable path's (src/rnnlab/nn/functional.py), reorganised for speed:
//   * the input projection x W_ih^T is done for many steps at once (a chunk of ~1024 rows), right
//     before those steps;
//   * each step is one BLAS call for the recurrent product h_prev W_hh^T, with W_hh packed once into
//     MKL's internal layout, then one fused, vectorised pass over the gates (the activations are written
//     back in place: they are what the backward needs);
//   * the backward walks time once, computing each step's gate gradients, and after each chunk of steps
//     adds that chunk's share of dx, dW_ih, dW_hh and the biases with a few large products;
//   * threads split the batch: each walks time on its own sequences (see row_split), so they meet once
//     per chunk rather than at every step.
//
// Layout (cuDNN's packed layout, which also covers the padded case): the sequence data is
// (N, H_in) with N = sum(batch_sizes); the rows of step t are [off[t], off[t] + bs[t]) and hold the
// first bs[t] sequences (longest first). A time-major (T, B, H_in) input is the case bs[t] = B for all t.
// Because the batch only shrinks with time, the previous hidden state of step t is, for the forward
// direction, the first bs[t] rows of step t-1's output: contiguous, no copy. The reverse direction
// reads step t+1's output for its first bs[t+1] rows and h0 for the sequences that join at step t.
//
// A padded input may come as (T, B, H_in) with any strides (a batch-first view, say) and the output's
// gradient likewise (expanded from out.sum(), say): both are read a chunk at a time (chunk_rows).
//
// Dimension legend: N packed rows, T steps, B batch, I input size, H hidden size, P = proj_size or H,
// G = gates * H (4H LSTM, 3H GRU, H RNN).
//
// The ops are registered with the dispatcher (TORCH_LIBRARY), so no pybind11 is needed and the build
// stays short. Gradients are wired up in Python (rnnlab/nn/fused.py, a torch.autograd.Function).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <exception>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

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

enum Mode : int64_t { RNN_TANH = 0, RNN_RELU = 1, LSTM = 2, GRU = 3 };

int64_t num_gates(int64_t mode) { return mode == LSTM ? 4 : (mode == GRU ? 3 : 1); }

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

// ---------------------------------------------------------------------------------------------------
// Activations. float: branch-free polynomial versions that GCC vectorises (8 lanes with AVX2), accurate
// to ~3 ulp (std::exp / std::tanh do not vectorise and cost ~10x more). double: the C library's, since
// float64 is what gradcheck and the reference tests run in.
// ---------------------------------------------------------------------------------------------------

// Forced: with several instantiations of the kernels that call them GCC stops inlining these on its
// own, and a call per element keeps the loops from being vectorised (1.8x slower LSTM forward, measured).
#if defined(__GNUC__)
#define RNNLAB_INLINE inline __attribute__((always_inline))
#else
#define RNNLAB_INLINE inline
#endif

RNNLAB_INLINE float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// e^y - 1 = 2^n (e^r - 1) + (2^n - 1), with y = n ln2 + r, |r| <= ln2 / 2. Returns e^r - 1 (Taylor to
// degree 8: the remainder r^9 / 9! < 4e-11 is far below float's epsilon) and sets scale = 2^n.
RNNLAB_INLINE float expm1_reduced(float y, float& scale) {
  y = y < -87.0f ? -87.0f : y;  // keeps 2^n a normal float; NaN passes through both clamps
  y = y > 88.0f ? 88.0f : y;
  const float n = std::floor(y * 1.44269504088896341f + 0.5f);  // round(y / ln2)
  // ln2 split in two (hi has few mantissa bits, so n * hi is exact): r = y - n ln2 without cancellation
  float r = y - n * 0.693359375f;
  r = r + n * 2.12194440054690583e-4f;
  scale = bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  float p = 1.0f / 40320.0f;
  p = p * r + 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r;
}

RNNLAB_INLINE float act_sigmoid(float x) {
  float s;
  const float p = expm1_reduced(-x, s);
  return 1.0f / (1.0f + (s * p + s));  // 1 / (1 + e^-x)
}

// tanh(|x|) = -u / (u + 2) with u = e^{-2|x|} - 1: no cancellation near 0, where tanh(x) ~ x.
RNNLAB_INLINE float act_tanh(float x) {
  float s;
  const float p = expm1_reduced(-2.0f * std::fabs(x), s);
  const float u = s * p + (s - 1.0f);
  return std::copysign(-u / (u + 2.0f), x);
}

inline double act_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double act_tanh(double x) { return std::tanh(x); }

template <typename T>
inline T act_relu(T x) {
  return x > T(0) ? x : (x == x ? T(0) : x);  // keeps NaN, as torch.relu does
}

// ---------------------------------------------------------------------------------------------------
// The packed layout: offsets of each step's rows.
// ---------------------------------------------------------------------------------------------------

// Steps are grouped into chunks of about this many rows: the forward computes the input projection of
// one chunk just before its steps (in cache, and without an (N, G) buffer when no gradient is needed);
// the backward does the weight-gradient products of one chunk right after its steps, from a chunk-sized
// gradient buffer. Products of 256 to 2048 rows run as fast as one of all N rows (measured).
constexpr int64_t kChunkRows = 1024;

struct Steps {
  std::vector<int64_t> bs, off;
  std::vector<std::pair<int64_t, int64_t>> chunks;  // [lo, hi) ranges of steps, in time order
  int64_t T = 0, B = 0, N = 0, max_chunk_rows = 0;
  bool uniform = true;  // every step has all B rows (a padded, time-major batch)
  bool reverse = false;

  Steps(c10::IntArrayRef batch_sizes, bool reverse_) : reverse(reverse_) {
    T = static_cast<int64_t>(batch_sizes.size());
    bs.assign(batch_sizes.begin(), batch_sizes.end());
    off.resize(T + 1);
    off[0] = 0;
    for (int64_t t = 0; t < T; ++t) off[t + 1] = off[t] + bs[t];
    N = off[T];
    B = T > 0 ? bs[0] : 0;
    for (int64_t t = 0; t < T; ++t) uniform = uniform && bs[t] == B;
    for (int64_t lo = 0, hi = 0; lo < T; lo = hi) {  // whole steps, about kChunkRows rows each
      for (hi = lo + 1; hi < T && off[hi + 1] - off[lo] <= kChunkRows; ++hi) {
      }
      chunks.emplace_back(lo, hi);
      max_chunk_rows = std::max(max_chunk_rows, off[hi] - off[lo]);
    }
  }
  // Chunk c in the order a pass visits them (the forward pass, or the backward one), as [lo, hi).
  std::pair<int64_t, int64_t> chunk(int64_t c, bool backward) const {
    const int64_t n = static_cast<int64_t>(chunks.size());
    return (reverse != backward) ? chunks[n - 1 - c] : chunks[c];
  }
  // Step k of chunk [lo, hi) in a pass's order.
  int64_t step_in(int64_t lo, int64_t hi, int64_t k, bool backward) const {
    return (reverse != backward) ? hi - 1 - k : lo + k;
  }
  // The step processed before step t (its state is t's previous state), or -1 at the start.
  int64_t prev(int64_t t) const {
    const int64_t p = reverse ? t + 1 : t - 1;
    return (p >= 0 && p < T) ? p : -1;
  }
  // How many of step t's rows have their previous state in step prev(t) (the rest start from h0/c0).
  int64_t carried(int64_t t) const {
    const int64_t p = prev(t);
    return p < 0 ? 0 : std::min(bs[t], bs[p]);
  }
  // How many of step t's rows go on to the next processed step (the rest end at step t).
  int64_t continuing(int64_t t) const {
    const int64_t n = reverse ? t - 1 : t + 1;
    return (n >= 0 && n < T) ? std::min(bs[t], bs[n]) : 0;
  }
};

// Rows of step t split into [0, carried) from the previous step and [carried, bs[t]) from the initial state.
template <typename T>
inline const T* prev_row(const Steps& st, int64_t t, int64_t b, const T* seq, const T* init, int64_t width) {
  return b < st.carried(t) ? seq + (st.off[st.prev(t)] + b) * width : init + b * width;
}

// C[b0:b1] = beta * C + H_prev(t)[b0:b1] @ W_hh^T for rows [b0, b1) of step t (b1 <= bs[t]); C points at
// the step's row 0. H_prev's rows come from seq (the previous step's rows) and init (h0) as prev_row says.
template <typename T>
void recurrent_gemm(const Steps& st, int64_t t, int64_t b0, int64_t b1, const T* seq, const T* init,
                    const StepWeight<T>& W, int64_t P, T beta, T* C, int64_t ldc) {
  const int64_t np = std::clamp(st.carried(t), b0, b1);
  if (np > b0) W.apply(np - b0, seq + (st.off[st.prev(t)] + b0) * P, P, beta, C + b0 * ldc, ldc);
  if (b1 > np) W.apply(b1 - np, init + np * P, P, beta, C + np * ldc, ldc);
}

// Runs fn(b) for b in [b0, b1), split across threads when the rows are wide enough to pay for them (and
// serially inside a thread that already owns these rows: at::parallel_for does not nest).
template <typename F>
void for_rows(int64_t b0, int64_t b1, int64_t width, const F& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(width, 1));
  const auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t b = r0; b < r1; ++b) fn(b);
  };
  if (b1 - b0 <= grain) {
    run(b0, b1);
  } else {
    at::parallel_for(b0, b1, grain, run);
  }
}

// Threads split the batch, not the product: sequence b's recurrence only ever reads sequence b's state, so
// each thread walks a whole chunk of steps on its own rows, with single-threaded products against the
// shared (packed) W_hh, and the threads meet once per chunk instead of at every step's product and gate
// pass. A packed batch is split so that each thread gets about as many tokens. With fewer than
// kMinRowsPerThread rows each, a thread's product is too thin to pay for reading all of W_hh: then one
// walk covers every row and BLAS and the gate loops share out the work within each step.
constexpr int64_t kMinRowsPerThread = 16;

std::vector<int64_t> row_split(const Steps& st) {
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t parts = std::min<int64_t>(threads, st.B / kMinRowsPerThread);
  std::vector<int64_t> bounds{0};
  if (parts > 1) {
    std::vector<int64_t> len(st.B);  // tokens of sequence b = the steps it takes part in
    for (int64_t b = 0, t = st.T; b < st.B; ++b) {
      while (t > 0 && st.bs[t - 1] <= b) --t;
      len[b] = t;
    }
    int64_t b = 0, tokens = 0;
    for (int64_t p = 1; p < parts; ++p) {
      while (b < st.B - 1 && tokens + len[b] <= st.N * p / parts) tokens += len[b++];
      if (b > bounds.back()) bounds.push_back(b);
    }
  }
  bounds.push_back(st.B);
  return bounds;
}

// Hidden-unit bounds [0, j1, ..., H) when threads share out each step by hidden units instead, else {0, H}.
// Each thread then multiplies every row by its own slice of W_hh (its units' rows of every gate): a
// product with all the rows and a part of the columns, which MKL runs faster than all the columns and a
// part of the rows (one AVX2 core: (256 x 512) @ (512 x 1024) at 70 GFLOP/s against 50 for
// (128 x 512) @ (512 x 2048)); the price is a meeting of the threads after every step. Measured at 2
// threads (interleaved A/B runs on a shared 2-core VM, whose run-to-run noise is ~10 %), it pays from
// 512 gate columns a thread (LSTM B256 H512 fwd+bwd 1.09x -> 0.94x of torch.nn; the forward at B32 H256
// and B256 H512 level to 7 % faster) and loses below (LSTM H128, RNN H512: 5-10 % slower). Bounds are
// multiples of 16 so that no two threads write the same cache line of a row.
// RNNLAB_FUSED_SPLIT=rows|cols overrides the choice (tests and benchmarks; cols needs >= 2 threads).
std::vector<int64_t> col_split(const Steps& st, int64_t H, int64_t G) {
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  bool use = threads > 1 && G >= 512 * threads && st.B >= 8;
  if (const char* env = std::getenv("RNNLAB_FUSED_SPLIT")) {
    if (std::strcmp(env, "rows") == 0) use = false;
    if (std::strcmp(env, "cols") == 0) use = threads > 1 && H >= 16 * threads;
  }
  std::vector<int64_t> bounds{0};
  for (int64_t p = 1; use && p < threads; ++p) {
    const int64_t j = (H * p / threads + 8) / 16 * 16;
    if (j > bounds.back() && j < H) bounds.push_back(j);
  }
  bounds.push_back(H);
  return bounds;
}

// fn(k, p) for steps k = 0 .. steps - 1 in order and parts p = 0 .. parts - 1 of each, the parts of a step
// on different threads, all of step k done before any of step k + 1 starts. With OpenMP, one parallel
// region for all the steps and a barrier between them (a region per step costs a wake-up of the
// threads every step); without it, one at::parallel_for per step.
template <typename F>
void steps_by_cols(int64_t parts, int64_t steps, const F& fn) {
#ifdef _OPENMP
  std::atomic<bool> failed{false};
  std::exception_ptr error;
#pragma omp parallel  // no num_threads clause: torch avoids it too (GOMP thread-pool bugs, pytorch#32008)
  {
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    for (int64_t k = 0; k < steps; ++k) {
      for (int64_t p = me; p < parts && !failed.load(std::memory_order_relaxed); p += team) {
        try {
          fn(k, p);
        } catch (...) {  // every thread must still reach every barrier, so record it and go on idle
          if (!failed.exchange(true)) error = std::current_exception();
        }
      }
#pragma omp barrier
    }
  }
  if (error) std::rethrow_exception(error);
#else
  for (int64_t k = 0; k < steps; ++k)
    at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) fn(k, p);
    });
#endif
}

// fn(b_lo, b_hi) for each row range of a split, one range per thread.
template <typename F>
void over_rows(const std::vector<int64_t>& bounds, const F& fn) {
  const int64_t parts = static_cast<int64_t>(bounds.size()) - 1;
  if (parts == 1) {
    fn(bounds[0], bounds[1]);
    return;
  }
  at::parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) fn(bounds[p], bounds[p + 1]);
  });
}

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
// when the rows are contiguous already, else a copy of just these rows. So a batch-first input (a strided
// view) or a gradient expanded from a scalar (out.sum()) is never copied whole, and the input the
// backward keeps is the caller's own tensor.
Tensor chunk_rows(const Tensor& t, const Steps& st, int64_t lo, int64_t hi) {
  if (t.dim() == 3) return t.narrow(0, lo, hi - lo).reshape({-1, t.size(2)}).contiguous();  // (rows, W)
  return t.narrow(0, st.off[lo], st.off[hi] - st.off[lo]).contiguous();
}

// ---------------------------------------------------------------------------------------------------
// Per-row step kernels (one row = one sequence at one step). `restrict`: the buffers never overlap,
// except where noted.
// ---------------------------------------------------------------------------------------------------

// The forward kernels work on n consecutive hidden units of one row: every pointer points at the first
// of them, and a gate's block is H (the stride) after the previous gate's in g and bias. A thread that
// owns hidden units [j0, j1) of every row (see col_split) passes n = j1 - j0, else n = H. With ADD, the
// recurrent product h_prev W_hh^T is not in g yet but in gh, whose gate blocks are gs apart.

// LSTM: g holds x W_ih^T (+ h W_hh^T unless ADD) for the row (gates i, f, g, o); bias = b_ih + b_hh.
// Writes c (may alias c_prev: read before written, element by element) and h_out; in training
// also the activations back into g.
template <typename T, bool TRAIN, bool ADD>
inline void lstm_forward_row(T* __restrict__ g, const T* __restrict__ gh, int64_t gs, const T* __restrict__ bias,
                             const T* c_prev, T* c, T* __restrict__ h_out, int64_t n, int64_t H) {
  T* __restrict__ gi = g;
  T* __restrict__ gf = g + H;
  T* __restrict__ gg = g + 2 * H;
  T* __restrict__ go = g + 3 * H;
  for (int64_t j = 0; j < n; ++j) {
    T ai = gi[j] + bias[j], af = gf[j] + bias[H + j], ag = gg[j] + bias[2 * H + j], ao = go[j] + bias[3 * H + j];
    if constexpr (ADD) {
      ai += gh[j];
      af += gh[gs + j];
      ag += gh[2 * gs + j];
      ao += gh[3 * gs + j];
    }
    const T i = act_sigmoid(ai);
    const T f = act_sigmoid(af);
    const T cand = act_tanh(ag);
    const T o = act_sigmoid(ao);
    const T cj = f * c_prev[j] + i * cand;
    c[j] = cj;
    h_out[j] = o * act_tanh(cj);
    if (TRAIN) {
      gi[j] = i;
      gf[j] = f;
      gg[j] = cand;
      go[j] = o;
    }
  }
}

// GRU: gx = x W_ih^T (3H: r, z, n), gh = h_prev W_hh^T (gate blocks gs apart). torch's GRU: the reset
// gate multiplies (W_hn h + b_hn), after the product. In training, r, z, n go back into gx and
// W_hn h + b_hn into hn_out.
template <typename T, bool TRAIN>
inline void gru_forward_row(T* __restrict__ gx, const T* __restrict__ gh, int64_t gs, const T* __restrict__ bx,
                            const T* __restrict__ bh, const T* __restrict__ h_prev, T* __restrict__ h_out,
                            T* __restrict__ hn_out, int64_t n, int64_t H) {
  for (int64_t j = 0; j < n; ++j) {
    const T r = act_sigmoid(gx[j] + bx[j] + gh[j] + bh[j]);
    const T z = act_sigmoid(gx[H + j] + bx[H + j] + gh[gs + j] + bh[H + j]);
    const T hn = gh[2 * gs + j] + bh[2 * H + j];
    const T nj = act_tanh(gx[2 * H + j] + bx[2 * H + j] + r * hn);
    h_out[j] = (T(1) - z) * nj + z * h_prev[j];
    if (TRAIN) {
      gx[j] = r;
      gx[H + j] = z;
      gx[2 * H + j] = nj;
      hn_out[j] = hn;
    }
  }
}

// RNN: h holds x W_ih^T (+ h_prev W_hh^T unless ADD, else that is in gh) and becomes the new h.
template <typename T, bool RELU, bool ADD>
inline void rnn_forward_row(T* __restrict__ h, const T* __restrict__ gh, const T* __restrict__ bias, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    T pre = h[j] + bias[j];
    if constexpr (ADD) pre += gh[j];
    h[j] = RELU ? act_relu(pre) : act_tanh(pre);
  }
}

// LSTM backward for one row. dh = gradient reaching h_t (before the projection's product: dm, when
// there is one): dh1 + dh2 (dh2 may be null). dc: in, the gradient reaching c_t from step t+1;
// out, the gradient for c_{t-1}. Writes the pre-activation gradients into dg (4H).
template <typename T, bool SUM>
inline void lstm_backward_row(const T* __restrict__ acts, const T* __restrict__ c, const T* __restrict__ c_prev,
                              const T* __restrict__ dh1, const T* __restrict__ dh2, T* __restrict__ dc,
                              T* __restrict__ dg, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = acts[j], f = acts[H + j], cand = acts[2 * H + j], o = acts[3 * H + j];
    const T dh = SUM ? dh1[j] + dh2[j] : dh1[j];
    const T tc = act_tanh(c[j]);
    const T dcj = dc[j] + dh * o * (T(1) - tc * tc);
    dg[j] = dcj * cand * i * (T(1) - i);             // d ingate
    dg[H + j] = dcj * c_prev[j] * f * (T(1) - f);    // d forgetgate
    dg[2 * H + j] = dcj * i * (T(1) - cand * cand);  // d cellgate
    dg[3 * H + j] = dh * tc * o * (T(1) - o);        // d outgate
    dc[j] = dcj * f;
  }
}

// GRU backward for one row. dh_acc: in, the gradient reaching h_t from step t+1 (dy is the output's);
// out, z * dh, the direct part of the gradient for h_{t-1} (the product part is added by a GEMM).
// dgh (3H): gradient of h_prev W_hh^T + b_hh; dgxn (H): that of the n gate's x W_in^T + b_in (its r and z
// parts equal dgh's).
template <typename T>
inline void gru_backward_row(const T* __restrict__ acts, const T* __restrict__ hn, const T* __restrict__ h_prev,
                             const T* __restrict__ dy, T* __restrict__ dh_acc, T* __restrict__ dgh,
                             T* __restrict__ dgxn, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = acts[j], z = acts[H + j], n = acts[2 * H + j];
    const T dh = dy[j] + dh_acc[j];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (h_prev[j] - n) * z * (T(1) - z);
    const T dr = dn * hn[j] * r * (T(1) - r);
    dgh[j] = dr;
    dgh[H + j] = dz;
    dgh[2 * H + j] = dn * r;
    dgxn[j] = dn;
    dh_acc[j] = dh * z;
  }
}

template <typename T, bool RELU>
inline void rnn_backward_row(const T* __restrict__ h, const T* __restrict__ dy, const T* __restrict__ dh_acc,
                             T* __restrict__ dpre, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const T dh = dy[j] + dh_acc[j];
    dpre[j] = RELU ? (h[j] > T(0) ? dh : T(0)) : dh * (T(1) - h[j] * h[j]);
  }
}

// ---------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------

struct Weights {
  Tensor w_ih, w_hh, b_ih, b_hh, w_hr;  // b_*, w_hr undefined when absent
};

// Rows [b0, b1) of step t (at seq_rows) whose sequences end at t, copied into final (B, width).
// Only the columns [j0, j0 + n) of them when n >= 0.
template <typename T>
void capture_final(const Steps& st, int64_t t, int64_t b0, int64_t b1, const T* seq_rows, T* final, int64_t width,
                   int64_t j0 = 0, int64_t n = -1) {
  const int64_t from = std::max(b0, st.continuing(t));  // rows [continuing, bs[t]) take no further step
  if (n < 0 || n == width) {
    if (b1 > from) std::copy_n(seq_rows + from * width, (b1 - from) * width, final + from * width);
    return;
  }
  for (int64_t b = from; b < b1; ++b) std::copy_n(seq_rows + b * width + j0, n, final + b * width + j0);
}

// Returns {output (N, P), h_n (B, P), c_n (B, H) or empty, ws_gates, ws_state, ws_m}: the workspace the
// backward needs (empty when !train). LSTM: ws_gates (N, 4H) activations, ws_state (N, H) cell states,
// ws_m (N, H) the unprojected hidden states (projection only). GRU: ws_gates (N, 3H) r, z, n and
// ws_state (N, H) W_hn h + b_hn. RNN: the output is all it needs.
template <typename T>
std::vector<Tensor> forward_impl(int64_t mode, const Tensor& x, const Steps& st, const Tensor& h0, const Tensor& c0,
                                 const Weights& w, bool train) {
  const auto opts = x.options();
  const int64_t N = st.N, B = st.B, I = x.size(-1), P = h0.size(1);
  const int64_t G = w.w_hh.size(0), H = G / num_gates(mode);
  const bool proj = w.w_hr.defined(), rnn = mode == RNN_TANH || mode == RNN_RELU;
  const T* h0p = h0.data_ptr<T>();
  const T* wih = w.w_ih.data_ptr<T>();

  // Biases as plain vectors (zeros without bias): LSTM and RNN add b_ih + b_hh in one go; GRU keeps
  // them apart because b_hn sits inside the reset gate's product.
  std::vector<T> bx(G, T(0)), bh(G, T(0));
  if (w.b_ih.defined()) std::copy_n(w.b_ih.data_ptr<T>(), G, bx.begin());
  if (w.b_hh.defined()) std::copy_n(w.b_hh.data_ptr<T>(), G, bh.begin());
  if (mode != GRU)
    for (int64_t j = 0; j < G; ++j) bx[j] += bh[j];

  const StepWeight<T> w_step(w.w_hh.data_ptr<T>(), P, /*trans=*/true, G, P, B, opts);  // h_prev @ W_hh^T
  const StepWeight<T> w_proj(proj ? w.w_hr.data_ptr<T>() : nullptr, H, /*trans=*/true, P, H, proj ? B : 0,
                             opts);  // m @ W_hr^T
  Tensor empty = at::empty({0}, opts);
  Tensor out = at::empty({N, P}, opts);
  Tensor hn = at::empty({B, P}, opts);
  Tensor cn = mode == LSTM ? at::empty({B, H}, opts) : empty;
  T* outp = out.data_ptr<T>();
  T* hnp = hn.data_ptr<T>();
  T* cnp = mode == LSTM ? cn.data_ptr<T>() : nullptr;
  // The gates: every step's in training (the backward reads them), else one chunk's at a time. The RNN's
  // one gate is its output, so it projects straight into it.
  Tensor gates = rnn ? out : at::empty({train ? N : st.max_chunk_rows, G}, opts);
  T* gates_p = gates.data_ptr<T>();
  // LSTM: c of every step in training, else two rolling (B, H) buffers; m (the unprojected h) likewise.
  // GRU: W_hn h + b_hn of every step in training, and the current step's h_prev W_hh^T.
  Tensor ws_state = empty, ws_m = empty, gh = empty;
  if (mode == LSTM) {
    ws_state = at::empty({train ? N : 2 * B, H}, opts);
    if (proj) ws_m = at::empty({train ? N : B, H}, opts);
  } else if (mode == GRU) {
    if (train) ws_state = at::empty({N, H}, opts);
    gh = at::empty({B, G}, opts);
  }
  T* csp = mode == LSTM ? ws_state.data_ptr<T>() : nullptr;
  T* hns = mode == GRU && train ? ws_state.data_ptr<T>() : nullptr;
  T* mp = proj ? ws_m.data_ptr<T>() : nullptr;
  T* ghp = mode == GRU ? gh.data_ptr<T>() : nullptr;
  const T* c0p = mode == LSTM ? c0.data_ptr<T>() : nullptr;
  // Work is shared out between threads by rows (row_split) or, for wide enough layers without a
  // projection, by hidden units (col_split).
  const std::vector<int64_t> cols = proj ? std::vector<int64_t>{0, H} : col_split(st, H, G);
  const bool by_cols = cols.size() > 2;
  const std::vector<int64_t> split = by_cols ? std::vector<int64_t>{0, B} : row_split(st);
  const int64_t ng = num_gates(mode), parts = static_cast<int64_t>(cols.size()) - 1;
  // Part p's slice of W_hh: its hidden units' rows of every gate, copied together (ng * n_p, P) so that
  // one product per step (packed once here) gives all of them, into its own (B, ng * n_p) buffer.
  std::vector<Tensor> w_slices, gh_parts;
  std::vector<StepWeight<T>> w_cols;
  for (int64_t p = 0; by_cols && p < parts; ++p) {
    const int64_t np_ = cols[p + 1] - cols[p];
    w_slices.push_back(w.w_hh.view({ng, H, P}).narrow(1, cols[p], np_).reshape({ng * np_, P}).contiguous());
    w_cols.emplace_back(w_slices.back().data_ptr<T>(), P, /*trans=*/true, ng * np_, P, B, opts);
    gh_parts.push_back(at::empty({B, ng * np_}, opts));
  }

  // Step t (position s in the pass) for the rows [b0, b1) and, with part >= 0, only the hidden units
  // [cols[part], cols[part + 1]) of them (else all H).
  const auto step = [&](int64_t t, int64_t s, T* g, int64_t b0, int64_t b1, int64_t part) {
    const int64_t o = st.off[t], np = st.carried(t);
    const int64_t j0 = part < 0 ? 0 : cols[part], n = part < 0 ? H : cols[part + 1] - j0;
    // The part's own product buffer, rows of ng * n: its gate blocks are n apart.
    T* ghc = part < 0 ? nullptr : gh_parts[part].data_ptr<T>();
    const auto own_product = [&] { recurrent_gemm<T>(st, t, b0, b1, outp, h0p, w_cols[part], P, T(0), ghc, ng * n); };
    // fn(b) for each row: shared out between threads when the rows are the whole job.
    const auto each_row = [&](int64_t width, const auto& fn) {
      if (part < 0) {
        for_rows(b0, b1, width, fn);
      } else {
        for (int64_t b = b0; b < b1; ++b) fn(b);
      }
    };
    if (mode == LSTM) {
      if (part < 0) {
        recurrent_gemm<T>(st, t, b0, b1, outp, h0p, w_step, P, T(1), g, G);  // into g, after x W_ih^T
      } else {
        own_product();
      }
      // This step's c, and the previous step's rows (all of c in training, else the other buffer).
      T* c_cur = train ? csp + o * H : csp + (s % 2) * B * H;
      const T* c_prev = train ? csp + (np > 0 ? st.off[st.prev(t)] : 0) * H : csp + ((s + 1) % 2) * B * H;
      T* h_dst = proj ? (train ? mp + o * H : mp) : outp + o * P;  // h before the projection, if any
      const int64_t h_ld = proj ? H : P;
      each_row(4 * n, [&](int64_t b) {
        const T* cp = (b < np ? c_prev + b * H : c0p + b * H) + j0;
        T* gb = g + b * G + j0;
        T* cb = c_cur + b * H + j0;
        T* hb = h_dst + b * h_ld + j0;
        const T* bias = bx.data() + j0;
        if (part < 0) {
          if (train) {
            lstm_forward_row<T, true, false>(gb, nullptr, 0, bias, cp, cb, hb, n, H);
          } else {
            lstm_forward_row<T, false, false>(gb, nullptr, 0, bias, cp, cb, hb, n, H);
          }
        } else if (train) {
          lstm_forward_row<T, true, true>(gb, ghc + b * 4 * n, n, bias, cp, cb, hb, n, H);
        } else {
          lstm_forward_row<T, false, true>(gb, ghc + b * 4 * n, n, bias, cp, cb, hb, n, H);
        }
      });
      if (proj) w_proj.apply(b1 - b0, h_dst + b0 * H, H, T(0), outp + (o + b0) * P, P);
      capture_final<T>(st, t, b0, b1, c_cur, cnp, H, j0, n);
    } else if (mode == GRU) {
      // h_prev W_hh^T: all of it (blocks H apart) or the part's (n apart).
      if (part < 0) recurrent_gemm<T>(st, t, b0, b1, outp, h0p, w_step, P, T(0), ghp, G);
      if (part >= 0) own_product();
      const T* ghb = part < 0 ? ghp : ghc;
      const int64_t gs = part < 0 ? H : n;
      each_row(3 * n, [&](int64_t b) {
        const T* hp = prev_row<T>(st, t, b, outp, h0p, H) + j0;
        T* hb = outp + (o + b) * H + j0;
        const T* ghr = part < 0 ? ghb + b * G + j0 : ghb + b * 3 * n;
        if (train) {
          gru_forward_row<T, true>(g + b * G + j0, ghr, gs, bx.data() + j0, bh.data() + j0, hp, hb,
                                   hns + (o + b) * H + j0, n, H);
        } else {
          gru_forward_row<T, false>(g + b * G + j0, ghr, gs, bx.data() + j0, bh.data() + j0, hp, hb, nullptr, n, H);
        }
      });
    } else {
      if (part < 0) {
        recurrent_gemm<T>(st, t, b0, b1, outp, h0p, w_step, P, T(1), g, H);  // g is this step's output rows
      } else {
        own_product();
      }
      each_row(n, [&](int64_t b) {
        T* hb = g + b * H + j0;
        const T* bias = bx.data() + j0;
        if (part < 0) {
          if (mode == RNN_RELU) {
            rnn_forward_row<T, true, false>(hb, nullptr, bias, n);
          } else {
            rnn_forward_row<T, false, false>(hb, nullptr, bias, n);
          }
        } else if (mode == RNN_RELU) {
          rnn_forward_row<T, true, true>(hb, ghc + b * n, bias, n);
        } else {
          rnn_forward_row<T, false, true>(hb, ghc + b * n, bias, n);
        }
      });
    }
    capture_final<T>(st, t, b0, b1, outp + o * P, hnp, P, j0, proj ? P : n);
  };

  int64_t s0 = 0;  // position in the pass of the chunk's first step
  for (int64_t c = 0; c < static_cast<int64_t>(st.chunks.size()); ++c) {
    const auto [lo, hi] = st.chunk(c, /*backward=*/false);
    const int64_t r0 = st.off[lo];
    T* gx = (rnn || train) ? gates_p + r0 * G : gates_p;  // this chunk's rows of the gates
    const Tensor xc = chunk_rows(x, st, lo, hi);
    gemm<T>(false, true, st.off[hi] - r0, G, I, T(1), xc.data_ptr<T>(), I, wih, I, T(0), gx, G);  // x W_ih^T
    if (by_cols) {  // every thread takes part in every step: they meet after each one
      steps_by_cols(parts, hi - lo, [&, lo = lo, hi = hi](int64_t k, int64_t p) {
        const int64_t t = st.step_in(lo, hi, k, /*backward=*/false);
        step(t, s0 + k, gx + (st.off[t] - r0) * G, 0, st.bs[t], p);
      });
    } else {
      over_rows(split, [&, lo = lo, hi = hi](int64_t b_lo, int64_t b_hi) {
        for (int64_t k = 0; k < hi - lo; ++k) {
          const int64_t t = st.step_in(lo, hi, k, /*backward=*/false);
          const int64_t b1 = std::min(b_hi, st.bs[t]);
          if (b1 > b_lo) step(t, s0 + k, gx + (st.off[t] - r0) * G, b_lo, b1, -1);
        }
      });
    }
    s0 += hi - lo;
  }
  if (!train) return {out, hn, cn, empty, empty, empty};
  return {out, hn, cn, rnn ? empty : gates, ws_state, ws_m};
}

// ---------------------------------------------------------------------------------------------------
// Backward through time
// ---------------------------------------------------------------------------------------------------

// Returns {dx (N, I), dh0 (B, P), dc0 (B, H), dW_ih, dW_hh, db_ih, db_hh, dW_hr}; entries not asked for
// (need_x, need_w) or absent are empty.
template <typename T>
std::vector<Tensor> backward_impl(int64_t mode, const Tensor& dy, const Tensor& dhn, const Tensor& dcn,
                                  const Tensor& x, const Steps& st, const Tensor& h0, const Tensor& c0,
                                  const Weights& w, bool has_bias, const Tensor& out, const Tensor& ws_gates,
                                  const Tensor& ws_state, const Tensor& ws_m, bool need_x, bool need_w) {
  const auto opts = x.options();
  const int64_t N = st.N, B = st.B, I = x.size(-1), P = h0.size(1);
  const int64_t G = w.w_hh.size(0), H = G / num_gates(mode);
  const bool proj = w.w_hr.defined(), gru = mode == GRU;
  const int64_t Gx = gru ? 2 * H : G;  // columns of dG that are also the input side's (GRU: r, z only)
  const int64_t CR = st.max_chunk_rows;
  const T* h0p = h0.data_ptr<T>();
  const T* wih = w.w_ih.data_ptr<T>();
  const T* outp = out.data_ptr<T>();
  const StepWeight<T> w_step(w.w_hh.data_ptr<T>(), P, /*trans=*/false, P, G, B, opts);  // dG_t @ W_hh
  const StepWeight<T> w_proj(proj ? w.w_hr.data_ptr<T>() : nullptr, H, /*trans=*/false, H, P, proj ? B : 0,
                             opts);  // dh @ W_hr
  Tensor empty = at::empty({0}, opts);

  Tensor dh_acc = dhn.clone();  // (B, P): the gradient reaching each sequence's current h from later steps
  Tensor dc_acc = mode == LSTM ? dcn.clone() : empty;  // (B, H), likewise for c
  T* dhp = dh_acc.data_ptr<T>();
  T* dcp = mode == LSTM ? dc_acc.data_ptr<T>() : nullptr;
  // One chunk's gradients: of the gate pre-activations (GRU: of h_prev W_hh^T + b_hh, with the n gate's
  // input side apart in dgxn); of the projected h (for dW_hr); the chunk's previous hidden states (packed).
  Tensor dg = at::empty({CR, G}, opts);
  Tensor dgxn = gru ? at::empty({CR, H}, opts) : empty;
  Tensor dhfull = proj ? at::empty({CR, P}, opts) : empty;
  Tensor dm = proj ? at::empty({B, H}, opts) : empty;
  Tensor hprev = need_w ? at::empty({CR, P}, opts) : empty;
  T* dgp = dg.data_ptr<T>();
  // Results: the weight gradients are sums over chunks.
  Tensor dx = need_x ? at::empty({N, I}, opts) : empty;
  Tensor dwih = need_w ? at::zeros({G, I}, opts) : empty;
  Tensor dwhh = need_w ? at::zeros({G, P}, opts) : empty;
  Tensor dbih = need_w && has_bias ? at::zeros({G}, opts) : empty;
  Tensor dbhh = need_w && has_bias ? at::zeros({G}, opts) : empty;
  Tensor dwhr = need_w && proj ? at::zeros({P, H}, opts) : empty;
  const T* acts = mode == LSTM || gru ? ws_gates.data_ptr<T>() : nullptr;
  const T* states = mode == LSTM || gru ? ws_state.data_ptr<T>() : nullptr;  // LSTM: c; GRU: W_hn h + b_hn
  const T* c0p = mode == LSTM ? c0.data_ptr<T>() : nullptr;
  const std::vector<int64_t> split = row_split(st);

  // Step t for the rows [b0, b1) of one thread; dyt, dgt, dgxnt, dhft: the step's rows in the chunk's
  // output gradient and buffers.
  const auto step = [&](int64_t t, const T* dyt, T* dgt, T* dgxnt, T* dhft, int64_t b0, int64_t b1) {
    const int64_t o = st.off[t];
    if (mode == LSTM) {
      const int64_t np = st.carried(t);
      const int64_t prev_off = np > 0 ? st.off[st.prev(t)] : 0;
      const T* dh1 = dyt;  // dh = dy + dh_acc; with a projection, dm = dh @ W_hr instead
      int64_t ld1 = P;
      if (proj) {
        for (int64_t e = b0 * P; e < b1 * P; ++e) dhft[e] = dh1[e] + dhp[e];
        w_proj.apply(b1 - b0, dhft + b0 * P, P, T(0), dm.data_ptr<T>() + b0 * H, H);
        dh1 = dm.data_ptr<T>();
        ld1 = H;
      }
      for_rows(b0, b1, 4 * H, [&](int64_t b) {
        const T* cp = b < np ? states + (prev_off + b) * H : c0p + b * H;
        if (proj) {
          lstm_backward_row<T, false>(acts + (o + b) * G, states + (o + b) * H, cp, dh1 + b * ld1, nullptr,
                                      dcp + b * H, dgt + b * G, H);
        } else {
          lstm_backward_row<T, true>(acts + (o + b) * G, states + (o + b) * H, cp, dh1 + b * ld1, dhp + b * P,
                                     dcp + b * H, dgt + b * G, H);
        }
      });
      w_step.apply(b1 - b0, dgt + b0 * G, G, T(0), dhp + b0 * P, P);  // dh_{t-1} = dG_t W_hh
    } else if (gru) {
      for_rows(b0, b1, 3 * H, [&](int64_t b) {
        const T* hp = prev_row<T>(st, t, b, outp, h0p, H);
        gru_backward_row<T>(acts + (o + b) * G, states + (o + b) * H, hp, dyt + b * H, dhp + b * H,
                            dgt + b * G, dgxnt + b * H, H);
      });
      w_step.apply(b1 - b0, dgt + b0 * G, G, T(1), dhp + b0 * H, H);  // dh_{t-1} = z dh + dG_t W_hh
    } else {
      for_rows(b0, b1, H, [&](int64_t b) {
        if (mode == RNN_RELU) {
          rnn_backward_row<T, true>(outp + (o + b) * H, dyt + b * H, dhp + b * H, dgt + b * H, H);
        } else {
          rnn_backward_row<T, false>(outp + (o + b) * H, dyt + b * H, dhp + b * H, dgt + b * H, H);
        }
      });
      w_step.apply(b1 - b0, dgt + b0 * G, G, T(0), dhp + b0 * H, H);
    }
  };

  for (int64_t c = 0; c < static_cast<int64_t>(st.chunks.size()); ++c) {
    const auto [lo, hi] = st.chunk(c, /*backward=*/true);
    const int64_t r0 = st.off[lo], rows_c = st.off[hi] - r0;
    const Tensor dyc = chunk_rows(dy, st, lo, hi);
    const T* dycp = dyc.data_ptr<T>();
    over_rows(split, [&, lo = lo, hi = hi](int64_t b_lo, int64_t b_hi) {
      for (int64_t k = 0; k < hi - lo; ++k) {
        const int64_t t = st.step_in(lo, hi, k, /*backward=*/true);
        const int64_t b1 = std::min(b_hi, st.bs[t]), rel = st.off[t] - r0;  // rel: first row in the chunk
        if (b1 <= b_lo) continue;
        step(t, dycp + rel * P, dgp + rel * G, gru ? dgxn.data_ptr<T>() + rel * H : nullptr,
             proj ? dhfull.data_ptr<T>() + rel * P : nullptr, b_lo, b1);
      }
    });

    // The chunk's share of the large products, while its dG is in cache.
    if (need_x) {
      T* dxc = dx.data_ptr<T>() + r0 * I;
      gemm<T>(false, false, rows_c, I, Gx, T(1), dgp, G, wih, I, T(0), dxc, I);  // dx = dGx W_ih
      if (gru) gemm<T>(false, false, rows_c, I, H, T(1), dgxn.data_ptr<T>(), H, wih + 2 * H * I, I, T(1), dxc, I);
    }
    if (need_w) {
      T* dwihp = dwih.data_ptr<T>();
      const Tensor x_rows = chunk_rows(x, st, lo, hi);
      const T* xc = x_rows.data_ptr<T>();
      gemm<T>(true, false, Gx, I, rows_c, T(1), dgp, G, xc, I, T(1), dwihp, I);  // dW_ih += dGx^T x
      if (gru) gemm<T>(true, false, H, I, rows_c, T(1), dgxn.data_ptr<T>(), H, xc, I, T(1), dwihp + 2 * H * I, I);
      // dW_hh += dG^T H_prev. A padded batch's H_prev rows are the output shifted by one step (B rows),
      // except at the first step, where they are h0; otherwise gather them.
      const T* hp = nullptr;
      const bool has_first = st.reverse ? hi == st.T : lo == 0;
      if (st.uniform && !has_first) {
        hp = outp + (r0 + (st.reverse ? B : -B)) * P;
      } else {
        T* dst = hprev.data_ptr<T>();
        for (int64_t t = lo; t < hi; ++t) {
          const int64_t rows = st.bs[t], np = st.carried(t), o = st.off[t] - r0;
          if (np > 0) std::copy_n(outp + st.off[st.prev(t)] * P, np * P, dst + o * P);
          if (rows > np) std::copy_n(h0p + np * P, (rows - np) * P, dst + (o + np) * P);
        }
        hp = dst;
      }
      gemm<T>(true, false, G, P, rows_c, T(1), dgp, G, hp, P, T(1), dwhh.data_ptr<T>(), P);
      if (has_bias) {
        column_sums<T>(dgp, rows_c, G, G, dbhh.data_ptr<T>(), true);
        if (gru) column_sums<T>(dgxn.data_ptr<T>(), rows_c, H, H, dbih.data_ptr<T>() + 2 * H, true);
      }
      if (proj) {
        gemm<T>(true, false, P, H, rows_c, T(1), dhfull.data_ptr<T>(), P, ws_m.data_ptr<T>() + r0 * H, H, T(1),
                dwhr.data_ptr<T>(), H);
      }
    }
  }
  if (need_w && has_bias) {  // b_ih's gradient is b_hh's, except the GRU's n gate (summed above)
    std::copy_n(dbhh.data_ptr<T>(), Gx, dbih.data_ptr<T>());
  }
  return {dx, dh_acc, dc_acc, dwih, dwhh, dbih, dbhh, dwhr};
}

// ---------------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------------

Tensor opt_contig(const std::optional<Tensor>& t) {
  return t.has_value() && t->defined() ? t->contiguous() : Tensor();
}

void check_inputs(int64_t mode, const Tensor& x, const Steps& st, const Tensor& h0, const Weights& w) {
  TORCH_CHECK(mode >= 0 && mode <= 3, "rnnlab fused: mode must be 0..3, got ", mode);
  TORCH_CHECK(x.device().is_cpu() && (x.dim() == 2 || x.dim() == 3),
              "rnnlab fused: x must be a 2-D (N, H_in) or 3-D (T, B, H_in) CPU tensor, got ", x.sizes());
  TORCH_CHECK(x.dim() == 2 ? st.N == x.size(0) : (st.uniform && x.size(0) == st.T && x.size(1) == st.B),
              "rnnlab fused: batch_sizes ", c10::IntArrayRef(st.bs), " do not match x of shape ", x.sizes());
  for (int64_t t = 1; t < st.T; ++t)
    TORCH_CHECK(st.bs[t] <= st.bs[t - 1] && st.bs[t] > 0, "rnnlab fused: batch_sizes must be positive, non-increasing");
  TORCH_CHECK(h0.dim() == 2 && h0.size(0) == st.B, "rnnlab fused: h0 must be (", st.B, ", P), got ", h0.sizes());
  const int64_t G = w.w_hh.size(0);
  TORCH_CHECK(G % num_gates(mode) == 0 && w.w_ih.size(0) == G && w.w_ih.size(1) == x.size(-1) &&
                  w.w_hh.size(1) == h0.size(1),
              "rnnlab fused: weight shapes do not match: W_ih ", w.w_ih.sizes(), ", W_hh ", w.w_hh.sizes());
}

// The mode crosses the boundary as torch.nn's name ("LSTM", ...): no numbering shared with Python.
Mode mode_of(c10::string_view name) {
  if (name == "RNN_TANH") return RNN_TANH;
  if (name == "RNN_RELU") return RNN_RELU;
  if (name == "LSTM") return LSTM;
  if (name == "GRU") return GRU;
  TORCH_CHECK(false, "rnnlab fused: mode must be RNN_TANH, RNN_RELU, LSTM or GRU, got ", name);
}

std::vector<Tensor> fused_forward(c10::string_view mode_name, const Tensor& x_, c10::IntArrayRef batch_sizes, const Tensor& h0_,
                                  const std::optional<Tensor>& c0_, const Tensor& w_ih,
                                  const Tensor& w_hh, const std::optional<Tensor>& b_ih,
                                  const std::optional<Tensor>& b_hh, const std::optional<Tensor>& w_hr,
                                  bool reverse, bool train) {
  at::NoGradGuard no_grad;
  const int64_t mode = mode_of(mode_name);
  const Steps st(batch_sizes, reverse);
  const Tensor& x = x_;  // read chunk by chunk (chunk_rows), whatever its strides
  const Tensor h0 = h0_.contiguous();
  const Tensor c0 = opt_contig(c0_);
  const Weights w{w_ih.contiguous(), w_hh.contiguous(), opt_contig(b_ih), opt_contig(b_hh), opt_contig(w_hr)};
  check_inputs(mode, x, st, h0, w);
  TORCH_CHECK(mode != LSTM || c0.defined(), "rnnlab fused: LSTM needs c0");
  std::vector<Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_fused_forward", [&] {
    result = forward_impl<scalar_t>(mode, x, st, h0, c0, w, train);
  });
  return result;
}

std::vector<Tensor> fused_backward(c10::string_view mode_name, const Tensor& dy, const Tensor& dhn, const std::optional<Tensor>& dcn,
                                   const Tensor& x_, c10::IntArrayRef batch_sizes, const Tensor& h0_,
                                   const std::optional<Tensor>& c0_, const Tensor& w_ih, const Tensor& w_hh,
                                   const std::optional<Tensor>& w_hr, bool has_bias, bool reverse, const Tensor& out,
                                   const Tensor& ws_gates, const Tensor& ws_state, const Tensor& ws_m, bool need_x,
                                   bool need_w) {
  at::NoGradGuard no_grad;
  const int64_t mode = mode_of(mode_name);
  const Steps st(batch_sizes, reverse);
  const Tensor& x = x_;  // read chunk by chunk (chunk_rows), whatever its strides
  const Tensor h0 = h0_.contiguous();
  const Tensor c0 = opt_contig(c0_);
  const Weights w{w_ih.contiguous(), w_hh.contiguous(), Tensor(), Tensor(), opt_contig(w_hr)};
  check_inputs(mode, x, st, h0, w);
  const Tensor dcn_c = opt_contig(dcn);
  std::vector<Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_fused_backward", [&] {
    result = backward_impl<scalar_t>(mode, dy, dhn.contiguous(), dcn_c, x, st, h0, c0, w, has_bias,
                                     out.contiguous(), ws_gates, ws_state, ws_m, need_x, need_w);
  });
  return result;
}

bool blas_linked() { return sgemm_ != nullptr && dgemm_ != nullptr; }

}  // namespace
}  // namespace rnnlab

TORCH_LIBRARY(rnnlab_fused, m) {
  m.def(
      "forward(str mode, Tensor x, int[] batch_sizes, Tensor h0, Tensor? c0, Tensor w_ih, Tensor w_hh, "
      "Tensor? b_ih, Tensor? b_hh, Tensor? w_hr, bool reverse, bool train) -> Tensor[]");
  m.def(
      "backward(str mode, Tensor dy, Tensor dhn, Tensor? dcn, Tensor x, int[] batch_sizes, Tensor h0, Tensor? c0, "
      "Tensor w_ih, Tensor w_hh, Tensor? w_hr, bool has_bias, bool reverse, Tensor out, Tensor ws_gates, "
      "Tensor ws_state, Tensor ws_m, bool need_x, bool need_w) -> Tensor[]");
  m.def("blas_linked() -> bool", [] { return rnnlab::blas_linked(); });
}

TORCH_LIBRARY_IMPL(rnnlab_fused, CPU, m) {
  m.impl("forward", &rnnlab::fused_forward);
  m.impl("backward", &rnnlab::fused_backward);
}
