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
// The files: blas.h (products), activations.h, layout.h (the packed layout: cuDNN's, which also covers
// the padded case; chunks; thread splits), cells.h (RnnTanh, RnnRelu, Lstm, Gru: each cell's gate
// kernels and steps) and this one: the two passes, templates over the cell, and the ops, which choose
// the cell once, by the mode's name ("LSTM", ...), so that no mode numbers are shared with Python.
//
// A padded input may come as (T, B, H_in) with any strides (a batch-first view, say) and the output's
// gradient likewise (expanded from out.sum(), say): both are read a chunk at a time (chunk_rows).
//
// Dimension legend: N packed rows, T steps, B batch, I input size, H hidden size, P = proj_size or H,
// G = gates * H (4H LSTM, 3H GRU, H RNN).
//
// The ops are registered with the dispatcher (TORCH_LIBRARY), so no pybind11 is needed and the build
// stays short. Gradients are wired up in Python (rnnlab/nn/fused/_autograd.py, a torch.autograd.Function).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "activations.h"
#include "blas.h"
#include "cells.h"
#include "layout.h"

namespace rnnlab {
namespace {

struct Weights {
  Tensor w_ih, w_hh, b_ih, b_hh, w_hr;  // b_*, w_hr undefined when absent
};

// ---------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------

// Returns {output (N, P), h_n (B, P), c_n (B, H) or empty, ws_gates, ws_state, ws_m}: the workspace the
// backward needs (empty when !train). LSTM: ws_gates (N, 4H) activations, ws_state (N, H) cell states,
// ws_m (N, H) the unprojected hidden states m (projection only). GRU: ws_gates (N, 3H) r, z, n and
// ws_state (N, H) hn = h_prev W_hn^T + b_hn. RNN: the output is all it needs.
template <typename T, typename Cell>
std::vector<Tensor> forward_impl(const Tensor& x, const Steps& st, const Tensor& h0, const Tensor& c0, const Weights& w,
                                 bool train) {
  const auto opts = x.options();
  const int64_t N = st.N, B = st.B, I = x.size(-1), P = h0.size(1);
  const int64_t ng = Cell::kGates, G = w.w_hh.size(0), H = G / ng;
  const bool proj = w.w_hr.defined();
  const T* wih = w.w_ih.data_ptr<T>();

  // Biases as plain vectors (zeros without bias): all cells but the GRU add b_ih + b_hh in one go; the
  // GRU keeps them apart because b_hn sits inside the reset gate's product (kXGates < kGates).
  std::vector<T> bx(G, T(0)), bh(G, T(0));
  if (w.b_ih.defined()) std::copy_n(w.b_ih.data_ptr<T>(), G, bx.begin());
  if (w.b_hh.defined()) std::copy_n(w.b_hh.data_ptr<T>(), G, bh.begin());
  if constexpr (Cell::kXGates == Cell::kGates) {
    for (int64_t j = 0; j < G; ++j) bx[j] += bh[j];
  }

  const StepWeight<T> w_step(w.w_hh.data_ptr<T>(), P, /*trans=*/true, G, P, B, opts);  // h_prev @ W_hh^T
  const StepWeight<T> w_proj(proj ? w.w_hr.data_ptr<T>() : nullptr, H, /*trans=*/true, P, H, proj ? B : 0,
                             opts);  // m @ W_hr^T
  Tensor empty = at::empty({0}, opts);
  Tensor out = at::empty({N, P}, opts);
  Tensor hn = at::empty({B, P}, opts);
  Tensor cn = Cell::kCellState ? at::empty({B, H}, opts) : empty;
  // The gates (every step's in training: the backward reads them; else one chunk's at a time), the
  // cell's state, m and gh buffers (see each cell's forward_buffers).
  const ForwardBuffers buf = Cell::forward_buffers(st, out, H, G, proj, train);
  T* gates_p = buf.gates.data_ptr<T>();
  const auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };

