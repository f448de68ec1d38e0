// The four cells (RnnTanh, RnnRelu, Lstm, Gru): each is one struct holding its forward and backward gate
// kernels (one row = one sequence at one step) and its step of each pass, over a thread's rows. The passes
// (fused_rnn.cpp) are templates over the cell, chosen once, by the mode's name, at the op boundary: no
// step ever asks which mode it runs.
//
// The equations are those of rnnlab/nn/fused/_torch_backend.py's module docstring, with its names
// (i, f, cand, o, c, m, h; r, z, n, hn; dh, dm, dc, dG, dGx, dh_prev, dc_prev).
// Part of rnnlab's fused kernels (fused_rnn.cpp includes it; one translation unit).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "activations.h"
#include "blas.h"
#include "layout.h"

namespace rnnlab {
namespace {

// What a cell's forward step reads and writes: the pass's buffers (pointers into the op's tensors).
template <typename T>
struct ForwardPass {
  const Steps& st;
  int64_t G, H, P, gates;  // gates: the cell's gate blocks (G = gates * H)
  bool train, proj;
  const T* h0;
  const T* c0;      // LSTM
  T* out;           // (N, P): every step's h
  T* h_n;           // (B, P)
  T* c_n;           // LSTM (B, H)
  T* state;         // LSTM: c (every step's in training, else two rolling (B, H) buffers); GRU: hn (training)
  T* m;             // LSTM with a projection: m, the unprojected h (every step's in training, else (B, H))
  T* gh;            // GRU: the step's h_prev W_hh^T, (B, G) (b_hh is added in the kernel)
  const T* bx;      // b_ih + b_hh (GRU: b_ih alone), (G)
  const T* bh;      // GRU: b_hh, (G)
  const StepWeight<T>& w_step;  // h_prev @ W_hh^T
  const StepWeight<T>& w_proj;  // m @ W_hr^T
  // Sharing a step out by hidden units (col_split): part p owns units [cols[p], cols[p + 1]), multiplies
  // by its own slice of W_hh (w_cols[p]) into its own buffer (gh_parts[p], rows of gates * n_p).
  const std::vector<int64_t>& cols;
  const std::vector<StepWeight<T>>& w_cols;
  const std::vector<T*>& gh_parts;

  int64_t j0(int64_t part) const { return part < 0 ? 0 : cols[part]; }
  int64_t units(int64_t part) const { return part < 0 ? H : cols[part + 1] - cols[part]; }
  // Part p's recurrent product, h_prev W_hh^T for its units, into gh_parts[p] (gate blocks n_p apart).
  void own_product(int64_t t, int64_t b0, int64_t b1, int64_t part) const {
    recurrent_gemm<T>(st, t, b0, b1, out, h0, w_cols[part], P, T(0), gh_parts[part], gates * units(part));
  }
  // fn(b) for each row: shared out between threads when the rows are the whole job (part < 0).
  template <typename F>
  void each_row(int64_t b0, int64_t b1, int64_t part, int64_t width, const F& fn) const {
    if (part < 0) {
      for_rows(b0, b1, width, fn);
    } else {
      for (int64_t b = b0; b < b1; ++b) fn(b);
    }
  }
};

// What a cell's backward step reads and writes.
template <typename T>
struct BackwardPass {
  const Steps& st;
  int64_t G, H, P;
  bool proj;
  const T* h0;
  const T* c0;      // LSTM
  const T* out;     // every step's h
  const T* acts;    // the forward's activations (LSTM i, f, cand, o; GRU r, z, n)
  const T* state;   // LSTM: every c; GRU: every hn
  T* dh_acc;        // (B, P): the gradient reaching each sequence's current h from later steps
  T* dc_acc;        // LSTM (B, H), likewise for c
  T* dm;            // LSTM with a projection: (B, H)
  const StepWeight<T>& w_step;  // dG @ W_hh
  const StepWeight<T>& w_proj;  // dh @ W_hr
};

// The forward's buffers beyond the output: the gates (the backward's activations), a state, m, gh.
struct ForwardBuffers {
  at::Tensor gates, state, m, gh;
};

// -----------------------------------------------------------------------------------------------------
// RNN (tanh or ReLU): h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh). The one gate is the output itself,
// so the input projection goes straight into the output's rows and the output is all the backward needs.
// -----------------------------------------------------------------------------------------------------

template <bool RELU>
struct Rnn {
  static constexpr int64_t kGates = 1;
  static constexpr int64_t kXGates = 1;  // gate blocks whose x-side gradient is dG's (all of them)
  static constexpr bool kCellState = false;
  static constexpr bool kGatesAreOutput = true;

