// The few BLAS entry points colgrep uses, bound at run time: OpenBLAS (or Accelerate on macOS) is loaded
// with dlopen on the first call, not linked. A one-shot search answered by the query server computes
// nothing, and linking OpenBLAS made every such process load it and libgfortran/libquadmath at start
// (~4 ms of a ~15 ms client). Declarations follow the reference CBLAS interface (cblas.h), written here so
// that no BLAS header is needed to build.
#ifndef CBLAS_LAZY_H
#define CBLAS_LAZY_H

typedef enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_ORDER;
typedef enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 } CBLAS_TRANSPOSE;

/// C = alpha · op(A) · op(B) + beta · C (reference CBLAS). Loads the library on first use; a process whose
/// BLAS cannot be loaded exits with status 70 and a message naming the library and how to install it.
void cblas_sgemm(const CBLAS_ORDER order, const CBLAS_TRANSPOSE trans_a, const CBLAS_TRANSPOSE trans_b,
                 const int m, const int n, const int k, const float alpha, const float *a, const int lda,
                 const float *b, const int ldb, const float beta, float *c, const int ldc);
/// OpenBLAS's thread count for later calls (a no-op with a BLAS that has no such call).
void openblas_set_num_threads(int threads);
/// The kernel family OpenBLAS picked ("Haswell", "Zen", "Prescott", …); NULL with another BLAS.
char *openblas_get_corename(void);
/// 1 once the BLAS library is loaded in this process (tests: a served search must not load it).
int cblas_lazy_is_loaded(void);

#endif
