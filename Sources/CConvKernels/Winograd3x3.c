// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions over a zero-padded NHWC band, AVX2/FMA.
//
// Why: the direct kernel (Direct3x3.c) already runs its FMAs at ≈ 80 % of a core's peak, and the 3×3 stride-1
// layers are most of the quick config's step (benchmarks/README.md, issue 19 item 1), so the remaining speed has to
// come from doing fewer multiplications. F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016) computes a 2×2 output tile from a 4×4 input tile with 16 products per (input, output)
// channel pair instead of 36: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A, with the interpolation points 0, 1, −1
//
//        ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤        ⎡1  1  1  0⎤
//   Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥   Aᵀ = ⎣0  1 −1 −1⎦
//        ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥
//        ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//
// whose transforms are additions and halvings only, so the result differs from the direct sum by a few ulp of the
// terms' magnitude (tests: Conv2DWinogradTests, against the im2col paths and a Double oracle).
//
// Scheme of one call (one band of output rows of one or more images; rows and width even): the tiles (image, tile
// row, tile column) are taken in chunks that fit in L2 (`chunkFloats`). For a chunk:
//   1. input transform: V[ξ, t, i] = (Bᵀ d_t B)[ξ] for the 16 positions ξ, tile t, input channel i (8 channels a
//      vector), d_t the 4×4 window of the padded band at the tile's top-left corner;
//   2. 16 independent GEMMs M[ξ] = V[ξ] · U[ξ] with U[ξ, i, o] = (G g_{o,i} Gᵀ)[ξ], by the same register block as the
//      direct kernel (up to 6 tiles × 16 output channels in 12 ymm accumulators, one FMA per input channel and
//      accumulator);
//   3. output transform: y[2×2 tile, o] = (Aᵀ M_t A) + bias[o].
// Every tile's arithmetic is independent of the chunking, the banding and the thread count, and the sum order of
// step 2 depends on the channel count only; the result is the same bits whatever the caller's work split.
#include "CConvKernels.h"
#include "BalancedParts.h"

#include <stddef.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define CCONV_TARGET __attribute__((target("avx2,fma")))

// Floats of V and M per chunk (512 KB): V [16, tiles, in] and M [16, tiles, out] together stay in a core's L2
// (1 MB here) beside the stream of U, and a chunk holds enough tiles (32 at 128 × 128 channels) that each U
// element, read from L3 once per chunk, feeds ≥ 32 FMAs.
enum { chunkFloats = 1 << 17 };

static int tiles_per_chunk(const int inChannels, const int outChannels) {
  const int tiles = chunkFloats / (16 * (inChannels + outChannels));
  return tiles < 1 ? 1 : tiles;
}

// The distance in floats between two positions ξ of V or M (`channels` = in or out): a chunk's tiles plus one cache
// line. Without the line the 16 planes of a power-of-two chunk sit a multiple of 4 KB apart, and the transforms'
// 16 loads or stores per tile, one per plane, all fall in the same L1 set (and alias each other's addresses).
static ptrdiff_t position_stride(const int tiles, const int channels) { return (ptrdiff_t)tiles * channels + 16; }

size_t cconv_winograd3x3_scratch_floats(int inChannels, int outChannels) {
  const int tiles = tiles_per_chunk(inChannels, outChannels);
  return (size_t)16 * (size_t)(position_stride(tiles, inChannels) + position_stride(tiles, outChannels));
}

