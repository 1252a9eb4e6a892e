// glibc allocator tuning for a process whose working set is a few large, short-lived tensors.
import CMalloc

public enum Allocator {
  /// Keeps freed large blocks in the heap for reuse instead of returning them to the kernel.
  ///
  /// By default glibc serves every block above 32 MB (most ResNet activations at batch 32) with a fresh `mmap`,
  /// so each step pays a page fault and a kernel zero-fill per 4 KB page of every activation. With `mmap`
  /// disabled and trimming off, a step reuses the previous step's memory. The cost: the process keeps its peak
  /// heap until it exits. Call once at start-up (the CLI and the benchmarks do).
  public static func retainFreedMemory() {
    _ = mallopt(M_MMAP_MAX, 0)
    _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
  }
}