  // Work is shared out between threads by rows (row_split) or, for wide enough layers without a
  // projection, by hidden units (col_split).
  const std::vector<int64_t> cols = proj ? std::vector<int64_t>{0, H} : col_split(st, H, G);
  const bool by_cols = cols.size() > 2;
  const std::vector<int64_t> split = by_cols ? std::vector<int64_t>{0, B} : row_split(st);
  const int64_t parts = static_cast<int64_t>(cols.size()) - 1;
  // Part p's slice of W_hh: its hidden units' rows of every gate, copied together (ng * n_p, P) so that
  // one product per step (packed once here) gives all of them, into its own (B, ng * n_p) buffer.
  std::vector<Tensor> w_slices, gh_parts;
  std::vector<StepWeight<T>> w_cols;
  std::vector<T*> gh_part_ptrs;
  for (int64_t p = 0; by_cols && p < parts; ++p) {
    const int64_t np_ = cols[p + 1] - cols[p];
    w_slices.push_back(w.w_hh.view({ng, H, P}).narrow(1, cols[p], np_).reshape({ng * np_, P}).contiguous());
    w_cols.emplace_back(w_slices.back().data_ptr<T>(), P, /*trans=*/true, ng * np_, P, B, opts);
    gh_parts.push_back(at::empty({B, ng * np_}, opts));
    gh_part_ptrs.push_back(gh_parts.back().data_ptr<T>());
  }

  const ForwardPass<T> pass{st,
                            G,
                            H,
                            P,
                            ng,
                            train,
                            proj,
                            h0.data_ptr<T>(),
                            Cell::kCellState ? c0.data_ptr<T>() : nullptr,
                            out.data_ptr<T>(),
                            hn.data_ptr<T>(),
                            Cell::kCellState ? cn.data_ptr<T>() : nullptr,
                            ptr(buf.state),
                            ptr(buf.m),
                            ptr(buf.gh),
                            bx.data(),
                            bh.data(),
                            w_step,
                            w_proj,
                            cols,
                            w_cols,
                            gh_part_ptrs};

  // Step t (position s in the pass) for the rows [b0, b1) and, with part >= 0, only the hidden units
  // [cols[part], cols[part + 1]) of them (else all H); g: the step's rows of the gates.
  const auto step = [&](int64_t t, int64_t s, T* g, int64_t b0, int64_t b1, int64_t part) {
    Cell::template forward_step<T>(pass, t, s, g, b0, b1, part);
    capture_final<T>(st, t, b0, b1, pass.out + st.off[t] * P, pass.h_n, P, pass.j0(part),
                     proj ? P : pass.units(part));
  };