// Channel pairs k innermost and contiguous in every plane, so each step below is a loop over k that the compiler
// vectorises (a k-outer version with 9 loads and 16 stores a plane apart per pair took 1.7 % of case (d)).
void cconv_winograd3x3_weight(const float *packed, int inChannels, int outChannels, float *transformed) {
  const ptrdiff_t plane = (ptrdiff_t)inChannels * outChannels;
  for (int ky = 0; ky < 3; ky++) {  // gG[ky][c] = (g Gᵀ)[ky][c], kept in the planes of U's rows 0, 1, 2 for now
    const float *g0 = packed + (ky * 3 + 0) * plane, *g1 = packed + (ky * 3 + 1) * plane;
    const float *g2 = packed + (ky * 3 + 2) * plane;
    float *target = transformed + (ptrdiff_t)ky * 4 * plane;
    for (ptrdiff_t k = 0; k < plane; k++) {
      target[k] = g0[k];
      target[plane + k] = 0.5f * (g0[k] + g1[k] + g2[k]);
      target[2 * plane + k] = 0.5f * (g0[k] - g1[k] + g2[k]);
      target[3 * plane + k] = g2[k];
    }
  }
  for (int c = 0; c < 4; c++) {  // rows of G (g Gᵀ): row 3 first, then 1 and 2, while rows 0 and 2 still hold gG
    const float *gG0 = transformed + (0 * 4 + c) * plane, *gG1 = transformed + (1 * 4 + c) * plane;
    const float *gG2 = transformed + (2 * 4 + c) * plane;
    float *u1 = transformed + (1 * 4 + c) * plane, *u2 = transformed + (2 * 4 + c) * plane;
    float *u3 = transformed + (3 * 4 + c) * plane;
    for (ptrdiff_t k = 0; k < plane; k++) {
      const float a = gG0[k], b = gG1[k], d = gG2[k];
      u3[k] = d;
      u1[k] = 0.5f * (a + b + d);
      u2[k] = 0.5f * (a - b + d);
    }
  }
}

// V[ξ, t, i..i+7] for one tile: `window` points at padded[tile's top-left, i]; rowStride and pixelStride in floats.
static inline __attribute__((always_inline)) CCONV_TARGET void
input_transform(const float *restrict window, const ptrdiff_t rowStride, const ptrdiff_t pixelStride,
                float *restrict v, const ptrdiff_t positionStride) {
  __m256 t[4][4];  // t = Bᵀ d (rows combined), column c
  __m256 d[4][4];
  for (int r = 0; r < 4; r++) {
    for (int c = 0; c < 4; c++) d[r][c] = _mm256_loadu_ps(window + r * rowStride + c * pixelStride);
  }
  for (int c = 0; c < 4; c++) {
    t[0][c] = _mm256_sub_ps(d[0][c], d[2][c]);
    t[1][c] = _mm256_add_ps(d[1][c], d[2][c]);
    t[2][c] = _mm256_sub_ps(d[2][c], d[1][c]);
    t[3][c] = _mm256_sub_ps(d[1][c], d[3][c]);
  }
  for (int r = 0; r < 4; r++) {  // (Bᵀ d) B: the same combination along the columns
    _mm256_storeu_ps(v + (r * 4 + 0) * positionStride, _mm256_sub_ps(t[r][0], t[r][2]));
    _mm256_storeu_ps(v + (r * 4 + 1) * positionStride, _mm256_add_ps(t[r][1], t[r][2]));
    _mm256_storeu_ps(v + (r * 4 + 2) * positionStride, _mm256_sub_ps(t[r][2], t[r][1]));
    _mm256_storeu_ps(v + (r * 4 + 3) * positionStride, _mm256_sub_ps(t[r][1], t[r][3]));
  }
}

// m[p, 8·v + lane] = Σ_{i < inChannels} value[p, i] · u[i, 8·v + lane] for p < tiles (tiles · vectors ≤ 12,
// vectors ≤ 2), summed with FMAs from 0 in channel order. value: V[ξ] at the block's first tile (tiles inChannels
// apart), u: U[ξ] at the block's first output channel (rows outChannels apart), m: M[ξ] likewise.
static inline __attribute__((always_inline)) CCONV_TARGET void
product_block(const int tiles, const int vectors, const float *restrict value, const int inChannels,
              const float *restrict u, const int outChannels, float *restrict m) {
  __m256 acc[12][2];
  for (int p = 0; p < tiles; p++) {
    for (int v = 0; v < vectors; v++) acc[p][v] = _mm256_setzero_ps();
  }
  for (int i = 0; i < inChannels; i++) {
    __m256 w[2];
    for (int v = 0; v < vectors; v++) w[v] = _mm256_loadu_ps(u + (ptrdiff_t)i * outChannels + 8 * v);
    for (int p = 0; p < tiles; p++) {
      const __m256 x = _mm256_broadcast_ss(value + (ptrdiff_t)p * inChannels + i);
      for (int v = 0; v < vectors; v++) acc[p][v] = _mm256_fmadd_ps(x, w[v], acc[p][v]);
    }
  }
  for (int p = 0; p < tiles; p++) {
    for (int v = 0; v < vectors; v++) _mm256_storeu_ps(m + (ptrdiff_t)p * outChannels + 8 * v, acc[p][v]);
  }
}

