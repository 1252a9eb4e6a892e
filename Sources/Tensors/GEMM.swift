// The single wrapper around OpenBLAS sgemm: C = alpha · op(A) · op(B) + beta · C, row-major.
import COpenBLAS
import Foundation  // NSLock

/// Row-major single-precision GEMM through OpenBLAS (which uses `Threads.count` threads).
///
/// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`. `lda`, `ldb`, `ldc` are the row strides of
/// the matrices *as stored* (defaults: dense). Never call this from inside a `parallelFor` body (inside a
/// `withSingleThreadedBLAS` region, call `gemmOnThisThread`).
public func gemm(m: Int, n: Int, k: Int,
                 _ a: UnsafePointer<Float>, transposeA: Bool = false, lda: Int? = nil,
                 _ b: UnsafePointer<Float>, transposeB: Bool = false, ldb: Int? = nil,
                 into c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
                 alpha: Float = 1, beta: Float = 0) {
  precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size m \(m), n \(n), k \(k).")
  if m == 0 || n == 0 { return }
  // Waits while a `withSingleThreadedBLAS` region elsewhere has OpenBLAS at one thread, so this call always runs
  // at `Threads.count` threads (OpenBLAS's rounding can depend on its thread count).
  BLASThreadMode.beginMultiThreadedCall()
  defer { BLASThreadMode.endMultiThreadedCall() }
  gemmOnThisThread(m: m, n: n, k: k, a, transposeA: transposeA, lda: lda, b, transposeB: transposeB, ldb: ldb,
                   into: c, ldc: ldc, alpha: alpha, beta: beta)
}

/// `gemm` for the body of a `withSingleThreadedBLAS` region: runs on the calling thread only. Outside a region it
/// would use OpenBLAS's whole pool; `gemm` itself calls it after taking its multi-threaded slot.
public func gemmOnThisThread(m: Int, n: Int, k: Int,
                             _ a: UnsafePointer<Float>, transposeA: Bool = false, lda: Int? = nil,
                             _ b: UnsafePointer<Float>, transposeB: Bool = false, ldb: Int? = nil,
                             into c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
                             alpha: Float = 1, beta: Float = 0) {
  precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size m \(m), n \(n), k \(k).")
  if m == 0 || n == 0 { return }
  let lda = lda ?? (transposeA ? m : k)
  let ldb = ldb ?? (transposeB ? k : n)
  let ldc = ldc ?? n
  cblas_sgemm(CblasRowMajor,
              transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
              Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Row-major double-precision GEMM through OpenBLAS (dgemm), C = A · B with `A` `[m, k]`, `B` `[k, n]`, `C`
/// `[m, n]`, all dense: for values that must be exact to float64 rounding (SVM decision values). Same threading
/// rules as the float `gemm`.
public func gemm(m: Int, n: Int, k: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
                 into c: UnsafeMutablePointer<Double>) {
  precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size m \(m), n \(n), k \(k).")
  if m == 0 || n == 0 { return }
  BLASThreadMode.beginMultiThreadedCall()
  defer { BLASThreadMode.endMultiThreadedCall() }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(max(k, 1)), b, Int32(n),
              0, c, Int32(n))
}

/// Reference GEMM without BLAS, for tests and benchmark validation (Double accumulation).
public func naiveGEMM(m: Int, n: Int, k: Int, _ a: [Float], transposeA: Bool = false,
                      _ b: [Float], transposeB: Bool = false) -> [Float] {
  var c = [Float](repeating: 0, count: m * n)
  for i in 0..<m {
    for j in 0..<n {
      var total = 0.0
      for p in 0..<k {
        let aValue = transposeA ? a[p * m + i] : a[i * k + p]
        let bValue = transposeB ? b[j * k + p] : b[p * n + j]
        total += Double(aValue) * Double(bValue)
      }
      c[i * n + j] = Float(total)
    }
  }
  return c
}

/// The OpenBLAS build in use, e.g. "OpenBLAS 0.3.21 … Cooperlake" (printed by benchmarks).
public var blasDescription: String {
  let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
  let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
  return "\(config) (core \(core), \(openblas_get_num_threads()) threads)"
}

/// OpenBLAS's thread count as a multi-threaded `gemm` call sees it, with `Threads.count` read at the same moment:
/// waits until no single-threaded region is active and holds new ones (and `Threads.configure`) off while reading.
/// Outside regions the two are equal. Reading `openblas_get_num_threads()` directly races with regions opened on
/// other threads (tests run concurrently).
public func openBLASThreadsOutsideSingleThreadedRegions() -> (openBLAS: Int, configured: Int) {
  BLASThreadMode.condition.lock()
  defer { BLASThreadMode.condition.unlock() }
  while BLASThreadMode.regions > 0 { BLASThreadMode.condition.wait() }
  return (Int(openblas_get_num_threads()), Threads.count)
}

// MARK: - Single-threaded GEMMs on our own threads

/// Runs `body` with OpenBLAS limited to one thread, so that `body` may call `gemmOnThisThread` from inside
/// `parallelFor` / `parallelForEach` chunks: each call then runs on the calling thread only, and the cores are not
/// oversubscribed. Plain `gemm` calls from other threads wait until the region ends (and a region waits for
/// running ones), so they always see OpenBLAS at `Threads.count` threads; `body` itself must not call `gemm`.
///
/// This is the one sanctioned exception to "never call gemm inside parallelFor". It relies on OpenBLAS 0.3.x
/// (pthreads build): `openblas_set_num_threads(1)` makes every subsequent call single-threaded and run inline
/// in its caller, and such calls are safe concurrently (each takes its own packing buffer from OpenBLAS's
/// locked buffer pool). Regions may overlap (nested or from several threads): a counter under a lock restores
/// `Threads.count` only when the last active region ends.
///
/// Use it for many small GEMMs that each fit in a core's cache (im2col of a few images followed by its GEMM),
/// where one multi-threaded GEMM per layer would stream the column matrix through memory and hand the cores
/// back and forth between OpenBLAS's pool and ours for every chunk.
public func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
  BLASThreadMode.beginSingleThreadedRegion()
  defer { BLASThreadMode.endSingleThreadedRegion() }
  return try body()
}

/// Who is using OpenBLAS: multi-threaded `gemm` calls or single-threaded regions, never both at once (calls from
/// other threads wait), so that a region's `openblas_set_num_threads(1)` never changes another caller's GEMM.
///
/// The counters are `nonisolated(unsafe)` and guarded by hand: both modes wait on `condition` for the other to end,
/// and `Synchronization.Mutex` has no condition variable to wait on. Touch them only while holding `condition`.
enum BLASThreadMode {
  nonisolated(unsafe) static var regions = 0
  nonisolated(unsafe) static var multiThreadedCalls = 0
  static let condition = NSCondition()

  static func beginSingleThreadedRegion() {
    condition.lock()
    defer { condition.unlock() }
    while multiThreadedCalls > 0 { condition.wait() }
    if regions == 0 { openblas_set_num_threads(1) }
    regions += 1
  }

  static func endSingleThreadedRegion() {
    condition.lock()
    defer { condition.unlock() }
    regions -= 1
    if regions == 0 {
      openblas_set_num_threads(Int32(Threads.count))
      condition.broadcast()
    }
  }

  static func beginMultiThreadedCall() {
    condition.lock()
    defer { condition.unlock() }
    while regions > 0 { condition.wait() }
    multiThreadedCalls += 1
  }

  static func endMultiThreadedCall() {
    condition.lock()
    defer { condition.unlock() }
    multiThreadedCalls -= 1
    if multiThreadedCalls == 0 { condition.broadcast() }
  }
}
