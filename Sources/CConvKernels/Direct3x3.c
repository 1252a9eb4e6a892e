// Direct 3×3 stride-1 convolution over a zero-padded NHWC band, register-blocked for AVX2/FMA.
//
// Scheme (one call = one band of output rows of one or more images): for every 16-channel block of outputs and block
// of up to 6 consecutive pixels of a row, 12 ymm accumulators hold y[pixel, 16 channels]; for each of the 9 taps and
// each input channel i, two weight vectors W[tap, i, block] are loaded and the 6 input scalars padded[·, i] are
// broadcast: 12 FMAs per 2 vector loads + 6 broadcasts. The input is read in place from the padded band (no im2col,
// no packing of a k²-times larger matrix); the zero border makes the inner loops free of bounds checks.
// When outChannels is not a multiple of 16, the last 8 channels use one vector and blocks of up to 12 pixels.
// Loop order: input channels in chunks of 64, then output blocks, then images, rows and pixel blocks, so that the
// weights one block uses within a chunk (9·64·16 floats, 36 KB) stay in L1/L2 while it sweeps the whole band; the
// accumulators are stored to y after a chunk and reloaded for the next. (Without the chunks, 256 and 512 channels
// ran at 40 and 22 GFLOP/s on one core, from L3; with them 55 and 48, and 16–128 channels unchanged at 70–80.)
#include "CConvKernels.h"
#include "BalancedParts.h"

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int cconv_supports_direct3x3(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define CCONV_TARGET __attribute__((target("avx2,fma")))

// y[p, 8·v + lane] for p < pixels, v < vectors (pixels · vectors ≤ 12, vectors ≤ 2), summed over the `chunk` input
// channels from the first one of the chunk: input = padded + (row · (width + 2) + x) · inChannels + first channel
// (the top-left tap of the block's first pixel), weight offset to [0, 0, first channel, first output], bias and y
// to the block's first output channel. The sums start from y when `continues` (a later chunk), else from bias or 0. Inlined into the specialisations below,
// whose constant `pixels` and `vectors` let the compiler unroll the p / v loops and keep `acc` in registers.
static inline __attribute__((always_inline)) CCONV_TARGET void
direct_block(const int pixels, const int vectors, const float *restrict input, const ptrdiff_t rowStride,
             const int inChannels, const int chunk, const int continues, const float *restrict weight,
             const int outChannels, const float *restrict bias, float *restrict y) {
  __m256 acc[12][2];
  for (int p = 0; p < pixels; p++) {
    for (int v = 0; v < vectors; v++) {
      acc[p][v] = continues ? _mm256_loadu_ps(y + p * outChannels + 8 * v)
                : bias ? _mm256_loadu_ps(bias + 8 * v) : _mm256_setzero_ps();
    }
  }
  for (int tap = 0; tap < 9; tap++) {
    const float *restrict source = input + (tap / 3) * rowStride + (tap % 3) * inChannels;  // padded[ky, kx, ·]
    const float *restrict taps = weight + (ptrdiff_t)tap * inChannels * outChannels;       // W[ky, kx, ·, ·]
    for (int i = 0; i < chunk; i++) {
      __m256 w[2];
      for (int v = 0; v < vectors; v++) w[v] = _mm256_loadu_ps(taps + (ptrdiff_t)i * outChannels + 8 * v);
      for (int p = 0; p < pixels; p++) {
        const __m256 value = _mm256_broadcast_ss(source + p * inChannels + i);
        for (int v = 0; v < vectors; v++) acc[p][v] = _mm256_fmadd_ps(value, w[v], acc[p][v]);
      }
    }
  }
  for (int p = 0; p < pixels; p++) {
    for (int v = 0; v < vectors; v++) _mm256_storeu_ps(y + p * outChannels + 8 * v, acc[p][v]);
  }
}

#define CCONV_BLOCK(P, V)                                                                                        \
  static CCONV_TARGET void direct_block_##P##x##V(const float *input, ptrdiff_t rowStride, int inChannels,     \
                                                  int chunk, int continues, const float *weight,               \
                                                  int outChannels, const float *bias, float *y) {              \
    direct_block(P, V, input, rowStride, inChannels, chunk, continues, weight, outChannels, bias, y);          \
  }
CCONV_BLOCK(1, 2) CCONV_BLOCK(2, 2) CCONV_BLOCK(3, 2) CCONV_BLOCK(4, 2) CCONV_BLOCK(5, 2) CCONV_BLOCK(6, 2)
CCONV_BLOCK(1, 1) CCONV_BLOCK(2, 1) CCONV_BLOCK(3, 1) CCONV_BLOCK(4, 1) CCONV_BLOCK(5, 1) CCONV_BLOCK(6, 1)
CCONV_BLOCK(7, 1) CCONV_BLOCK(8, 1) CCONV_BLOCK(9, 1) CCONV_BLOCK(10, 1) CCONV_BLOCK(11, 1) CCONV_BLOCK(12, 1)


