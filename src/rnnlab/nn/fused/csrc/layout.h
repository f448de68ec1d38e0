// The packed layout (Steps: where each step's rows are, what each step carries over), reading chunks of
// steps, capturing final states, and how threads share out the rows or the hidden units.
// The same helpers, under the same names, are rnnlab/nn/fused/_layout.py's Steps (the pure-PyTorch back end).
// Part of rnnlab's fused kernels (fused_rnn.cpp includes it; one translation unit).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "blas.h"

namespace rnnlab {
namespace {

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
// when the rows are contiguous already, else a copy of just these rows. So a batch-first input (a strided
// view) or a gradient expanded from a scalar (out.sum()) is never copied whole, and the input the
// backward keeps is the caller's own tensor.
Tensor chunk_rows(const Tensor& t, const Steps& st, int64_t lo, int64_t hi) {
  if (t.dim() == 3) return t.narrow(0, lo, hi - lo).reshape({-1, t.size(2)}).contiguous();  // (rows, W)
  return t.narrow(0, st.off[lo], st.off[hi] - st.off[lo]).contiguous();
}

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

}  // namespace
}  // namespace rnnlab