  template <typename T>
  static RNNLAB_INLINE T act(T x) {
    if constexpr (RELU) {
      return act_relu(x);
    } else {
      return act_tanh(x);
    }
  }

  // h holds x W_ih^T (+ h_prev W_hh^T unless ADD, when that is in gh) and becomes the new h.
  template <typename T, bool ADD>
  static inline void forward_row(T* __restrict__ h, const T* __restrict__ gh, const T* __restrict__ bias,
                                 int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
      T pre = h[j] + bias[j];
      if constexpr (ADD) pre += gh[j];
      h[j] = act(pre);
    }
  }

  // da = (dy + dh_acc) * act'(.), written into dpre.
  template <typename T>
  static inline void backward_row(const T* __restrict__ h, const T* __restrict__ dy, const T* __restrict__ dh_acc,
                                  T* __restrict__ dpre, int64_t H) {
    for (int64_t j = 0; j < H; ++j) {
      const T dh = dy[j] + dh_acc[j];
      dpre[j] = RELU ? (h[j] > T(0) ? dh : T(0)) : dh * (T(1) - h[j] * h[j]);
    }
  }

  static ForwardBuffers forward_buffers(const Steps&, const at::Tensor& out, int64_t, int64_t, bool, bool) {
    return {out, at::Tensor(), at::Tensor(), at::Tensor()};
  }

  // Step t for rows [b0, b1) (units of part, or all); g: the step's rows of the output (x W_ih^T in it).
  template <typename T>
  static void forward_step(const ForwardPass<T>& f, int64_t t, int64_t, T* g, int64_t b0, int64_t b1,
                           int64_t part) {
    const int64_t j0 = f.j0(part), n = f.units(part);
    if (part < 0) {
      recurrent_gemm<T>(f.st, t, b0, b1, f.out, f.h0, f.w_step, f.P, T(1), g, f.H);  // + h_prev W_hh^T
    } else {
      f.own_product(t, b0, b1, part);
    }
    f.each_row(b0, b1, part, n, [&](int64_t b) {
      if (part < 0) {
        forward_row<T, false>(g + b * f.H + j0, nullptr, f.bx + j0, n);
      } else {
        forward_row<T, true>(g + b * f.H + j0, f.gh_parts[part] + b * n, f.bx + j0, n);
      }
    });
  }

  template <typename T>
  static void backward_step(const BackwardPass<T>& k, int64_t t, const T* dyt, T* dgt, T*, T*, int64_t b0,
                            int64_t b1) {
    const int64_t o = k.st.off[t], H = k.H;
    for_rows(b0, b1, H, [&](int64_t b) {
      backward_row<T>(k.out + (o + b) * H, dyt + b * H, k.dh_acc + b * H, dgt + b * H, H);
    });
    k.w_step.apply(b1 - b0, dgt + b0 * k.G, k.G, T(0), k.dh_acc + b0 * H, H);  // dh_prev = dG W_hh
  }
};

using RnnTanh = Rnn<false>;
using RnnRelu = Rnn<true>;

// -----------------------------------------------------------------------------------------------------
// LSTM, with an optional projection: i, f, cand, o from x W_ih^T + b_ih + h_prev W_hh^T + b_hh;
// c = f * c_prev + i * cand; m = o * tanh(c); h = m W_hr^T (or m).
// -----------------------------------------------------------------------------------------------------

struct Lstm {
  static constexpr int64_t kGates = 4;
  static constexpr int64_t kXGates = 4;
  static constexpr bool kCellState = true;
  static constexpr bool kGatesAreOutput = false;