#define CCONV_PRODUCT(P, V)                                                                                      \
  static CCONV_TARGET void product_block_##P##x##V(const float *value, int inChannels, const float *u,          \
                                                   int outChannels, float *m) {                                \
    product_block(P, V, value, inChannels, u, outChannels, m);                                                  \
  }
CCONV_PRODUCT(1, 2) CCONV_PRODUCT(2, 2) CCONV_PRODUCT(3, 2) CCONV_PRODUCT(4, 2) CCONV_PRODUCT(5, 2)
CCONV_PRODUCT(6, 2)
CCONV_PRODUCT(1, 1) CCONV_PRODUCT(2, 1) CCONV_PRODUCT(3, 1) CCONV_PRODUCT(4, 1) CCONV_PRODUCT(5, 1)
CCONV_PRODUCT(6, 1) CCONV_PRODUCT(7, 1) CCONV_PRODUCT(8, 1) CCONV_PRODUCT(9, 1) CCONV_PRODUCT(10, 1)
CCONV_PRODUCT(11, 1) CCONV_PRODUCT(12, 1)

typedef void (*product_function)(const float *, int, const float *, int, float *);
static const product_function sixteenChannelProducts[6] = {
  product_block_1x2, product_block_2x2, product_block_3x2, product_block_4x2, product_block_5x2, product_block_6x2,
};
static const product_function eightChannelProducts[12] = {
  product_block_1x1, product_block_2x1, product_block_3x1, product_block_4x1, product_block_5x1, product_block_6x1,
  product_block_7x1, product_block_8x1, product_block_9x1, product_block_10x1, product_block_11x1, product_block_12x1,
};


// y[2×2 tile, o..o+7] = Aᵀ m A (+ bias): m points at M[0, t, o] (positions positionStride apart), y at the tile's
// top-left output pixel (rows yRowStride apart, pixels yPixelStride apart).
static inline __attribute__((always_inline)) CCONV_TARGET void
output_transform(const float *restrict m, const ptrdiff_t positionStride, const float *restrict bias,
                 float *restrict y, const ptrdiff_t yRowStride, const ptrdiff_t yPixelStride) {
  __m256 s[2][4];  // s = Aᵀ m (rows combined), column c
  for (int c = 0; c < 4; c++) {
    const __m256 m0 = _mm256_loadu_ps(m + (0 * 4 + c) * positionStride);
    const __m256 m1 = _mm256_loadu_ps(m + (1 * 4 + c) * positionStride);
    const __m256 m2 = _mm256_loadu_ps(m + (2 * 4 + c) * positionStride);
    const __m256 m3 = _mm256_loadu_ps(m + (3 * 4 + c) * positionStride);
    s[0][c] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
    s[1][c] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
  }
  const __m256 b = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  for (int r = 0; r < 2; r++) {
    const __m256 left = _mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]);
    const __m256 right = _mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]);
    _mm256_storeu_ps(y + r * yRowStride, bias ? _mm256_add_ps(left, b) : left);
    _mm256_storeu_ps(y + r * yRowStride + yPixelStride, bias ? _mm256_add_ps(right, b) : right);
  }
}

// The tile `tile` of `images` bands [rows, width]: its image and the top-left output pixel (row, column).
static inline void tile_origin(const int tile, const int rows, const int width, int *image, int *row, int *column) {
  const int tileColumns = width / 2, tilesPerImage = (rows / 2) * tileColumns;
  *image = tile / tilesPerImage;
  *row = 2 * ((tile % tilesPerImage) / tileColumns);
  *column = 2 * (tile % tileColumns);
}

CCONV_TARGET void cconv_winograd3x3_input_tiles(const float *padded, int rows, int width, int inChannels,
                                                int firstTile, int count, float *v, ptrdiff_t positionStride) {
  const ptrdiff_t rowStride = (ptrdiff_t)(width + 2) * inChannels, paddedImage = (ptrdiff_t)(rows + 2) * rowStride;
  for (int t = 0; t < count; t++) {
    int image, row, column;
    tile_origin(firstTile + t, rows, width, &image, &row, &column);
    const float *window = padded + image * paddedImage + row * rowStride + (ptrdiff_t)column * inChannels;
    for (int i = 0; i < inChannels; i += 8) {
      input_transform(window + i, rowStride, inChannels, v + (ptrdiff_t)t * inChannels + i, positionStride);
    }
  }
}