  int64_t s0 = 0;  // position in the pass of the chunk's first step
  for (int64_t c = 0; c < static_cast<int64_t>(st.chunks.size()); ++c) {
    const auto [lo, hi] = st.chunk(c, /*backward=*/false);
    const int64_t r0 = st.off[lo];
    T* gx = (Cell::kGatesAreOutput || train) ? gates_p + r0 * G : gates_p;  // this chunk's rows of the gates
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
  const auto or_empty = [&](const Tensor& t) { return t.defined() ? t : empty; };
  return {out, hn, cn, Cell::kGatesAreOutput ? empty : buf.gates, or_empty(buf.state), or_empty(buf.m)};
}

// ---------------------------------------------------------------------------------------------------
// Backward through time
//
// The equations (dh, dm, dc, dG per gate, dGx, dh_prev, dc_prev, then dx, dW_ih, dW_hh, db_ih, db_hh,
// dW_hr) are written once, in rnnlab/nn/fused/_torch_backend.py's module docstring, with the names used
// here and in cells.h (each cell's backward_row and backward_step); the pure-PyTorch back end there
// computes the same ones. This pass orders the work for speed: the walk back through time chunk by chunk,
// each chunk's share of the large products right after its steps, while its dG is in cache.
// ---------------------------------------------------------------------------------------------------

// Returns {dx (N, I), dh0 (B, P), dc0 (B, H), dW_ih, dW_hh, db_ih, db_hh, dW_hr}; entries not asked for
// (need_x, need_w) or absent are empty.
template <typename T, typename Cell>
std::vector<Tensor> backward_impl(const Tensor& dy, const Tensor& dhn, const Tensor& dcn, const Tensor& x,
                                  const Steps& st, const Tensor& h0, const Tensor& c0, const Weights& w, bool has_bias,
                                  const Tensor& out, const Tensor& ws_gates, const Tensor& ws_state,
                                  const Tensor& ws_m, bool need_x, bool need_w) {
  const auto opts = x.options();
  const int64_t N = st.N, B = st.B, I = x.size(-1), P = h0.size(1);
  const int64_t G = w.w_hh.size(0), H = G / Cell::kGates;
  const bool proj = w.w_hr.defined();
  constexpr bool x_apart = Cell::kXGates < Cell::kGates;  // GRU: the n gate's x side has its own gradient
  const int64_t Gx = Cell::kXGates * H;  // columns of dG that are also dGx's
  const int64_t CR = st.max_chunk_rows;
  const T* h0p = h0.data_ptr<T>();
  const T* wih = w.w_ih.data_ptr<T>();
  const T* outp = out.data_ptr<T>();
  const StepWeight<T> w_step(w.w_hh.data_ptr<T>(), P, /*trans=*/false, P, G, B, opts);  // dG_t @ W_hh
  const StepWeight<T> w_proj(proj ? w.w_hr.data_ptr<T>() : nullptr, H, /*trans=*/false, H, P, proj ? B : 0,
                             opts);  // dh @ W_hr
  Tensor empty = at::empty({0}, opts);

  Tensor dh_acc = dhn.clone();                                   // (B, P)
  Tensor dc_acc = Cell::kCellState ? dcn.clone() : empty;        // (B, H)
  // One chunk's gradients: dG; dGx's n block apart (GRU: dgxn); dH (every dh, for dW_hr); the chunk's
  // previous hidden states (packed).
  Tensor dg = at::empty({CR, G}, opts);
  Tensor dgxn = x_apart ? at::empty({CR, H}, opts) : empty;
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
  const std::vector<int64_t> split = row_split(st);

  const BackwardPass<T> pass{st,
                             G,
                             H,
                             P,
                             proj,
                             h0p,
                             Cell::kCellState ? c0.data_ptr<T>() : nullptr,
                             outp,
                             Cell::kGatesAreOutput ? nullptr : ws_gates.data_ptr<T>(),
                             Cell::kGatesAreOutput ? nullptr : ws_state.data_ptr<T>(),
                             dh_acc.data_ptr<T>(),
                             Cell::kCellState ? dc_acc.data_ptr<T>() : nullptr,
                             proj ? dm.data_ptr<T>() : nullptr,
                             w_step,
                             w_proj};

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
        Cell::template backward_step<T>(pass, t, dycp + rel * P, dgp + rel * G,
                                        x_apart ? dgxn.data_ptr<T>() + rel * H : nullptr,
                                        proj ? dhfull.data_ptr<T>() + rel * P : nullptr, b_lo, b1);
      }
    });

    // The chunk's share of the large products, while its dG is in cache.
    if (need_x) {
      T* dxc = dx.data_ptr<T>() + r0 * I;
      gemm<T>(false, false, rows_c, I, Gx, T(1), dgp, G, wih, I, T(0), dxc, I);  // dx = dGx W_ih
      if (x_apart) {
        gemm<T>(false, false, rows_c, I, G - Gx, T(1), dgxn.data_ptr<T>(), H, wih + Gx * I, I, T(1), dxc, I);
      }
    }
    if (need_w) {
      T* dwihp = dwih.data_ptr<T>();
      const Tensor x_rows = chunk_rows(x, st, lo, hi);
      const T* xc = x_rows.data_ptr<T>();
      gemm<T>(true, false, Gx, I, rows_c, T(1), dgp, G, xc, I, T(1), dwihp, I);  // dW_ih += dGx^T x
      if (x_apart) {
        gemm<T>(true, false, G - Gx, I, rows_c, T(1), dgxn.data_ptr<T>(), H, xc, I, T(1), dwihp + Gx * I, I);
      }
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
        column_sums<T>(dgp, rows_c, G, G, dbhh.data_ptr<T>(), true);  // db_hh = sum of dG
        if (x_apart) column_sums<T>(dgxn.data_ptr<T>(), rows_c, H, H, dbih.data_ptr<T>() + Gx, true);
      }
      if (proj) {  // dW_hr += dH^T M
        gemm<T>(true, false, P, H, rows_c, T(1), dhfull.data_ptr<T>(), P, ws_m.data_ptr<T>() + r0 * H, H, T(1),
                dwhr.data_ptr<T>(), H);
      }
    }
  }
  if (need_w && has_bias) {  // db_ih = sum of dGx: db_hh's columns, except the GRU's n gate (summed above)
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

// fn(Cell{}) for the cell of torch.nn's mode name: the one place the mode is looked at.
template <typename F>
decltype(auto) with_cell(c10::string_view mode, const F& fn) {
  if (mode == "RNN_TANH") return fn(RnnTanh{});
  if (mode == "RNN_RELU") return fn(RnnRelu{});
  if (mode == "LSTM") return fn(Lstm{});
  if (mode == "GRU") return fn(Gru{});
  TORCH_CHECK(false, "rnnlab fused: mode must be \"RNN_TANH\", \"RNN_RELU\", \"LSTM\" or \"GRU\", got \"", mode, "\"");
}

template <typename Cell>
void check_inputs(const Tensor& x, const Steps& st, const Tensor& h0, const Tensor& c0, const Weights& w) {
  TORCH_CHECK(x.device().is_cpu() && (x.dim() == 2 || x.dim() == 3),
              "rnnlab fused: x must be a 2-D (N, H_in) or 3-D (T, B, H_in) CPU tensor, got ", x.sizes());
  TORCH_CHECK(x.dim() == 2 ? st.N == x.size(0) : (st.uniform && x.size(0) == st.T && x.size(1) == st.B),
              "rnnlab fused: batch_sizes ", c10::IntArrayRef(st.bs), " do not match x of shape ", x.sizes());
  for (int64_t t = 1; t < st.T; ++t)
    TORCH_CHECK(st.bs[t] <= st.bs[t - 1] && st.bs[t] > 0, "rnnlab fused: batch_sizes must be positive, non-increasing");
  TORCH_CHECK(h0.dim() == 2 && h0.size(0) == st.B, "rnnlab fused: h0 must be (", st.B, ", P), got ", h0.sizes());
  const int64_t G = w.w_hh.size(0);
  TORCH_CHECK(G % Cell::kGates == 0 && w.w_ih.size(0) == G && w.w_ih.size(1) == x.size(-1) &&
                  w.w_hh.size(1) == h0.size(1),
              "rnnlab fused: weight shapes do not match: W_ih ", w.w_ih.sizes(), ", W_hh ", w.w_hh.sizes());
  TORCH_CHECK(Cell::kCellState ? c0.defined() : !w.w_hr.defined(),
              Cell::kCellState ? "rnnlab fused: LSTM needs c0" : "rnnlab fused: only the LSTM takes w_hr");
}

std::vector<Tensor> fused_forward(c10::string_view mode, const Tensor& x_, c10::IntArrayRef batch_sizes,
                                  const Tensor& h0_, const std::optional<Tensor>& c0_, const Tensor& w_ih,
                                  const Tensor& w_hh, const std::optional<Tensor>& b_ih,
                                  const std::optional<Tensor>& b_hh, const std::optional<Tensor>& w_hr,
                                  bool reverse, bool train) {
  at::NoGradGuard no_grad;
  const Steps st(batch_sizes, reverse);
  const Tensor& x = x_;  // read chunk by chunk (chunk_rows), whatever its strides
  const Tensor h0 = h0_.contiguous();
  const Tensor c0 = opt_contig(c0_);
  const Weights w{w_ih.contiguous(), w_hh.contiguous(), opt_contig(b_ih), opt_contig(b_hh), opt_contig(w_hr)};
  return with_cell(mode, [&](auto cell) {
    using Cell = decltype(cell);
    check_inputs<Cell>(x, st, h0, c0, w);
    std::vector<Tensor> result;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_fused_forward", [&] {
      result = forward_impl<scalar_t, Cell>(x, st, h0, c0, w, train);
    });
    return result;
  });
}