  // n consecutive hidden units of one row (every pointer at the first of them; a gate's block is H after
  // the previous one's in g and bias). g holds x W_ih^T (+ h_prev W_hh^T unless ADD, when that is in gh,
  // whose gate blocks are gs apart); bias = b_ih + b_hh. Writes c (may alias c_prev: read before
  // written, element by element) and m; in training also the activations back into g.
  template <typename T, bool TRAIN, bool ADD>
  static inline void forward_row(T* __restrict__ g, const T* __restrict__ gh, int64_t gs,
                                 const T* __restrict__ bias, const T* c_prev, T* c, T* __restrict__ m,
                                 int64_t n, int64_t H) {
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
      m[j] = o * act_tanh(cj);
      if (TRAIN) {
        gi[j] = i;
        gf[j] = f;
        gg[j] = cand;
        go[j] = o;
      }
    }
  }

  // One row: dm = dh1 + dh2 (dh2 may be null; with a projection dh1 is already dh W_hr). dc: in, dc_acc
  // (from step t+1); out, dc_prev. Writes dG (4H).
  template <typename T, bool SUM>
  static inline void backward_row(const T* __restrict__ acts, const T* __restrict__ c, const T* __restrict__ c_prev,
                                  const T* __restrict__ dh1, const T* __restrict__ dh2, T* __restrict__ dc,
                                  T* __restrict__ dg, int64_t H) {
    for (int64_t j = 0; j < H; ++j) {
      const T i = acts[j], f = acts[H + j], cand = acts[2 * H + j], o = acts[3 * H + j];
      const T dm = SUM ? dh1[j] + dh2[j] : dh1[j];
      const T tc = act_tanh(c[j]);
      const T dcj = dc[j] + dm * o * (T(1) - tc * tc);
      dg[j] = dcj * cand * i * (T(1) - i);             // di
      dg[H + j] = dcj * c_prev[j] * f * (T(1) - f);    // df
      dg[2 * H + j] = dcj * i * (T(1) - cand * cand);  // dcand
      dg[3 * H + j] = dm * tc * o * (T(1) - o);        // do
      dc[j] = dcj * f;                                 // dc_prev
    }
  }

  // Training: the activations (N, 4H), every c (N, H) and every m (N, H, projection only). Inference:
  // one chunk's gates, two rolling c buffers (this step's, the previous one's) and one m.
  static ForwardBuffers forward_buffers(const Steps& st, const at::Tensor& out, int64_t H, int64_t G, bool proj,
                                        bool train) {
    const auto opts = out.options();
    const int64_t B = st.B;
    return {at::empty({train ? st.N : st.max_chunk_rows, G}, opts), at::empty({train ? st.N : 2 * B, H}, opts),
            proj ? at::empty({train ? st.N : B, H}, opts) : at::Tensor(), at::Tensor()};
  }

  template <typename T>
  static void forward_step(const ForwardPass<T>& f, int64_t t, int64_t s, T* g, int64_t b0, int64_t b1,
                           int64_t part) {
    const Steps& st = f.st;
    const int64_t o = st.off[t], np = st.carried(t), H = f.H, B = st.B;
    const int64_t j0 = f.j0(part), n = f.units(part);
    if (part < 0) {
      recurrent_gemm<T>(st, t, b0, b1, f.out, f.h0, f.w_step, f.P, T(1), g, f.G);  // into g, after x W_ih^T
    } else {
      f.own_product(t, b0, b1, part);
    }
    // This step's c, and the previous step's rows (all of c in training, else the other buffer).
    T* c_cur = f.train ? f.state + o * H : f.state + (s % 2) * B * H;
    const T* c_prev = f.train ? f.state + (np > 0 ? st.off[st.prev(t)] : 0) * H : f.state + ((s + 1) % 2) * B * H;
    T* m_dst = f.proj ? (f.train ? f.m + o * H : f.m) : f.out + o * f.P;  // m: h itself without a projection
    const int64_t m_ld = f.proj ? H : f.P;
    f.each_row(b0, b1, part, 4 * n, [&](int64_t b) {
      const T* cp = (b < np ? c_prev + b * H : f.c0 + b * H) + j0;
      T* gb = g + b * f.G + j0;
      T* cb = c_cur + b * H + j0;
      T* mb = m_dst + b * m_ld + j0;
      const T* bias = f.bx + j0;
      if (part < 0) {
        if (f.train) {
          forward_row<T, true, false>(gb, nullptr, 0, bias, cp, cb, mb, n, H);
        } else {
          forward_row<T, false, false>(gb, nullptr, 0, bias, cp, cb, mb, n, H);
        }
      } else {
        const T* ghb = f.gh_parts[part] + b * 4 * n;
        if (f.train) {
          forward_row<T, true, true>(gb, ghb, n, bias, cp, cb, mb, n, H);
        } else {
          forward_row<T, false, true>(gb, ghb, n, bias, cp, cb, mb, n, H);
        }
      }
    });
    if (f.proj) f.w_proj.apply(b1 - b0, m_dst + b0 * H, H, T(0), f.out + (o + b0) * f.P, f.P);  // h = m W_hr^T
    capture_final<T>(st, t, b0, b1, c_cur, f.c_n, H, j0, n);
  }