CCONV_TARGET void cconv_winograd3x3_output_tiles(const float *m, ptrdiff_t positionStride, int rows, int width,
                                                 int outChannels, const float *bias, int firstTile, int count,
                                                 float *y) {
  const ptrdiff_t yRowStride = (ptrdiff_t)width * outChannels, outputImage = (ptrdiff_t)rows * yRowStride;
  for (int t = 0; t < count; t++) {
    int image, row, column;
    tile_origin(firstTile + t, rows, width, &image, &row, &column);
    float *target = y + image * outputImage + row * yRowStride + (ptrdiff_t)column * outChannels;
    for (int o = 0; o < outChannels; o += 8) {
      output_transform(m + (ptrdiff_t)t * outChannels + o, positionStride, bias ? bias + o : NULL, target + o,
                       yRowStride, outChannels);
    }
  }
}

// The weight gradient by the transpose of F(2×2, 3×3). With L = Σ_tiles ⟨dy tile, y tile⟩ and
// y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, dL/dg = Gᵀ[Σ_t (A e_t Aᵀ) ⊙ (Bᵀ d_t B)]G: the same input transform V as the forward,
// the 2×2 dy tile e_t taken to 4×4 by A = [[1, 0], [1, 1], [1, −1], [0, −1]], and per position ξ one product
// P[ξ] = Σ_t V[ξ, t]ᵀ E[ξ, t] (a GEMM whose inner dimension is the tiles), then Gᵀ P G per channel pair.
CCONV_TARGET void cconv_winograd3x3_gradient_tiles(const float *dy, int rows, int width, int outChannels,
                                                   int firstTile, int count, float *e, ptrdiff_t positionStride) {
  const ptrdiff_t yRowStride = (ptrdiff_t)width * outChannels, outputImage = (ptrdiff_t)rows * yRowStride;
  for (int t = 0; t < count; t++) {
    int image, row, column;
    tile_origin(firstTile + t, rows, width, &image, &row, &column);
    const float *tile = dy + image * outputImage + row * yRowStride + (ptrdiff_t)column * outChannels;
    float *target = e + (ptrdiff_t)t * outChannels;
    for (int o = 0; o < outChannels; o += 8) {
      __m256 r[4][2];  // A e (rows taken to 4), column c of the tile
      for (int c = 0; c < 2; c++) {
        const __m256 top = _mm256_loadu_ps(tile + c * outChannels + o);
        const __m256 bottom = _mm256_loadu_ps(tile + yRowStride + c * outChannels + o);
        r[0][c] = top;
        r[1][c] = _mm256_add_ps(top, bottom);
        r[2][c] = _mm256_sub_ps(top, bottom);
        r[3][c] = _mm256_sub_ps(_mm256_setzero_ps(), bottom);
      }
      for (int a = 0; a < 4; a++) {  // (A e) Aᵀ: the same along the columns
        _mm256_storeu_ps(target + (a * 4 + 0) * positionStride + o, r[a][0]);
        _mm256_storeu_ps(target + (a * 4 + 1) * positionStride + o, _mm256_add_ps(r[a][0], r[a][1]));
        _mm256_storeu_ps(target + (a * 4 + 2) * positionStride + o, _mm256_sub_ps(r[a][0], r[a][1]));
        _mm256_storeu_ps(target + (a * 4 + 3) * positionStride + o, _mm256_sub_ps(_mm256_setzero_ps(), r[a][1]));
      }
    }
  }
}

void cconv_winograd3x3_weight_gradient(const float *products, int inChannels, int outChannels, float *packed) {
  const ptrdiff_t plane = (ptrdiff_t)inChannels * outChannels;
  for (ptrdiff_t k = 0; k < plane; k++) {
    float p[4][4], pG[4][3];  // p[a][b] = products[a·4 + b, k]; pG = p G
    for (int position = 0; position < 16; position++) p[position / 4][position % 4] = products[position * plane + k];
    for (int a = 0; a < 4; a++) {
      pG[a][0] = p[a][0] + 0.5f * (p[a][1] + p[a][2]);
      pG[a][1] = 0.5f * (p[a][1] - p[a][2]);
      pG[a][2] = 0.5f * (p[a][1] + p[a][2]) + p[a][3];
    }
    for (int kx = 0; kx < 3; kx++) {  // Gᵀ (p G)
      packed[(0 * 3 + kx) * plane + k] = pG[0][kx] + 0.5f * (pG[1][kx] + pG[2][kx]);
      packed[(1 * 3 + kx) * plane + k] = 0.5f * (pG[1][kx] - pG[2][kx]);
      packed[(2 * 3 + kx) * plane + k] = 0.5f * (pG[1][kx] + pG[2][kx]) + pG[3][kx];
    }
  }
}

