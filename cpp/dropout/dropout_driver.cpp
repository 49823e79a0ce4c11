#include "dropout/dropout_driver.hpp"

#include <vector>

namespace nndl::dropout {

template <class T>
void backward(T* dx, const T* dy, const uint8_t* mask, int64_t n, const Stream& s, double scale) {
  if (mask)
    NNDL_DISPATCH(dropout_apply_mask<T>)(dx, dy, mask, n, scale);
  else
    NNDL_DISPATCH(dropout_forward<T>)(dx, nullptr, dy, n, s, scale);
}

template <class T>
void variational(T* y, uint8_t* mask, bool mask_given, const T* x, int64_t d0, int64_t d1, int64_t F, bool ntf,
                 const Stream& s, double scale) {
  const int64_t N = ntf ? d0 : d1, Tn = ntf ? d1 : d0;
  const int64_t nf = N * F;
  std::vector<uint8_t> scratch;
  if (!mask) {
    scratch.resize(static_cast<size_t>(packed_bytes(nf)));
    mask = scratch.data();
  }
  if (!mask_given) NNDL_DISPATCH(dropout_mask)(mask, nf, s);
  // mult[n, f] = kept ? scale : 0, rounded to T as the plain forward rounds it (1·scale).
  std::vector<T> ones(static_cast<size_t>(nf), T(1)), mult(static_cast<size_t>(nf));
  NNDL_DISPATCH(dropout_apply_mask<T>)(mult.data(), ones.data(), mask, nf, scale);
  // (A, B, C) rows of mul_rows: TNF multiplies every one of the T rows of N·F by mult;
  // NTF multiplies the T rows of F of sample n by mult[n].
  const int64_t A = ntf ? N : 1, B = Tn, C = ntf ? F : nf;
  NNDL_DISPATCH(mul_rows<T>)(y, x, mult.data(), A, B, C);
}

template void backward(float*, const float*, const uint8_t*, int64_t, const Stream&, double);
template void backward(double*, const double*, const uint8_t*, int64_t, const Stream&, double);
template void variational(float*, uint8_t*, bool, const float*, int64_t, int64_t, int64_t, bool, const Stream&, double);
template void variational(double*, uint8_t*, bool, const double*, int64_t, int64_t, int64_t, bool, const Stream&,
                          double);

}  // namespace nndl::dropout
