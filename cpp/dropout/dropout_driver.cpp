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

template <class T>
void noise_shaped(T* y, uint8_t* mask, bool mask_given, const T* x, const std::vector<int64_t>& dims,
                  const std::vector<int64_t>& noise, const Stream& s, double scale) {
  // x's axes merged into runs that the mask follows ("kept": noise[k] == dims[k]) or is
  // broadcast along; size-1 axes belong to neither.
  struct Run {
    int64_t size;
    bool kept;
  };
  std::vector<Run> runs;
  int64_t n = 1, nm = 1;
  for (size_t k = 0; k < dims.size(); ++k) {
    n *= dims[k], nm *= noise[k];
    if (dims[k] == 1) continue;
    const bool kept = noise[k] == dims[k];
    if (!runs.empty() && runs.back().kept == kept)
      runs.back().size *= dims[k];
    else
      runs.push_back({dims[k], kept});
  }
  if (runs.empty()) runs.push_back({1, true});
  std::vector<uint8_t> scratch;
  if (!mask) {
    scratch.resize(static_cast<size_t>(packed_bytes(nm)));
    mask = scratch.data();
  }
  if (!mask_given) NNDL_DISPATCH(dropout_mask)(mask, nm, s);  // drawn even for an empty x: mask_out is whole
  if (n == 0) return;
  // mult[k] = kept ? scale : 0, rounded to T as the plain forward rounds it (1·scale).
  std::vector<T> ones(static_cast<size_t>(nm), T(1)), mult(static_cast<size_t>(nm));
  NNDL_DISPATCH(dropout_apply_mask<T>)(mult.data(), ones.data(), mask, nm, scale);
  // The last runs as one (A, B, C) call of mul_rows (y[a, b, c] = x[a, b, c]·mult[a, c]):
  // kept-broadcast-kept, broadcast-kept, kept-broadcast, kept or broadcast. Runs before
  // those (rare: three changes of kind or more) are looped over here.
  const size_t nr = runs.size();
  size_t tail = 1;
  if (nr >= 3 && runs[nr - 3].kept && !runs[nr - 2].kept)
    tail = 3;
  else if (nr >= 2)
    tail = 2;
  int64_t A = 1, B = 1, C = 1;
  const Run* t = runs.data() + (nr - tail);
  if (tail == 3)
    A = t[0].size, B = t[1].size, C = t[2].size;
  else if (tail == 2 && t[0].kept)
    A = t[0].size, B = t[1].size;
  else if (tail == 2)
    B = t[0].size, C = t[1].size;
  else if (t[0].kept)
    C = t[0].size;
  else
    B = t[0].size;
  const int64_t x_step = A * B * C, m_step = A * C;
  const size_t head = nr - tail;
  int64_t outer = 1;
  for (size_t r = 0; r < head; ++r) outer *= runs[r].size;
  if (head == 0 && C == 1) {  // kept-broadcast (NCHW channels) or broadcast: whole rows scaled
    NNDL_DISPATCH(scale_rows<T>)(y, x, mult.data(), A, B);
    return;
  }
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rest = o, m_index = 0, m_stride = 1;  // the mask element block o reads
    for (size_t r = head; r-- > 0;) {
      const int64_t at = rest % runs[r].size;
      rest /= runs[r].size;
      if (runs[r].kept) m_index += at * m_stride, m_stride *= runs[r].size;
    }
    NNDL_DISPATCH(mul_rows<T>)(y + o * x_step, x + o * x_step, mult.data() + m_index * m_step, A, B, C);
  }
}

template void noise_shaped(float*, uint8_t*, bool, const float*, const std::vector<int64_t>&,
                           const std::vector<int64_t>&, const Stream&, double);
template void noise_shaped(double*, uint8_t*, bool, const double*, const std::vector<int64_t>&,
                           const std::vector<int64_t>&, const Stream&, double);
template void backward(float*, const float*, const uint8_t*, int64_t, const Stream&, double);
template void backward(double*, const double*, const uint8_t*, int64_t, const Stream&, double);
template void variational(float*, uint8_t*, bool, const float*, int64_t, int64_t, int64_t, bool, const Stream&, double);
template void variational(double*, uint8_t*, bool, const double*, int64_t, int64_t, int64_t, bool, const Stream&,
                          double);

}  // namespace nndl::dropout