typedef void (*direct_block_function)(const float *, ptrdiff_t, int, int, int, const float *, int, const float *,
                                      float *);
// [pixels − 1]: 16-channel blocks (up to 6 pixels) and 8-channel blocks (up to 12 pixels).
static const direct_block_function sixteenChannelBlocks[6] = {
  direct_block_1x2, direct_block_2x2, direct_block_3x2, direct_block_4x2, direct_block_5x2, direct_block_6x2,
};
static const direct_block_function eightChannelBlocks[12] = {
  direct_block_1x1, direct_block_2x1, direct_block_3x1, direct_block_4x1, direct_block_5x1, direct_block_6x1,
  direct_block_7x1, direct_block_8x1, direct_block_9x1, direct_block_10x1, direct_block_11x1, direct_block_12x1,
};

enum { inputChunk = 64 };

CCONV_TARGET void cconv_direct3x3_band(const float *padded, int images, int rows, int width, int inChannels,
                                       const float *weight, int outChannels, const float *bias, float *y) {
  const ptrdiff_t rowStride = (ptrdiff_t)(width + 2) * inChannels;
  const ptrdiff_t paddedImage = (ptrdiff_t)(rows + 2) * rowStride, outputImage = (ptrdiff_t)rows * width * outChannels;
  for (int first = 0; first < inChannels; first += inputChunk) {
    const int chunk = inChannels - first < inputChunk ? inChannels - first : inputChunk;
    for (int block = 0; block < outChannels; block += 16) {
      const int wide = outChannels - block >= 16;
      const int maximumPixels = wide ? 6 : 12;
      for (int image = 0; image < images; image++) {
        for (int row = 0; row < rows; row++) {
          for (int x = 0, part = 0; x < width; x += balanced_part(width, maximumPixels, part++)) {
            const int pixels = balanced_part(width, maximumPixels, part);
            const direct_block_function kernel =
              wide ? sixteenChannelBlocks[pixels - 1] : eightChannelBlocks[pixels - 1];
            kernel(padded + image * paddedImage + row * rowStride + (ptrdiff_t)x * inChannels + first, rowStride,
                   inChannels, chunk, first > 0, weight + (ptrdiff_t)first * outChannels + block, outChannels,
                   bias ? bias + block : NULL,
                   y + image * outputImage + ((ptrdiff_t)row * width + x) * outChannels + block);
          }
        }
      }
    }
  }
}

// gradient[tap, i, 8·v + lane] += Σ_{n, r < rows, x < width} padded[n, r + ky, x + kx, i] · dy[n, r, x, 8·v + lane] for
// i < inputs, v < vectors (inputs · vectors ≤ 12, vectors ≤ 2), with input = padded + tap offset + first input
// channel, dy and gradient offset to the block's first output channel and gradient to [tap, first input, ·].
// The accumulators start from the gradient's values and add one pixel after the other.
static inline __attribute__((always_inline)) CCONV_TARGET void
weight_block(const int inputs, const int vectors, const float *restrict input, const ptrdiff_t rowStride,
             const int inChannels, const float *restrict dy, const int images, const int rows, const int width,
             const int outChannels, float *restrict gradient) {
  __m256 acc[12][2];
  for (int j = 0; j < inputs; j++) {
    for (int v = 0; v < vectors; v++) acc[j][v] = _mm256_loadu_ps(gradient + j * outChannels + 8 * v);
  }
  // The images' rows one after the other: padded images are rows + 2 rows apart, dy images `rows` rows.
  for (int imageRow = 0; imageRow < images * rows; imageRow++) {
    const int image = imageRow / rows, row = imageRow % rows;
    const float *restrict source = input + (image * (rows + 2) + row) * rowStride;
    const float *restrict gradients = dy + (ptrdiff_t)imageRow * width * outChannels;
    for (int x = 0; x < width; x++) {
      __m256 d[2];
      for (int v = 0; v < vectors; v++) d[v] = _mm256_loadu_ps(gradients + (ptrdiff_t)x * outChannels + 8 * v);
      for (int j = 0; j < inputs; j++) {
        const __m256 value = _mm256_broadcast_ss(source + (ptrdiff_t)x * inChannels + j);
        for (int v = 0; v < vectors; v++) acc[j][v] = _mm256_fmadd_ps(value, d[v], acc[j][v]);
      }
    }
  }
  for (int j = 0; j < inputs; j++) {
    for (int v = 0; v < vectors; v++) _mm256_storeu_ps(gradient + j * outChannels + 8 * v, acc[j][v]);
  }
}

#define CCONV_WEIGHT_BLOCK(J, V)                                                                                 \
  static CCONV_TARGET void weight_block_##J##x##V(const float *input, ptrdiff_t rowStride, int inChannels,     \
                                                  const float *dy, int images, int rows, int width,            \
                                                  int outChannels, float *gradient) {                          \
    weight_block(J, V, input, rowStride, inChannels, dy, images, rows, width, outChannels, gradient);          \
  }