CCONV_TARGET void cconv_winograd3x3_band(const float *padded, int images, int rows, int width, int inChannels,
                                         const float *transformed, int outChannels, const float *bias, float *y,
                                         float *scratch) {
  const int tiles = images * (rows / 2) * (width / 2);
  const ptrdiff_t plane = (ptrdiff_t)inChannels * outChannels;
  const int chunk = tiles_per_chunk(inChannels, outChannels);
  const ptrdiff_t vPosition = position_stride(chunk, inChannels), mPosition = position_stride(chunk, outChannels);
  float *const v = scratch;                   // [16, chunk, in], positions vPosition apart
  float *const m = scratch + 16 * vPosition;  // [16, chunk, out], positions mPosition apart
  for (int first = 0; first < tiles; first += chunk) {
    const int count = tiles - first < chunk ? tiles - first : chunk;
    cconv_winograd3x3_input_tiles(padded, rows, width, inChannels, first, count, v, vPosition);
    for (int position = 0; position < 16; position++) {
      const float *value = v + position * vPosition, *u = transformed + position * plane;
      float *product = m + position * mPosition;
      for (int block = 0; block < outChannels; block += 16) {
        const int wide = outChannels - block >= 16;
        const int maximumTiles = wide ? 6 : 12;
        for (int t = 0, part = 0; t < count; t += balanced_part(count, maximumTiles, part++)) {
          const int blockTiles = balanced_part(count, maximumTiles, part);
          const product_function kernel =
            wide ? sixteenChannelProducts[blockTiles - 1] : eightChannelProducts[blockTiles - 1];
          kernel(value + (ptrdiff_t)t * inChannels, inChannels, u + block, outChannels,
                 product + (ptrdiff_t)t * outChannels + block);
        }
      }
    }
    cconv_winograd3x3_output_tiles(m, mPosition, rows, width, outChannels, bias, first, count, y);
  }
}

#else  // not x86-64: Conv2D never calls the kernel (cconv_supports_direct3x3 is 0)

size_t cconv_winograd3x3_scratch_floats(int inChannels, int outChannels) {
  (void)inChannels; (void)outChannels;
  return 0;
}

void cconv_winograd3x3_weight(const float *packed, int inChannels, int outChannels, float *transformed) {
  (void)packed; (void)inChannels; (void)outChannels; (void)transformed;
  __builtin_trap();
}

void cconv_winograd3x3_input_tiles(const float *padded, int rows, int width, int inChannels, int firstTile,
                                   int count, float *v, ptrdiff_t positionStride) {
  (void)padded; (void)rows; (void)width; (void)inChannels; (void)firstTile; (void)count; (void)v;
  (void)positionStride;
  __builtin_trap();
}

void cconv_winograd3x3_output_tiles(const float *m, ptrdiff_t positionStride, int rows, int width, int outChannels,
                                    const float *bias, int firstTile, int count, float *y) {
  (void)m; (void)positionStride; (void)rows; (void)width; (void)outChannels; (void)bias; (void)firstTile;
  (void)count; (void)y;
  __builtin_trap();
}

void cconv_winograd3x3_gradient_tiles(const float *dy, int rows, int width, int outChannels, int firstTile,
                                      int count, float *e, ptrdiff_t positionStride) {
  (void)dy; (void)rows; (void)width; (void)outChannels; (void)firstTile; (void)count; (void)e; (void)positionStride;
  __builtin_trap();
}

void cconv_winograd3x3_weight_gradient(const float *products, int inChannels, int outChannels, float *packed) {
  (void)products; (void)inChannels; (void)outChannels; (void)packed;
  __builtin_trap();
}

void cconv_winograd3x3_band(const float *padded, int images, int rows, int width, int inChannels,
                            const float *transformed, int outChannels, const float *bias, float *y, float *scratch) {
  (void)padded; (void)images; (void)rows; (void)width; (void)inChannels; (void)transformed; (void)outChannels;
  (void)bias; (void)y; (void)scratch;
  __builtin_trap();
}

#endif