  // dhft: the step's rows of dH (every dh, for dW_hr), with a projection.
  template <typename T>
  static void backward_step(const BackwardPass<T>& k, int64_t t, const T* dyt, T* dgt, T*, T* dhft, int64_t b0,
                            int64_t b1) {
    const Steps& st = k.st;
    const int64_t o = st.off[t], np = st.carried(t), H = k.H, P = k.P, G = k.G;
    const int64_t prev_off = np > 0 ? st.off[st.prev(t)] : 0;
    const T* dh1 = dyt;  // dm = dy + dh_acc; with a projection, dm = (dy + dh_acc) W_hr instead
    int64_t ld1 = P;
    if (k.proj) {
      for (int64_t e = b0 * P; e < b1 * P; ++e) dhft[e] = dh1[e] + k.dh_acc[e];  // dh
      k.w_proj.apply(b1 - b0, dhft + b0 * P, P, T(0), k.dm + b0 * H, H);      // dm = dh W_hr
      dh1 = k.dm;
      ld1 = H;
    }
    for_rows(b0, b1, 4 * H, [&](int64_t b) {
      const T* cp = b < np ? k.state + (prev_off + b) * H : k.c0 + b * H;
      if (k.proj) {
        backward_row<T, false>(k.acts + (o + b) * G, k.state + (o + b) * H, cp, dh1 + b * ld1, nullptr,
                               k.dc_acc + b * H, dgt + b * G, H);
      } else {
        backward_row<T, true>(k.acts + (o + b) * G, k.state + (o + b) * H, cp, dh1 + b * ld1, k.dh_acc + b * P,
                              k.dc_acc + b * H, dgt + b * G, H);
      }
    });
    k.w_step.apply(b1 - b0, dgt + b0 * G, G, T(0), k.dh_acc + b0 * P, P);  // dh_prev = dG W_hh
  }
};

// -----------------------------------------------------------------------------------------------------
// GRU, torch.nn's: r, z from x W_ih^T + b_ih + h_prev W_hh^T + b_hh; hn = h_prev W_hn^T + b_hn;
// n = tanh(x W_in^T + b_in + r * hn) (the reset gate after the product); h = (1 - z) * n + z * h_prev.
// So h_prev W_hh^T cannot be added into the gates before the kernel: it goes to its own buffer, gh.
// -----------------------------------------------------------------------------------------------------

struct Gru {
  static constexpr int64_t kGates = 3;
  static constexpr int64_t kXGates = 2;  // r and z: their x-side gradient is dG's; n's is dn, apart (dgxn)
  static constexpr bool kCellState = false;
  static constexpr bool kGatesAreOutput = false;