CCONV_WEIGHT_BLOCK(1, 2) CCONV_WEIGHT_BLOCK(2, 2) CCONV_WEIGHT_BLOCK(3, 2) CCONV_WEIGHT_BLOCK(4, 2)
CCONV_WEIGHT_BLOCK(5, 2) CCONV_WEIGHT_BLOCK(6, 2)
CCONV_WEIGHT_BLOCK(1, 1) CCONV_WEIGHT_BLOCK(2, 1) CCONV_WEIGHT_BLOCK(3, 1) CCONV_WEIGHT_BLOCK(4, 1)
CCONV_WEIGHT_BLOCK(5, 1) CCONV_WEIGHT_BLOCK(6, 1) CCONV_WEIGHT_BLOCK(7, 1) CCONV_WEIGHT_BLOCK(8, 1)
CCONV_WEIGHT_BLOCK(9, 1) CCONV_WEIGHT_BLOCK(10, 1) CCONV_WEIGHT_BLOCK(11, 1) CCONV_WEIGHT_BLOCK(12, 1)

typedef void (*weight_block_function)(const float *, ptrdiff_t, int, const float *, int, int, int, int, float *);
// [inputs − 1]: 16-channel output blocks (up to 6 input channels) and 8-channel ones (up to 12).
static const weight_block_function sixteenChannelWeightBlocks[6] = {
  weight_block_1x2, weight_block_2x2, weight_block_3x2, weight_block_4x2, weight_block_5x2, weight_block_6x2,
};
static const weight_block_function eightChannelWeightBlocks[12] = {
  weight_block_1x1, weight_block_2x1, weight_block_3x1, weight_block_4x1, weight_block_5x1, weight_block_6x1,
  weight_block_7x1, weight_block_8x1, weight_block_9x1, weight_block_10x1, weight_block_11x1, weight_block_12x1,
};

CCONV_TARGET void cconv_direct3x3_weight_gradient_band(const float *padded, const float *dy, int images, int rows,
                                                       int width, int inChannels, int outChannels, float *gradient) {
  const ptrdiff_t rowStride = (ptrdiff_t)(width + 2) * inChannels;
  for (int tap = 0; tap < 9; tap++) {
    const float *tapInput = padded + (tap / 3) * rowStride + (ptrdiff_t)(tap % 3) * inChannels;
    float *tapGradient = gradient + (ptrdiff_t)tap * inChannels * outChannels;
    for (int block = 0; block < outChannels; block += 16) {
      const int wide = outChannels - block >= 16;
      const int maximumInputs = wide ? 6 : 12;
      for (int i = 0, part = 0; i < inChannels; i += balanced_part(inChannels, maximumInputs, part++)) {
        const int inputs = balanced_part(inChannels, maximumInputs, part);
        const weight_block_function kernel =
          wide ? sixteenChannelWeightBlocks[inputs - 1] : eightChannelWeightBlocks[inputs - 1];
        kernel(tapInput + i, rowStride, inChannels, dy + block, images, rows, width, outChannels,
               tapGradient + (ptrdiff_t)i * outChannels + block);
      }
    }
  }
}

#else  // not x86-64: Conv2D never calls the kernel (cconv_supports_direct3x3 is 0)

int cconv_supports_direct3x3(void) { return 0; }

void cconv_direct3x3_band(const float *padded, int images, int rows, int width, int inChannels, const float *weight,
                          int outChannels, const float *bias, float *y) {
  (void)padded; (void)images; (void)rows; (void)width; (void)inChannels; (void)weight; (void)outChannels; (void)bias; (void)y;
  __builtin_trap();
}

void cconv_direct3x3_weight_gradient_band(const float *padded, const float *dy, int images, int rows, int width,
                                          int inChannels, int outChannels, float *gradient) {
  (void)padded; (void)dy; (void)images; (void)rows; (void)width; (void)inChannels; (void)outChannels; (void)gradient;
  __builtin_trap();
}

#endif

void cconv_pad_band(const float *image, int height, int width, int channels, int firstRow, int rows,
                    float *padded) {
  const size_t pixelBytes = (size_t)channels * sizeof(float);
  const size_t paddedRow = (size_t)(width + 2) * channels;  // floats
  for (int r = 0; r < rows + 2; r++) {
    float *target = padded + r * paddedRow;
    const int sourceRow = firstRow - 1 + r;
    if (sourceRow < 0 || sourceRow >= height) {
      memset(target, 0, paddedRow * sizeof(float));
      continue;
    }
    memset(target, 0, pixelBytes);
    memcpy(target + channels, image + (size_t)sourceRow * width * channels, (size_t)width * pixelBytes);
    memset(target + (size_t)(width + 1) * channels, 0, pixelBytes);
  }
}
