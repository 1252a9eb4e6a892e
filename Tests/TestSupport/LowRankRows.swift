// Feature rows near a low-dimensional subspace: the SVM tests' hard case for the dual solver.
import Tensors

/// `rows × columns` row-major floats, row i = Σ_r z_i[r] · basis[r] + noise · N(0, 1) per entry, with `rank` standard
/// normal basis rows and coefficients, all drawn from `generator` (basis first, then each row's z and its noise).
/// With labels unrelated to the rows the problem is separable only through the noise, by a tiny margin — slow for
/// liblinear's dual at large costs; the noise keeps a Gram block of fewer rows than columns positive definite.
public func lowRankRows(rows: Int, columns: Int, rank: Int, noise: Float = 0.05,
                        using generator: inout SplitMix64) -> [Float] {
  let basis = (0..<(rank * columns)).map { _ in generator.nextNormal() }
  var raw = [Float](repeating: 0, count: rows * columns)
  for i in 0..<rows {
    let z = (0..<rank).map { _ in generator.nextNormal() }
    for j in 0..<columns {
      var value = noise * generator.nextNormal()
      for r in 0..<rank { value += z[r] * basis[r * columns + j] }
      raw[i * columns + j] = value
    }
  }
  return raw
}
