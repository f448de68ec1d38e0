// Activation functions for the gate kernels (float: vectorisable polynomials; double: the C library's).
// Part of rnnlab's fused kernels (fused_rnn.cpp includes it; one translation unit).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnlab {
namespace {

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

}  // namespace
}  // namespace rnnlab
