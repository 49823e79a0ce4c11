// Column statistics and the per-column affine map of data pre-processing (1.38–1.41).
// Formulas and names: python/nndl_fast/preprocessing.py.
//
// x is (n, d) samples × features, either C-ordered (rows contiguous) or F-ordered (columns
// contiguous: the kernels then read the C-ordered (d, n) view). Rows are cut into blocks of
// kStatsRows, fixed (never the thread count): each (block, column) gives its count, mean,
// M2 = Σ(x − mean)², min and max in double, and the driver folds the blocks into the running
// state in block order (Chan et al.), so the result is bitwise the same for any thread count,
// and the same whether one call sees all rows or consecutive calls see runs of whole blocks.
#pragma once

#include <cstdint>

#include "simd/dispatch.hpp"

namespace nndl::prep {

// Rows per statistics block: the partials (5 doubles per block and column) stay < 0.1 % of
// the data, and (1e6, 64) still gives hundreds of blocks to share among threads.
constexpr int64_t kStatsRows = 2048;
// Fields of a statistics record, each a vector of d doubles: [kCount][d], [kMean][d], ...
enum Field : int64_t { kCount = 0, kMean = 1, kM2 = 2, kMin = 3, kMax = 4, kFields = 5 };

inline int64_t stats_blocks(int64_t n) { return (n + kStatsRows - 1) / kStatsRows; }

}  // namespace nndl::prep

NNDL_DECLARE_KERNELS(
    // partial: [stats_blocks(n)][kFields][d] doubles, block b covering rows [b·kStatsRows, …).
    // omit_nan: NaNs are skipped (count per column); otherwise every element counts and a NaN
    // or ±inf makes the block's mean non-finite (the caller reports it).
    // f_order: x is F-ordered (read as the C-ordered (d, n) array).
    // moments false (min-max only): the mean field holds 0, or NaN when a counted value was NaN
    // or ±inf, and M2 holds 0; count, min and max are as with moments. minmax false (moments
    // only): min and max hold +inf and −inf, which leave a fold's min and max as they were.
    template <class T>  // float, double
    void column_stats_partial(double* partial, const T* x, int64_t n, int64_t d, bool f_order, bool omit_nan,
                              bool moments, bool minmax);

    // state ([kFields][d], as column_stats_update's) ← state merged with the blocks partial
    // records one after the other (Chan, Golub & LeVeque), column by column: the columns are
    // independent, so any thread count gives the same bits.
    void column_stats_fold(double* state, const double* partial, int64_t blocks, int64_t d);

    // y[i, j] = (x[i, j] − shift[j])·scale[j] (+ offset[j] when offset is not null), then, when
    // clip, limited to [lo, hi]. All in T (coefficients given in T). y may be x (in place).
    template <class T> void column_affine(T* y, const T* x, const T* shift, const T* scale, const T* offset, int64_t n,
                                          int64_t d, bool f_order, bool clip, double lo, double hi);)

namespace nndl::prep {

// state: [kFields][d] doubles (count, mean, M2, min, max; count 0 = no data yet, min +inf,
// max −inf), updated in place with the rows of x, folded block by block in row order; with
// moments false, mean and M2 are 0, or both NaN once a counted value was NaN or ±inf; with
// minmax false, min and max stay as they were.
template <class T>
void column_stats_update(double* state, const T* x, int64_t n, int64_t d, bool f_order, bool omit_nan, bool moments,
                         bool minmax);

}  // namespace nndl::prep
