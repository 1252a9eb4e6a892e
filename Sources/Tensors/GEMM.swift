// The single wrapper around OpenBLAS sgemm: C = alpha · op(A) · op(B) + beta · C, row-major.
import COpenBLAS

/// Row-major single-precision GEMM through OpenBLAS (which uses `Threads.count` threads).
///
/// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`. `lda`, `ldb`, `ldc` are the row strides of
/// the matrices *as stored* (defaults: dense). Never call this from inside a `parallelFor` body.
@inlinable
public func gemm(m: Int, n: Int, k: Int,
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
