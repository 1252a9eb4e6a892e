// Direct (implicit-GEMM) 3×3 stride-1 convolution kernels with AVX2/FMA intrinsics, for Conv2D+Direct.swift.
//
// Swift code in this package compiles for baseline x86-64 (no FMA), so the kernels live in C behind
// `__attribute__((target("avx2,fma")))` and a runtime CPU check; the rest of the engine stays baseline.
// Layouts: activations NHWC, weights packed tap-major `[3, 3, in, out]` (output channels contiguous).
#ifndef CCONVKERNELS_H
#define CCONVKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the kernels below can run: an x86-64 CPU (and OS) with AVX2 and FMA; 0 otherwise (other CPUs included).
int cconv_supports_direct3x3(void);

/// Copies rows [firstRow − 1, firstRow + rows + 1) of one NHWC image `[height, width, channels]` into `padded`
/// `[rows + 2, width + 2, channels]` with a one-pixel zero border: padded[r, c] = image[firstRow − 1 + r, c − 1]
/// where that lies inside the image, else 0. Baseline code (plain copies).
void cconv_pad_band(const float *image, int height, int width, int channels, int firstRow, int rows,
                    float *padded);

/// A 3×3 stride-1 convolution over `images` padded bands of the same rows (see cconv_pad_band):
/// y[n, r, x, o] = bias[o] + Σ_{ky, kx, i} padded[n, r + ky, x + kx, i] · weight[ky, kx, i, o]
/// for n < images, r < rows, x < width, o < outChannels, summed with FMAs from bias (or 0) in the order: input
/// channels in chunks of 64, within a chunk (ky, kx, i). The order depends on inChannels only.
/// - padded: `[images, rows + 2, width + 2, inChannels]`; weight: `[3, 3, inChannels, outChannels]`;
///   bias: `[outChannels]` or NULL; y: `[images, rows, width, outChannels]`, every element written.
/// - inChannels ≥ 1, outChannels a multiple of 8. Call only when cconv_supports_direct3x3() is 1.
void cconv_direct3x3_band(const float *padded, int images, int rows, int width, int inChannels, const float *weight,
                          int outChannels, const float *bias, float *y);

/// The weight gradient of `images` bands of the same rows, added to `gradient`:
/// gradient[ky, kx, i, o] += Σ_{n < images, r < rows, x < width} padded[n, r + ky, x + kx, i] · dy[n, r, x, o],
/// each element's pixels added one after the other in (n, r, x) order (FMAs onto the current value).
/// - padded: `[images, rows + 2, width + 2, inChannels]` (the forward input's bands, see cconv_pad_band);
///   dy: `[images, rows, width, outChannels]`; gradient: `[3, 3, inChannels, outChannels]` (the packed layout of
///   cconv_direct3x3_band).
/// - inChannels ≥ 1, outChannels a multiple of 8. Call only when cconv_supports_direct3x3() is 1.
void cconv_direct3x3_weight_gradient_band(const float *padded, const float *dy, int images, int rows, int width,
                                          int inChannels, int outChannels, float *gradient);

/// Floats of scratch one cconv_winograd3x3_band call needs for these channel counts (its transformed tiles).
size_t cconv_winograd3x3_scratch_floats(int inChannels, int outChannels);

/// The Winograd F(2×2, 3×3) weight transform: transformed[ξ, i, o] = (G g Gᵀ)[ξ] for the 16 positions ξ = 4a + b,
/// g[ky][kx] = packed[ky, kx, i, o] (see Winograd3x3.c for G).
/// - packed: `[3, 3, inChannels, outChannels]`; transformed: `[16, inChannels, outChannels]`.
void cconv_winograd3x3_weight(const float *packed, int inChannels, int outChannels, float *transformed);

/// Winograd's input transform of tiles [firstTile, firstTile + count) of `images` padded bands (see
/// cconv_winograd3x3_band; tile = (image · rows/2 + tile row) · width/2 + tile column):
/// v[ξ · positionStride + (t − firstTile) · inChannels + i] = (Bᵀ d_t B)[ξ] for channel i.
/// - padded: `[images, rows + 2, width + 2, inChannels]`; rows and width even, inChannels a multiple of 8.
void cconv_winograd3x3_input_tiles(const float *padded, int rows, int width, int inChannels, int firstTile,
                                   int count, float *v, ptrdiff_t positionStride);

/// Winograd's output transform: y[2×2 tile t, o] = (Aᵀ M_t A)[·, o] (+ bias[o]) for tiles [firstTile, firstTile +
/// count), M_t[ξ] = m[ξ · positionStride + (t − firstTile) · outChannels + o].
/// - y: `[images, rows, width, outChannels]`; bias `[outChannels]` or NULL; outChannels a multiple of 8.
void cconv_winograd3x3_output_tiles(const float *m, ptrdiff_t positionStride, int rows, int width, int outChannels,
                                    const float *bias, int firstTile, int count, float *y);

/// The dy side of Winograd's weight gradient: e[ξ · positionStride + (t − firstTile) · outChannels + o] =
/// (A e_t Aᵀ)[ξ] for the 2×2 dy tiles t of [firstTile, firstTile + count), A = [[1, 0], [1, 1], [1, −1], [0, −1]].
/// - dy: `[images, rows, width, outChannels]`, rows and width even, outChannels a multiple of 8.
void cconv_winograd3x3_gradient_tiles(const float *dy, int rows, int width, int outChannels, int firstTile,
                                      int count, float *e, ptrdiff_t positionStride);

/// The weight gradient from Winograd products P[ξ] = Σ_t V[ξ, t]ᵀ E[ξ, t]: packed[ky, kx, i, o] = (Gᵀ P G)[ky, kx]
/// per channel pair (overwritten).
/// - products: `[16, inChannels, outChannels]`; packed: `[3, 3, inChannels, outChannels]`.
void cconv_winograd3x3_weight_gradient(const float *products, int inChannels, int outChannels, float *packed);

/// The convolution of cconv_direct3x3_band by Winograd F(2×2, 3×3): y[n, r, x, o] = bias[o] + Σ_{ky, kx, i}
/// padded[n, r + ky, x + kx, i] · g[ky, kx, i, o], up to the rounding of the transforms (a few ulp of the terms).
/// - padded: `[images, rows + 2, width + 2, inChannels]`; transformed: cconv_winograd3x3_weight's output;
///   bias: `[outChannels]` or NULL; y: `[images, rows, width, outChannels]`, every element written;
///   scratch: cconv_winograd3x3_scratch_floats(inChannels, outChannels) floats.
/// - rows and width even, inChannels and outChannels multiples of 8. Call only when cconv_supports_direct3x3() is 1.
void cconv_winograd3x3_band(const float *padded, int images, int rows, int width, int inChannels,
                            const float *transformed, int outChannels, const float *bias, float *y, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
