// Shared by Direct3x3.c and Winograd3x3.c (a private header: not under include/, so not part of the module).
#ifndef CCONV_BALANCED_PARTS_H
#define CCONV_BALANCED_PARTS_H

// The size of part `index` when `count` items are cut into the fewest parts of at most `maximum`, as equal as
// possible (larger parts first): 32 pixels in blocks of ≤ 6 → 6, 6, 5, 5, 5, 5 rather than 6 × 5 + 2, since a block of
// 2 pixels has 4 independent FMA chains, too few to cover the FMA latency (2 pipes × 4 cycles), and runs at half speed.
static inline int balanced_part(const int count, const int maximum, const int index) {
  const int parts = (count + maximum - 1) / maximum;
  return count / parts + (index < count % parts ? 1 : 0);
}

#endif
