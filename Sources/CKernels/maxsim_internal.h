// Shared between the exact stage's files (maxsim.c, maxsim512.c); not part of the module's interface.
#ifndef CKERNELS_MAXSIM_INTERNAL_H
#define CKERNELS_MAXSIM_INTERNAL_H

#include "CKernels.h"
#include <stdint.h>

/// Pass B of the exact stage for `m` document tokens with AVX512-VNNI (maxsim512.c): token l has its levels at
/// levels + l · dim_padded, its 1/‖c + r‖ in inverses[l], its centroid codes[l] and its document doc_of_token[l];
/// its scores against every query token (the query regrouped by maxsim.c's group_query into `qg`) are folded into
/// its document's row of best_all (nq_padded floats a document) — the AVX2 body's scores, bit for bit.
void ck_residual_pass_vnni(const ck_residual_query *Q, const int8_t *qg, const uint8_t *levels, long m,
                           const float *inverses, const uint16_t *codes, const uint32_t *doc_of_token, float *best_all);

/// The levels of one 4-bit token (dim a multiple of 16) into u, zero up to dim_padded, with NEON (maxsim_neon.c):
/// decode_scalar's values.
void ck_decode4_neon(const ck_residual_query *Q, const uint8_t *packed, uint8_t *u);
/// The same pass with baseline NEON on 64-bit ARM (maxsim_neon.c): the scalar body's scores, bit for bit.
void ck_residual_pass_neon(const ck_residual_query *Q, const int8_t *qg, const uint8_t *levels, long m,
                           const float *inverses, const uint16_t *codes, const uint32_t *doc_of_token, float *best_all);

#endif
