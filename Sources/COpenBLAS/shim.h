// OpenBLAS CBLAS interface; cblas.h also declares openblas_set_num_threads and friends.
#include <cblas.h>

// LAPACK routines bundled in libopenblas (Fortran calling convention, column-major, 32-bit integers as in Debian's
// libopenblas0-pthread). Cholesky factorisation: A = Uᵀ U (uplo "U") or L Lᵀ (uplo "L"); info > 0 names the
// first non-positive pivot (1-based).
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