  // gx = x W_ih^T (3H: r, z, n), gh = h_prev W_hh^T (gate blocks gs apart). In training, r, z, n go back
  // into gx and hn into hn_out.
  template <typename T, bool TRAIN>
  static inline void forward_row(T* __restrict__ gx, const T* __restrict__ gh, int64_t gs, const T* __restrict__ bx,
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

  // One row. dh_acc: in, the gradient reaching h_t from step t+1 (dy is the output's); out, dh * z, the
  // direct part of dh_prev (the product part, dG W_hh, is added by a GEMM). Writes dG (3H) and dgxn (H),
  // dGx's n block (its r and z blocks are dG's).
  template <typename T>
  static inline void backward_row(const T* __restrict__ acts, const T* __restrict__ hn, const T* __restrict__ h_prev,
                                  const T* __restrict__ dy, T* __restrict__ dh_acc, T* __restrict__ dg,
                                  T* __restrict__ dgxn, int64_t H) {
    for (int64_t j = 0; j < H; ++j) {
      const T r = acts[j], z = acts[H + j], n = acts[2 * H + j];
      const T dh = dy[j] + dh_acc[j];
      const T dn = dh * (T(1) - z) * (T(1) - n * n);
      const T dz = dh * (h_prev[j] - n) * z * (T(1) - z);
      const T dr = dn * hn[j] * r * (T(1) - r);
      dg[j] = dr;
      dg[H + j] = dz;
      dg[2 * H + j] = dn * r;
      dgxn[j] = dn;
      dh_acc[j] = dh * z;
    }
  }

  // Training: r, z, n (N, 3H) and every hn (N, H); inference: one chunk's gates. Both: the step's gh.
  static ForwardBuffers forward_buffers(const Steps& st, const at::Tensor& out, int64_t H, int64_t G, bool,
                                        bool train) {
    const auto opts = out.options();
    return {at::empty({train ? st.N : st.max_chunk_rows, G}, opts),
            train ? at::empty({st.N, H}, opts) : at::Tensor(), at::Tensor(), at::empty({st.B, G}, opts)};
  }

  template <typename T>
  static void forward_step(const ForwardPass<T>& f, int64_t t, int64_t, T* g, int64_t b0, int64_t b1,
                           int64_t part) {
    const int64_t o = f.st.off[t], H = f.H;
    const int64_t j0 = f.j0(part), n = f.units(part);
    // h_prev W_hh^T: all of it (blocks H apart) or the part's (n apart).
    if (part < 0) {
      recurrent_gemm<T>(f.st, t, b0, b1, f.out, f.h0, f.w_step, f.P, T(0), f.gh, f.G);
    } else {
      f.own_product(t, b0, b1, part);
    }
    const int64_t gs = part < 0 ? H : n;
    f.each_row(b0, b1, part, 3 * n, [&](int64_t b) {
      const T* hp = prev_row<T>(f.st, t, b, f.out, f.h0, H) + j0;
      T* hb = f.out + (o + b) * H + j0;
      const T* ghr = part < 0 ? f.gh + b * f.G + j0 : f.gh_parts[part] + b * 3 * n;
      if (f.train) {
        forward_row<T, true>(g + b * f.G + j0, ghr, gs, f.bx + j0, f.bh + j0, hp, hb, f.state + (o + b) * H + j0,
                             n, H);
      } else {
        forward_row<T, false>(g + b * f.G + j0, ghr, gs, f.bx + j0, f.bh + j0, hp, hb, nullptr, n, H);
      }
    });
  }

  // dgxnt: the step's rows of dgxn.
  template <typename T>
  static void backward_step(const BackwardPass<T>& k, int64_t t, const T* dyt, T* dgt, T* dgxnt, T*, int64_t b0,
                            int64_t b1) {
    const int64_t o = k.st.off[t], H = k.H, G = k.G;
    for_rows(b0, b1, 3 * H, [&](int64_t b) {
      const T* hp = prev_row<T>(k.st, t, b, k.out, k.h0, H);
      backward_row<T>(k.acts + (o + b) * G, k.state + (o + b) * H, hp, dyt + b * H, k.dh_acc + b * H, dgt + b * G,
                      dgxnt + b * H, H);
    });
    k.w_step.apply(b1 - b0, dgt + b0 * G, G, T(1), k.dh_acc + b0 * H, H);  // dh_prev = dh * z + dG W_hh
  }
};

}  // namespace
}  // namespace rnnlab