std::vector<Tensor> fused_backward(c10::string_view mode, const Tensor& dy, const Tensor& dhn,
                                   const std::optional<Tensor>& dcn, const Tensor& x_, c10::IntArrayRef batch_sizes,
                                   const Tensor& h0_, const std::optional<Tensor>& c0_, const Tensor& w_ih,
                                   const Tensor& w_hh, const std::optional<Tensor>& w_hr, bool has_bias, bool reverse,
                                   const Tensor& out, const Tensor& ws_gates, const Tensor& ws_state,
                                   const Tensor& ws_m, bool need_x, bool need_w) {
  at::NoGradGuard no_grad;
  const Steps st(batch_sizes, reverse);
  const Tensor& x = x_;  // read chunk by chunk (chunk_rows), whatever its strides
  const Tensor h0 = h0_.contiguous();
  const Tensor c0 = opt_contig(c0_);
  const Weights w{w_ih.contiguous(), w_hh.contiguous(), Tensor(), Tensor(), opt_contig(w_hr)};
  const Tensor dcn_c = opt_contig(dcn);
  return with_cell(mode, [&](auto cell) {
    using Cell = decltype(cell);
    check_inputs<Cell>(x, st, h0, c0, w);
    std::vector<Tensor> result;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnnlab_fused_backward", [&] {
      result = backward_impl<scalar_t, Cell>(dy, dhn.contiguous(), dcn_c, x, st, h0, c0, w, has_bias,
                                             out.contiguous(), ws_gates, ws_state, ws_m, need_x, need_w);
    });
    return result;
  });
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
